"""Re-run issue #10's store failures through the CLI, against any checkout.

    python scripts/store_failures.py [CODE_ROOT] [--tries 3]

CODE_ROOT (default: this checkout) is put first on PYTHONPATH, so an older
commit can be checked out with `git worktree add /tmp/old COMMIT` and run
with the same environment. Prints one JSON document: for each failure, what
happened (overlapping ids, duplicate rows, whether a refused ingest moved the
store, whether tag overwrote a column). Uses the hash embedder: no model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ID = re.compile(r'"id":\s*"([0-9a-f]{16,})"')


# concurrent commands import first and start at one wall-clock moment (START_AT),
# so that start-up jitter does not serialise them
RUN = ("import os, time\nfrom cli.main import cli\nimport lance, pyarrow\n"
       "time.sleep(max(0.0, float(os.environ.get('START_AT', 0)) - time.time()))\ncli()")


def cli(root, db, *args, wait=True, start_at=0.0):
    env = dict(os.environ, PYTHONPATH=str(root), START_AT=str(start_at))
    cmd = [sys.executable, "-c", RUN, "--db", str(db),
           "--model", "hash-16", *map(str, args)]
    # files, not pipes: a full pipe would block one of two concurrent commands
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True, cwd=str(root))
    p.communicate = lambda: (p.wait(), out.seek(0), err.seek(0)) and (out.read(), err.read())
    return p.communicate() + (p.returncode,) if wait else p


def info(root, db):
    out, err, rc = cli(root, db, "info", "--json")
    return json.loads(out) if rc == 0 else None


def jsonl(path, rows):
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows))


def main(root, tries):
    res = {"code_root": str(root)}
    tmp = Path(tempfile.mkdtemp())
    people = [{"persona": f"persona {i}: a {['nurse', 'welder', 'poet'][i % 3]} in town {i}",
               "region": ["north", "south"][i % 2], "age": 20 + i % 50} for i in range(3000)]
    jsonl(tmp / "people.jsonl", people)

    # train/eval drawn at the same moment
    overlaps = []
    for t in range(tries):
        db = tmp / f"sess{t}.lance"
        cli(root, db, "ingest", tmp / "people.jsonl", "--attr", "region")
        at = time.time() + 6
        a = cli(root, db, "sample", "-n", 400, "--seed", 1, "--session", "A", "--json",
                wait=False, start_at=at)
        b = cli(root, db, "sample", "-n", 400, "--seed", 1, "--session", "B",
                "--exclude-session", "A", "--json", wait=False, start_at=at)
        (oa, _), (ob, _) = a.communicate(), b.communicate()
        overlaps.append({"overlap": len(set(ID.findall(oa)) & set(ID.findall(ob))),
                         "exit": [a.returncode, b.returncode]})
    res["train_eval_overlap"] = overlaps

    # two ingests of one file at the same moment, into an existing and a new store
    dups = []
    for t in range(tries):
        for new in (False, True):
            db = tmp / f"ing{t}{new}.lance"
            if not new:
                cli(root, db, "ingest", tmp / "people.jsonl", "--attr", "region", "--no-near-dedup")
            extra = [{"persona": f"newcomer {t} {i}", "region": "north"} for i in range(3000)]
            jsonl(tmp / "extra.jsonl", extra)
            at = time.time() + 6
            ps = [cli(root, db, "ingest", tmp / "extra.jsonl", "--attr", "region",
                      "--no-near-dedup", "--batch-size", 100, wait=False, start_at=at)
                  for _ in range(2)]
            outs = [p.communicate() for p in ps]
            errs = [e for _, e in outs]
            import lance

            ids = lance.dataset(f"{db}/personas.lance").to_table(columns=["id"]).column("id").to_pylist()
            dups.append({"new_store": new, "rows": len(ids), "distinct_ids": len(set(ids)),
                         "exit": [p.returncode for p in ps],
                         "errors": [e.strip().splitlines()[-1][:120] for p, e in zip(ps, errs)
                                    if p.returncode and e.strip()],
                         "added": [re.findall(r"added\s+(\d+)", o) for o, _ in outs]})
    res["concurrent_ingest"] = dups

    # a refused ingest must leave the store as it was
    db = tmp / "typed.lance"
    jsonl(tmp / "typed.jsonl", [{"persona": f"typed {i}", "age": 30 + i} for i in range(5)])
    cli(root, db, "ingest", tmp / "typed.jsonl")
    before = info(root, db)
    jsonl(tmp / "bad.jsonl", [{"persona": "fine one", "age": 40, "score": 1},
                              {"persona": "bad one", "age": "fifties", "score": "high"}])
    out, err, rc = cli(root, db, "ingest", tmp / "bad.jsonl", "--batch-size", 1)
    after = info(root, db)
    keys = ("count", "table_version", "columns", "attributes")
    res["refused_ingest"] = {
        "exit": rc, "message": (err.strip().splitlines() or [""])[-1][:200],
        "names_file_and_line": f"{tmp / 'bad.jsonl'}:2" in err,
        "store_unchanged": {k: before.get(k) == after.get(k) for k in keys}}

    # tag over an existing attribute
    db = tmp / "tag.lance"
    cli(root, db, "ingest", tmp / "people.jsonl", "--attr", "region")
    v0 = info(root, db)["table_version"]
    out, err, rc = cli(root, db, "tag", "--attr", "region", "--labels", "medicine,craft")
    import lance

    regions = set(lance.dataset(f"{db}/personas.lance").to_table(columns=["region"])
                  .column("region").to_pylist())
    res["tag_over_existing"] = {"exit": rc, "overwrote": regions != {"north", "south"},
                                "commits": info(root, db)["table_version"] - v0}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    args = sys.argv[1:]
    tries = 3
    if "--tries" in args:
        i = args.index("--tries")
        tries = int(args[i + 1])
        del args[i:i + 2]
    main(Path(args[0] if args else Path(__file__).resolve().parents[1]).resolve(), tries)
