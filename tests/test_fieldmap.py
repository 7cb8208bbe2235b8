"""Field names map stably (issue #21 item 5): one source field name (exact,
case kept) lands in the same column in every file of a store, and two
distinct source names never share a column, whatever the key order.

Every value written here is ``"<file>:<source field>"``, so a column's values
say which source fields fed it: a column fed by two source fields, or a source
field spread over two columns, is the mixing this module guards against.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.ingest import ingest_file
from persona_index_cli.main import cli
from tests.conftest import write_jsonl

ROOT = Path(__file__).resolve().parents[1]

#: the three files of the issue: fields besides ``text``, in the first key order
FILES = {"a": ["region"], "b": ["Region", "region"], "c": ["region_2", "region"]}
#: the mapping the documented rule gives for a, b, c in this order (docs/store.md)
EXPECTED = {"region": "region", "Region": "region_2", "region_2": "region_2_2"}


def _write_files(d: Path, reverse: bool, rows: int = 4) -> list[Path]:
    out = []
    for name, fields in FILES.items():
        keys = list(reversed(fields)) if reverse else fields
        recs = []
        for i in range(rows):
            rec = {"text": f"persona {name} number {i} from somewhere"}
            rec.update({k: f"{name}:{k}" for k in keys})
            recs.append(rec)
        out.append(write_jsonl(d / f"{name}.jsonl", recs))
    return out


def _sources_by_column(idx: PersonaIndex) -> dict:
    """column -> the source fields whose values it holds (from the tagged values)."""
    seen = defaultdict(set)
    for r in idx.snapshot().dataset.to_table().to_pylist():
        for col, v in r.items():
            if isinstance(v, str) and ":" in v and col not in ("text", "source", "id"):
                seen[col].add(v.split(":", 1)[1])
    return dict(seen)


def _assert_stable(idx: PersonaIndex) -> None:
    by_col = _sources_by_column(idx)
    mixed = {c: sorted(s) for c, s in by_col.items() if len(s) > 1}
    assert not mixed, f"columns fed by several source fields: {mixed}"
    cols_of = defaultdict(set)
    for c, s in by_col.items():
        cols_of[next(iter(s))].add(c)
    spread = {f: sorted(c) for f, c in cols_of.items() if len(c) > 1}
    assert not spread, f"source fields spread over several columns: {spread}"


@pytest.mark.parametrize("reverse", [False, True], ids=["key-order", "reversed-keys"])
def test_three_files_python(tmp_path, reverse):
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    summaries = [ingest_file(idx, p, near_dedup=False) for p in _write_files(tmp_path, reverse)]
    _assert_stable(idx)
    assert idx.meta["fields"] == EXPECTED
    # the stored order is first-seen order, not key order
    assert list(idx.meta["fields"]) == list(EXPECTED)
    # each summary shows its own file's fields, as stored
    for s, fields in zip(summaries, FILES.values()):
        assert s.fields == {f: EXPECTED[f] for f in sorted(fields)}
    assert idx.info()["fields"] == EXPECTED
    # a fourth file with every name again, in yet another key order, lands where they did
    p = write_jsonl(tmp_path / "d.jsonl", [{"region": "d:region", "text": "persona d",
                                            "region_2": "d:region_2", "Region": "d:Region"}])
    assert ingest_file(idx, p, near_dedup=False).fields == dict(sorted(EXPECTED.items()))
    _assert_stable(idx)


@pytest.mark.parametrize("reverse", [False, True], ids=["key-order", "reversed-keys"])
def test_three_files_cli(tmp_path, reverse):
    db = str(tmp_path / "db")
    run = CliRunner().invoke
    docs = {}
    for p in _write_files(tmp_path, reverse):
        r = run(cli, ["--db", db, "--embed-model", "hash-16", "ingest", str(p), "--no-near-dedup",
                      "--no-progress", "--json"])
        assert r.exit_code == 0, r.output
        docs[p.stem] = json.loads(r.stdout)
    _assert_stable(PersonaIndex(db, HashEmbedder(16), must_exist=True))
    for name, doc in docs.items():
        assert doc["fields"] == {f: EXPECTED[f] for f in sorted(FILES[name])}
    text = run(cli, ["--db", db, "--embed-model", "hash-16", "ingest", str(p), "--no-near-dedup",
                     "--no-progress"])
    assert text.exit_code == 0 and '"region_2": "region_2_2"' in text.stdout, text.output
    info = run(cli, ["--db", db, "--embed-model", "hash-16", "info", "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["fields"] == EXPECTED
    shown = run(cli, ["--db", db, "--embed-model", "hash-16", "info"])
    line = next(ln for ln in shown.stdout.splitlines() if ln.startswith("fields"))
    assert json.loads(line.split(None, 1)[1]) == EXPECTED


def _drop_mapping(idx: PersonaIndex) -> None:
    """Make ``idx`` look as the old code left it: the same metadata, no mapping."""
    from persona_index.snapshot import META_KEY

    meta = dict(idx.meta)
    meta.pop("fields", None)
    idx._dataset().update_schema_metadata({META_KEY: json.dumps(meta)}, replace=False)
    assert "fields" not in idx.meta


def test_store_without_mapping_reads_as_identity(tmp_path):
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": f"old {i}", "region": "a:region",
                                            "region_2": "a:region_2"} for i in range(3)])
    ingest_file(idx, a, near_dedup=False)
    _drop_mapping(idx)
    # the old columns are read as identity: region_2 is region_2's, region is region's
    b = write_jsonl(tmp_path / "b.jsonl", [{"Region": "b:Region", "region_2": "b:region_2",
                                            "text": f"new {i}", "region": "b:region"}
                                           for i in range(3)])
    s = ingest_file(idx, b, near_dedup=False)
    _assert_stable(idx)
    assert s.fields == {"Region": "region_3", "region": "region", "region_2": "region_2"}
    assert idx.meta["fields"] == {"region": "region", "region_2": "region_2", "Region": "region_3"}
    # the mapping survives reopening the store, in a new object
    again = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16), must_exist=True)
    assert again.meta["fields"] == idx.meta["fields"]
    c = write_jsonl(tmp_path / "c.jsonl", [{"text": "newer", "Region": "c:Region"}])
    assert ingest_file(again, c, near_dedup=False).fields == {"Region": "region_3"}
    _assert_stable(again)


_CHILD = """
import sys
from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.ingest import ingest_file
idx = PersonaIndex(sys.argv[1], HashEmbedder(16))
print(ingest_file(idx, sys.argv[2], near_dedup=False, batch_size=5).added)
"""


@pytest.mark.slow
def test_concurrent_ingests_do_not_mix_columns(tmp_path):
    # both plan against the same (empty) store, where each name's column is free
    files = [write_jsonl(tmp_path / f"{j}.jsonl", [{"text": f"persona {i} of file {j}", k: f"{j}:{k}"}
                                                  for i in range(40)])
             for j, k in enumerate(("Region", "REGION"))]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "p.lance"), str(f)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for f in files]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    assert idx.count() == 80
    _assert_stable(idx)
    assert sorted(idx.meta["fields"].values()) == ["region", "region_2"]
    assert sorted(idx.meta["fields"]) == ["REGION", "Region"]
