"""Reads and wall time of one ingest, this checkout against a baseline commit, in one run.

    python -m benchmarks.ingest_passes --baseline cdf461b \\
        --out benchmarks/results/2026-12-06-ingest

The baseline commit's ``persona_index`` is exported with ``git archive`` into a
temporary folder; each measurement runs in a fresh subprocess with that folder
or this checkout first on ``sys.path`` (same interpreter, same packages), the
two trees interleaved repetition by repetition. Two figures per tree:

* ``opens``: how many times one ``ingest_file`` call opens the input file
  (counted with an audit hook on ``open``), for three calls: the Python
  defaults into a new store; the CLI's defaults (``schema="auto"``) with
  ``strict=True``; and a file with an int column into a store that already
  has that column (so the values are checked against the stored type).
* ``seconds``: the wall time of ``ingest_file(schema="auto")`` of the Persona
  Hub file into a new store, the embedder's model loaded beforehand, for each
  embedder named (the median of ``--reps``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
path, embedder_name, what = sys.argv[1], sys.argv[2], sys.argv[3]
opens = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) \
            and os.fspath(args[0]) in (path, os.fsencode(path)) and "w" not in str(args[1] or "r"):
        opens.append(1)
sys.addaudithook(hook)
from persona_index import PersonaIndex
from persona_index.embed import get_embedder
from persona_index.ingest import ingest_file, ingest_records
e = get_embedder(embedder_name)
getattr(e, "model", None)
d = tempfile.mkdtemp()
idx = PersonaIndex(d + "/p.lance", e)
out = {}
if what == "opens":
    for label, kw in (("python_defaults", {}), ("cli_defaults_strict", {"schema": "auto", "strict": True})):
        idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", e)
        del opens[:]
        ingest_file(idx, path, **kw)
        out[label] = len(opens)
    typed = os.path.join(d, "typed.jsonl")
    with open(typed, "w") as fh:
        for i in range(50):
            fh.write(json.dumps({"text": f"persona number {i}", "age": 20 + i}) + "\n")
    idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", e)
    ingest_records(idx, [{"text": "a seed persona", "age": 40}])
    path = typed
    del opens[:]
    ingest_file(idx, typed, schema="auto", strict=True)
    out["typed_into_existing_store"] = len(opens)
else:
    t = time.perf_counter()
    s = ingest_file(idx, path, schema="auto")
    out = {"seconds": time.perf_counter() - t, "added": s.added, "read": s.read}
print("RESULT " + json.dumps(out))
"""


def _child(tree: Path, data: str, embedder: str, what: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "LANCEDB_LOG": "error"}
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, data, embedder, what],
                       env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode or not line:
        raise SystemExit(f"child failed in {tree}:\n{r.stderr[-3000:]}")
    return json.loads(line[-1][len("RESULT "):])


def _export(commit: str, into: Path) -> str:
    full = subprocess.run(["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()
    tar = subprocess.run(["git", "archive", full, "persona_index"], cwd=ROOT, capture_output=True,
                         check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return full


def main(argv=None) -> int:
    from .__main__ import DEFAULT_DATA
    from .common import environment

    ap = argparse.ArgumentParser(prog="python -m benchmarks.ingest_passes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True, help="the commit to compare with")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--embedders", nargs="+", default=["all-MiniLM-L6-v2", "hash-384"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        full = _export(args.baseline, base)
        trees = {"baseline": base, "this": ROOT}
        res = {"command": "python -m benchmarks.ingest_passes " + " ".join(argv or sys.argv[1:]),
               "baseline_commit": full, "environment": environment(), "data": args.data,
               "opens": {k: _child(t, args.data, "hash-384", "opens") for k, t in trees.items()},
               "seconds": {}}
        for name in args.embedders:
            runs: dict = {k: [] for k in trees}
            for _ in range(args.reps):
                for k, t in trees.items():
                    runs[k].append(_child(t, args.data, name, "time"))
            res["seconds"][name] = {
                k: {"median": statistics.median(r["seconds"] for r in v),
                    "runs": [round(r["seconds"], 3) for r in v], "added": v[0]["added"],
                    "read": v[0]["read"]} for k, v in runs.items()}
            b, t = (res["seconds"][name][k]["median"] for k in ("baseline", "this"))
            res["seconds"][name]["ratio_this_over_baseline"] = round(t / b, 3)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    lines = [f"# ingest: reads and wall time, this checkout vs {full[:7]}", "",
             f"Command: `{res['command']}` at {res['environment']['commit']}", "",
             "| call | file opens, baseline | file opens, this |", "|---|---|---|"]
    for k in res["opens"]["baseline"]:
        lines.append(f"| {k} | {res['opens']['baseline'][k]} | {res['opens']['this'][k]} |")
    lines += ["", "| embedder | personas | baseline s (median) | this s (median) | this / baseline |",
              "|---|---|---|---|---|"]
    for name, r in res["seconds"].items():
        lines.append(f"| {name} | {r['this']['read']} | {r['baseline']['median']:.2f} | "
                     f"{r['this']['median']:.2f} | {r['ratio_this_over_baseline']} |")
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
