import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from persona_index import PersonaIndex
from persona_index.errors import InputFileError, RowRejected
from persona_index.ingest import (MAX_TEXT_BYTES, ingest_file, ingest_records, normalize_text,
                                  persona_id)
from tests.conftest import write_jsonl

ROWS = [
    {"persona": "A marine biologist in Chile who studies kelp forests", "region": "South America",
     "age_band": "35-44", "output": "x" * 300},
    {"persona": "A retired train conductor in Poland who collects timetables", "region": "Europe",
     "age_band": "65+", "output": "y" * 300},
    {"persona": "A street food vendor in Bangkok who dreams of opening a restaurant",
     "region": "Asia", "age_band": "25-34", "output": "z" * 300},
    {"persona": "A nurse in rural Kenya who trains community health volunteers", "region": "Africa",
     "age_band": "45-54", "output": "w" * 300},
]


def state(idx):
    return (idx.count(), idx.version) if idx.exists else (0, None)


def test_ids_are_content_hashes_of_normalised_text():
    assert persona_id("A  Nurse in Kenya ") == persona_id("a nurse in kenya")
    assert persona_id("a nurse in kenya") != persona_id("a nurse in ghana")
    assert normalize_text("Ｆｕｌｌwidth\tText") == "fullwidth text"


def test_round_trip_jsonl_with_attributes_and_provenance(new_store, tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", ROWS)
    s = ingest_file(new_store, f, licence="CC-BY-4.0")
    assert (s.read, s.added, s.rejected) == (4, 4, 0)
    assert new_store.count() == 4
    assert set(new_store.attributes) == {"region", "age_band"}
    assert "output" in new_store.columns and "output" not in new_store.attributes
    got = new_store.get(persona_id(ROWS[3]["persona"]))[0]
    assert got["text"] == ROWS[3]["persona"] and got["region"] == "Africa"
    assert got["licence"] == "CC-BY-4.0" and got["source"] == str(f) and got["source_line"] == 4
    # export keeps every row and the provenance
    n = new_store.export(tmp_path / "out.jsonl")
    back = [json.loads(l) for l in open(tmp_path / "out.jsonl")]
    assert n == 4 and {r["text"] for r in back} == {r["persona"] for r in ROWS}
    assert all(r["licence"] == "CC-BY-4.0" for r in back)
    assert new_store.export(tmp_path / "out.parquet") == 4
    t = pq.read_table(tmp_path / "out.parquet")
    assert sorted(t.column("id").to_pylist()) == sorted(persona_id(r["persona"]) for r in ROWS)


def test_same_file_twice_adds_nothing(new_store, tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", ROWS)
    ingest_file(new_store, f)
    before = state(new_store)
    s = ingest_file(new_store, f)
    assert s.added == 0 and s.exact_duplicates == 4
    assert state(new_store) == before


def test_exact_dedup_within_file_keeps_first(new_store, tmp_path):
    rows = [ROWS[0], {"persona": "  a MARINE biologist in Chile who studies kelp   forests"}, ROWS[1]]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    rep = tmp_path / "report.jsonl"
    s = ingest_file(new_store, f, report=str(rep))
    assert (s.added, s.exact_duplicates) == (2, 1)
    kept = new_store.get(persona_id(ROWS[0]["persona"]))[0]
    assert kept["text"] == ROWS[0]["persona"] and kept["source_line"] == 1
    entry = [json.loads(l) for l in open(rep)][0]
    assert entry["line"] == 2 and entry["reason"] == "exact-duplicate"
    assert entry["matched_line"] == 1


def test_near_dedup_within_batch_and_against_store(new_store, tmp_path):
    a = "A nurse in rural Kenya who trains community health volunteers"
    b = "A nurse in rural Kenya who trains community health volunteers."  # near, not exact? see below
    c = "A nurse in rural Kenya who trains community-health volunteers!"
    assert persona_id(a) != persona_id(c)
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": a}, {"persona": c}, {"persona": ROWS[0]["persona"]}])
    s = ingest_file(new_store, f, report=str(tmp_path / "r.jsonl"))
    assert (s.added, s.near_duplicates) == (2, 1)
    entry = [json.loads(l) for l in open(tmp_path / "r.jsonl")][0]
    assert entry["reason"] == "near-duplicate" and entry["matched_id"] == persona_id(a)
    assert entry["line"] == 2 and 0.95 <= entry["similarity"] < 1.0 + 1e-6
    assert new_store.get(persona_id(a)) and not new_store.get(persona_id(c))
    # against the store, in a later ingest
    f2 = write_jsonl(tmp_path / "q.jsonl", [{"persona": b.replace("volunteers.", "volunteers !")}])
    s2 = ingest_file(new_store, f2, report=str(tmp_path / "r2.jsonl"))
    assert (s2.added, s2.near_duplicates) == (0, 1)
    e2 = json.loads(open(tmp_path / "r2.jsonl").readline())
    assert e2["matched_in"] == "store" and e2["matched_id"] == persona_id(a)
    # the same lookup through the k-means blocks (used from 200k stored rows on)
    s_b = ingest_records(new_store, [{"persona": b.replace("volunteers.", "volunteers !")}],
                         blocking_min=1, report=str(tmp_path / "r3.jsonl"))
    assert (s_b.added, s_b.near_duplicates) == (0, 1) and s_b.near_dedup_method.startswith("blocked")
    e3 = json.loads(open(tmp_path / "r3.jsonl").readline())
    assert e3["matched_in"] == "store" and e3["matched_id"] == persona_id(a)
    # turned off, the near duplicate is kept
    s3 = ingest_file(new_store, f2, near_dedup=False)
    assert s3.added == 1


def test_keep_first_is_greedy_over_kept_rows():
    from persona_index.dedup import near_dups_within

    # b ~ a and c ~ b, but c !~ a: b is dropped (matches a), c is kept
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([np.cos(0.25), np.sin(0.25), 0])
    c = np.array([np.cos(0.5), np.sin(0.5), 0])
    thr = float(np.cos(0.3))
    kept, match, sim = near_dups_within(np.stack([a, b, c]).astype(np.float32), thr)
    assert kept.tolist() == [True, False, True] and match[1] == 0


@pytest.mark.parametrize("content,line", [
    ('{"persona": "ok one"}\n{"persona": "broken"\n{"persona": "ok two"}\n', 2),
    (b'{"persona": "ok"}\n{"persona": "bad \xff\xfe utf8"}\n', 2),
    ('{"persona": "ok"}\n[1, 2]\n', 2),
])
def test_broken_jsonl_names_line_and_writes_nothing(new_store, tmp_path, content, line):
    write_jsonl(tmp_path / "seed.jsonl", ROWS[:2])
    ingest_file(new_store, tmp_path / "seed.jsonl")
    before = state(new_store)
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputFileError) as ei:
        ingest_file(new_store, f)
    assert f"bad.jsonl:{line}:" in str(ei.value) and ei.value.line == line
    assert state(new_store) == before


def test_broken_file_on_a_new_store_creates_nothing(tmp_path, embedder):
    idx = PersonaIndex(tmp_path / "fresh.lance", embedder)
    f = tmp_path / "bad.jsonl"
    f.write_text('{"persona": "fine"}\n{oops\n')
    with pytest.raises(InputFileError):
        ingest_file(idx, f)
    assert not idx.exists


def test_ragged_csv_and_empty_and_unknown_field(new_store, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("persona,region\nA baker in Lyon,Europe\nA welder in Ohio,North America,extra\n")
    with pytest.raises(InputFileError, match=r"r.csv:3: ragged row"):
        ingest_file(new_store, f)
    e = tmp_path / "e.jsonl"
    e.write_text("")
    with pytest.raises(InputFileError, match="empty file"):
        ingest_file(new_store, e)
    g = write_jsonl(tmp_path / "g.jsonl", ROWS[:1])
    with pytest.raises(InputFileError, match="unknown text field 'bio'"):
        ingest_file(new_store, g, text_field="bio")
    assert not new_store.exists


def test_csv_and_parquet_ingest(new_store, tmp_path):
    f = tmp_path / "p.csv"
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["text", "region"])
        w.writeheader()
        for r in ROWS[:2]:
            w.writerow({"text": r["persona"], "region": r["region"]})
    assert ingest_file(new_store, f).added == 2
    pq.write_table(pa.Table.from_pylist([{"description": r["persona"], "region": r["region"]}
                                         for r in ROWS]), tmp_path / "p.parquet")
    s = ingest_file(new_store, tmp_path / "p.parquet")
    assert (s.added, s.exact_duplicates) == (2, 2)
    assert new_store.count() == 4 and "region" in new_store.attributes


def test_unusable_rows_are_rejected_with_line_and_reason(new_store, tmp_path):
    rows = [ROWS[0], {"region": "Asia"}, {"persona": "   "}, {"persona": 42},
            {"persona": "a" * (MAX_TEXT_BYTES + 1)}, ROWS[1]]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    rep = tmp_path / "r.jsonl"
    s = ingest_file(new_store, f, report=str(rep))
    assert (s.added, s.rejected) == (2, 4)
    entries = [json.loads(l) for l in open(rep)]
    assert [e["line"] for e in entries] == [2, 3, 4, 5]
    assert "no 'persona' field" in entries[0]["detail"] and entries[1]["detail"] == "empty text"
    assert "bytes" in entries[3]["detail"]
    # --strict refuses the whole file and writes nothing
    before = state(new_store)
    with pytest.raises(RowRejected, match=r"p.jsonl:2"):
        ingest_file(new_store, f, strict=True)
    assert state(new_store) == before


def test_interrupted_ingest_completes_without_duplicates(tmp_path, embedder, pool_records):
    recs = pool_records[:120]
    f = write_jsonl(tmp_path / "p.jsonl", recs)
    clean = PersonaIndex(tmp_path / "clean.lance", embedder)
    ingest_file(clean, f, batch_size=40)
    idx = PersonaIndex(tmp_path / "crash.lance", embedder)
    real_write, calls = idx.write, {"n": 0}

    def crashing_write(batch, attributes=(), **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed mid-ingest")
        return real_write(batch, attributes, **kw)

    idx.write = crashing_write
    with pytest.raises(KeyboardInterrupt):
        ingest_file(idx, f, batch_size=40)
    partial = PersonaIndex(tmp_path / "crash.lance", embedder)
    assert 0 < partial.count() < clean.count()
    s = ingest_file(partial, f, batch_size=40)
    assert s.exact_duplicates == 40
    ids = partial.vectors()[0]
    assert len(ids) == len(set(ids)) == clean.count()
    assert set(ids) == set(clean.vectors()[0])


def test_records_api_accepts_dicts_strings_and_arrow(new_store):
    s = ingest_records(new_store, ["A glassblower in Murano", {"text": "A sherpa guide in Nepal"}])
    assert s.added == 2
    s2 = ingest_records(new_store, pa.Table.from_pylist([{"text": "A lighthouse keeper in Maine"}]))
    assert s2.added == 1 and new_store.count() == 3


def test_attribute_detection_prefers_short_categoricals(tmp_path):
    from persona_index.ingest import iter_file, plan_records

    rows = [{"persona": f"persona {i}", "region": ["Asia", "Europe"][i % 2],
             "name": f"person-{i}", "output": "long text " * 20, "age": 30 + i} for i in range(60)]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    plan = plan_records(iter_file(f), path=str(f))
    assert list(plan.attributes) == ["region"]
    assert plan.plain["age"] == ("age", "int64") and plan.plain["output"][1] == "string"


def test_blocked_near_dedup_finds_planted_duplicates(tmp_path):
    """Large stores check near duplicates through k-means blocking; forced on a
    small store here, it must find the same planted near duplicates as exact."""
    from persona_index.embed import HashEmbedder
    from persona_index.dedup import KMeansBlocks

    rng = np.random.default_rng(0)
    C = rng.standard_normal((30, 32)).astype(np.float32)
    X = C[rng.integers(30, size=6000)] + 0.4 * rng.standard_normal((6000, 32)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    blocks = KMeansBlocks(X)
    src = rng.choice(6000, 200, replace=False)
    q = X[src] + 0.03 * rng.standard_normal((200, 32)).astype(np.float32)  # cos ~ 0.99
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    best, arg = blocks.nearest(q)
    exact = q @ X.T
    assert np.array_equal(arg, exact.argmax(axis=1))
    np.testing.assert_allclose(best, exact.max(axis=1), atol=1e-6)
    # and through an ingest with the threshold lowered so the blocked path runs
    idx = PersonaIndex(tmp_path / "b.lance", HashEmbedder(16))
    ingest_records(idx, [f"persona {i}" for i in range(300)], near_dedup=False)
    s = ingest_records(idx, ["persona 7", "persona 7 new", "persona 301"], blocking_min=100)
    assert s.near_dedup_method.startswith("blocked") and s.exact_duplicates == 1 and s.added == 2
