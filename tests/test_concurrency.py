"""Several processes on one store: idempotent writes, disjoint sessions,
exclusions that hold both ways, failed ingests that change nothing."""

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import InputFileError, InvalidQueryError
from persona_index.sampling import draw, replay

TEXTS = [f"persona number {i}: a {['nurse', 'welder', 'poet', 'chef'][i % 4]} from town {i // 4}"
         for i in range(400)]


def _ids_in_store(path):
    idx = PersonaIndex(path)
    return idx.snapshot().dataset.to_table(columns=["id"]).column("id").to_pylist()


def _session_ids(path, name):
    import lance

    ds = lance.dataset(f"{path}/sessions.lance")
    return ds.to_table(columns=["id"], filter=f"session = '{name}'").column("id").to_pylist()


WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder
    from persona_index.sampling import draw
    path, me, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    texts = json.loads(sys.argv[4])
    rng = np.random.default_rng(me)
    manifests, attempted = [], 0
    for rnd in range(6):
        idx = PersonaIndex(path, HashEmbedder(dim=16))
        chunk = [texts[i] for i in rng.choice(len(texts), 40, replace=False)]
        attempted += len(chunk)
        idx.add([{"text": t} for t in chunk])
        for session, excl in (("train", ()), ("eval", ("train",))):
            b = draw(PersonaIndex(path), 3, "uniform", seed=int(rng.integers(1 << 30)),
                     session=session, exclude_sessions=excl)
            manifests.append(b.manifest)
    json.dump({"attempted": attempted, "manifests": manifests}, open(out, "w"))
""")


@pytest.mark.slow
def test_stress_many_processes_one_store(tmp_path):
    path = str(tmp_path / "p.lance")
    PersonaIndex(path, HashEmbedder(dim=16)).add([{"text": t} for t in TEXTS[:50]])
    procs = 4
    t0 = time.perf_counter()
    ps = [subprocess.Popen([sys.executable, "-c", WORKER, path, str(i), str(tmp_path / f"{i}.json"),
                            json.dumps(TEXTS)], stderr=subprocess.PIPE, text=True)
          for i in range(procs)]
    errs = [p.communicate(timeout=120)[1] for p in ps]
    wall = time.perf_counter() - t0
    assert all(p.returncode == 0 for p in ps), errs
    results = [json.load(open(tmp_path / f"{i}.json")) for i in range(procs)]
    ids = _ids_in_store(path)
    train, evals = _session_ids(path, "train"), _session_ids(path, "eval")
    manifests = [m for r in results for m in r["manifests"]]
    figures = {"processes": procs, "rows_attempted": 50 + sum(r["attempted"] for r in results),
               "rows_stored": len(ids), "distinct_ids": len(set(ids)), "draws": len(manifests),
               "train_repeats": len(train) - len(set(train)),
               "eval_repeats": len(evals) - len(set(evals)),
               "train_eval_overlap": len(set(train) & set(evals)), "wall_s": round(wall, 1)}
    print("stress figures:", json.dumps(figures))
    assert len(ids) == len(set(ids))
    assert figures["train_repeats"] == figures["eval_repeats"] == figures["train_eval_overlap"] == 0
    assert len(train) == len(evals) == 3 * 6 * procs
    for m in manifests:  # every batch replays to the same ids
        assert replay(m, path=path).ids == m["ids"]


def test_concurrent_first_writes_into_a_new_store(tmp_path):
    path = str(tmp_path / "new.lance")
    code = textwrap.dedent("""
        import sys, json
        from persona_index import PersonaIndex
        from persona_index.embed import HashEmbedder
        PersonaIndex(sys.argv[1], HashEmbedder(dim=16)).add([{"text": t} for t in json.loads(sys.argv[2])])
    """)
    texts = json.dumps(TEXTS[:120])
    ps = [subprocess.Popen([sys.executable, "-c", code, path, texts], stderr=subprocess.PIPE,
                           text=True) for _ in range(3)]
    errs = [p.communicate(timeout=60)[1] for p in ps]
    assert all(p.returncode == 0 for p in ps), errs
    ids = _ids_in_store(path)
    assert len(ids) == len(set(ids)) == 120


def test_exclusion_holds_both_ways(tmp_path):
    path = str(tmp_path / "p.lance")
    idx = PersonaIndex(path, HashEmbedder(dim=16))
    idx.add([{"text": t} for t in TEXTS[:60]])
    b = draw(PersonaIndex(path), 20, "uniform", seed=1, session="eval", exclude_sessions=["train"])
    # train was drawn from nothing yet; now train draws without naming eval
    a = draw(PersonaIndex(path), 40, "uniform", seed=2, session="train")
    assert not set(a.ids) & set(b.ids)
    assert a.manifest["exclude_sessions"] == ["eval"]
    with pytest.raises(Exception, match="only 0 are available"):
        draw(PersonaIndex(path), 1, "uniform", seed=3, session="train")


def test_add_is_idempotent_by_id(tmp_path):
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(dim=16))
    first = idx.add([{"text": t} for t in TEXTS[:30]])
    again = idx.add([{"text": t.upper()} for t in TEXTS[:30]] + [{"text": TEXTS[30]}])
    assert first["added"] == 30 and again == {"added": 1, "skipped": 30,
                                              "table_version": first["table_version"] + 1}
    assert idx.count() == 31


def test_type_conflict_is_refused_before_any_write(tmp_path, new_store):
    from persona_index.ingest import ingest_file

    good = tmp_path / "a.jsonl"
    good.write_text("\n".join(json.dumps({"persona": f"a baker number {i}", "age": 30 + i})
                              for i in range(3)) + "\n", encoding="utf-8")
    ingest_file(new_store, good, near_dedup=False)
    before = new_store.info()
    bad = tmp_path / "b.jsonl"
    rows = [{"persona": "a tailor", "age": 41, "hobby": "chess"},
            {"persona": "a potter", "age": "fifties", "hobby": "go"}]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"b.jsonl:2: field 'age': str value 'fifties' .*int64"):
        ingest_file(new_store, bad, near_dedup=False, batch_size=1)
    after = PersonaIndex(new_store.path).info()
    for key in ("count", "table_version", "columns", "attributes"):
        assert after[key] == before[key], key


def test_tag_refuses_to_overwrite_unless_told(built_store, tmp_path):
    import shutil

    from persona_index.tagging import tag

    path = tmp_path / "copy.lance"
    shutil.copytree(built_store.path, path)
    idx = PersonaIndex(path, built_store.embedder)
    regions = idx.snapshot().attribute_columns(["region"])["region"]
    with pytest.raises(InvalidQueryError, match="exist already"):
        tag(idx, "region", ["cold", "hot"])
    assert np.array_equal(PersonaIndex(path).snapshot().attribute_columns(["region"])["region"], regions)
    res = tag(PersonaIndex(path, built_store.embedder), "region", ["cold", "hot"], replace=True)
    from collections import Counter

    stored = Counter(PersonaIndex(path).snapshot().attribute_columns(["region"])["region"])
    assert stored == res["counts"] and set(stored) == {"cold", "hot"}  # both labels used


@pytest.mark.parametrize("clause", ["region = 'EU' AMD x = 1", "region = 'EU' ANDX region = 'AS'",
                                    "region = 'EU'; DROP TABLE p", "region = 'EU' -- c", "  "])
def test_where_with_trailing_garbage_is_refused(tmp_path, clause):
    from click.testing import CliRunner

    from persona_index.errors import InvalidFilterError
    from persona_index_cli.main import cli

    path = str(tmp_path / "p.lance")
    idx = PersonaIndex(path, HashEmbedder(dim=16))
    idx.add([{"text": t, "region": ["EU", "AS"][i % 2]} for i, t in enumerate(TEXTS[:20])],
            attributes=["region"])
    with pytest.raises(InvalidFilterError):
        idx.snapshot().positions(clause)
    r = CliRunner().invoke(cli, ["--db", path, "sample", "-n", "2", "--where", clause])
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and ".rs:" not in r.output


def test_long_id_lists_still_filter(tmp_path):
    path = str(tmp_path / "p.lance")
    idx = PersonaIndex(path, HashEmbedder(dim=16))
    idx.add([{"text": t} for t in TEXTS[:300]])
    ids = idx.snapshot().dataset.to_table(columns=["id"]).column("id").to_pylist()
    fake = [f"{i:020x}" for i in range(1000)]
    clause = "id IN (" + ", ".join(f"'{x}'" for x in ids[:200] + fake) + ")"
    assert len(idx.snapshot().positions(clause)) == 200
    b = draw(PersonaIndex(path), 50, seed=0, where=clause)
    assert set(b.ids) <= set(ids[:200])
