"""Hugging Face datasets in (objects, save_to_disk folders, parquet shard
folders) and the MinHash stage of the ingest (issue 13, items 3 and 4)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import IngestOptionError, InputFileError, MissingDependencyError
from persona_index.ingest import ingest_file, ingest_records, persona_id
from persona_index.minhash import find_duplicates, word_shingles
from tests.conftest import write_jsonl

ROWS = [
    {"persona": "A marine biologist in Chile who studies kelp forests", "region": "South America",
     "age_band": "35-44", "age": 41},
    {"persona": "A retired train conductor in Poland who collects timetables", "region": "Europe",
     "age_band": "65+", "age": 70},
    {"persona": "A street food vendor in Bangkok who dreams of opening a restaurant",
     "region": "Asia", "age_band": "25-34", "age": None},
    {"persona": "A nurse in rural Kenya who trains community health volunteers", "region": "Africa",
     "age_band": "45-54", "age": 52},
    {"persona": "Ein Bäcker in Wien, der Sauerteig liebt", "region": "Europe", "age_band": "25-34",
     "age": 29},
]
#: 37 distinct words; a copy with one word changed has Jaccard 36 / 38 = 0.947
LONG = ("a retired train conductor from rural Poland who collects old railway timetables, "
        "restores steam engines on weekends, writes a blog about forgotten branch lines for "
        "fellow enthusiasts and teaches local school children the history of the regional "
        "rail network")
REWORDED = LONG.replace("old railway", "rare railway")
OTHER = "a glassblower in Murano who teaches apprentices and sells vases to tourists"


def _store(tmp_path, name="s.lance"):
    return PersonaIndex(tmp_path / name, HashEmbedder(dim=16))


def _stored(idx):
    return {r["text"]: r for r in idx.snapshot().dataset.to_table().to_pylist()}


def _cli(*args):
    from persona_index_cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _hash_model():
    from persona_index_cli.main import cli

    name = "--embed-model" if any("--embed-model" in p.opts for p in cli.params) else "--model"
    return [name, "hash-16"]


def _report(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def _exact_jaccard(a, b):
    A, B = set(word_shingles(a)), set(word_shingles(b))
    return len(A & B) / len(A | B)


# -- Hugging Face datasets ----------------------------------------------------

def test_dataset_round_trip_stores_the_same_texts_and_attributes(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    for kind, obj in (("dataset", ds), ("iterable", ds.to_iterable_dataset())):
        idx = _store(tmp_path, f"{kind}.lance")
        s = ingest_records(idx, obj, attrs=["region", "age_band"], batch_size=2, source=kind)
        assert (s.read, s.added, s.batches) == (5, 5, 3), kind  # read in batches of 2
        got = _stored(idx)
        assert set(got) == {r["persona"] for r in ROWS}
        for i, r in enumerate(ROWS, 1):
            row = got[r["persona"]]
            assert (row["region"], row["age_band"], row["age"]) == (r["region"], r["age_band"],
                                                                   r["age"]), kind
            assert row["id"] == persona_id(r["persona"]) and row["source_line"] == i
        assert set(idx.attributes) == {"region", "age_band"} and "age" in idx.columns
        assert ingest_records(idx, obj).added == 0  # the second time adds nothing


def test_a_dataset_dict_is_refused_with_its_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS),
                               "test": datasets.Dataset.from_list(ROWS[:1])})
    idx = _store(tmp_path)
    with pytest.raises(InputFileError, match=r"splits \['train', 'test'\].*ds\['train'\]"):
        ingest_records(idx, dd)
    assert not idx.exists


def test_save_to_disk_folder_through_the_cli(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    db = tmp_path / "s.lance"
    r = _cli("--db", db, *_hash_model(), "ingest", tmp_path / "ds", "--attr", "region",
             "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["read"], out["added"], out["text_field"]) == (5, 5, "persona")
    got = _stored(PersonaIndex(db))
    assert {t: g["region"] for t, g in got.items()} == {r["persona"]: r["region"] for r in ROWS}
    # a dict of splits names them; one split's folder goes in
    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:2]),
                          "test": datasets.Dataset.from_list(ROWS[2:])}).save_to_disk(
        str(tmp_path / "dd"))
    r = _cli("--db", tmp_path / "t.lance", *_hash_model(), "ingest", tmp_path / "dd",
             "--no-progress")
    assert r.exit_code == 1 and "splits ['train', 'test']" in r.output and "dd/train" in r.output
    r = _cli("--db", tmp_path / "t.lance", *_hash_model(), "ingest", tmp_path / "dd" / "test",
             "--no-progress", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 3, r.output


def test_parquet_shard_folder_through_the_cli(tmp_path):
    root = tmp_path / "shards"
    (root / "data").mkdir(parents=True)
    (root / ".cache").mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS[:2]), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[2:]), root / "data" / "train-00001-of-00002.parquet")
    pq.write_table(pa.Table.from_pylist([{"persona": "a hidden persona"}]),
                   root / ".cache" / "x.parquet")  # hidden folders are not shards
    db = tmp_path / "s.lance"
    r = _cli("--db", db, *_hash_model(), "ingest", root, "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 5
    got = _stored(PersonaIndex(db))
    assert set(got) == {r["persona"] for r in ROWS}
    # rows are numbered across the shards, in path order
    assert [got[r["persona"]]["source_line"] for r in ROWS] == [1, 2, 3, 4, 5]
    assert got[ROWS[3]["persona"]]["age"] == 52
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _cli("--db", db, *_hash_model(), "ingest", empty, "--no-progress")
    assert r.exit_code == 1 and "neither parquet shards" in r.output


def test_a_missing_datasets_library_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "state.json").write_text("{}")  # a save_to_disk layout
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"persona-index\[hf\]"):
        ingest_file(_store(tmp_path), tmp_path / "ds")
    r = _cli("--db", tmp_path / "c.lance", *_hash_model(), "ingest", tmp_path / "ds",
             "--no-progress")
    assert r.exit_code == 1 and "persona-index[hf]" in r.output and "Traceback" not in r.output


# -- MinHash -------------------------------------------------------------------

class _Counting(HashEmbedder):
    """The hash embedder, remembering every text it was asked to embed."""

    def __init__(self):
        super().__init__(16)
        self.seen: list = []

    def encode(self, texts, **kw):
        self.seen.extend(texts)
        return super().encode(texts, **kw)


def test_minhash_catches_a_reworded_copy_the_hash_embedder_does_not(tmp_path):
    rows = [{"persona": LONG}, {"persona": OTHER}, {"persona": REWORDED}]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    plain = ingest_file(_store(tmp_path, "plain.lance"), f)
    assert (plain.added, plain.near_duplicates, plain.minhash_duplicates) == (3, 0, 0)
    assert plain.minhash is None
    emb = _Counting()
    idx = PersonaIndex(tmp_path / "mh.lance", emb)
    s = ingest_file(idx, f, minhash=True, report=str(tmp_path / "r.jsonl"))
    assert (s.read, s.added, s.minhash_duplicates, s.near_duplicates) == (3, 2, 1, 0)
    assert set(_stored(idx)) == {LONG, OTHER}
    assert REWORDED not in emb.seen  # dropped before it cost an embedding
    assert s.minhash == {"threshold": 0.9, "num_perm": 128, "bands": 16, "rows_per_band": 8,
                         "shingles": "word 1-grams", "seed": 0}
    (row,) = _report(tmp_path / "r.jsonl")
    assert row["reason"] == "minhash-duplicate" and row["line"] == 3
    assert row["id"] == persona_id(REWORDED) and row["matched_id"] == persona_id(LONG)
    assert row["matched_in"] == "input" and row["matched_line"] == 1
    assert 0.9 <= row["jaccard"] < 1.0
    assert abs(row["jaccard"] - _exact_jaccard(LONG, REWORDED)) < 0.05
    # a stricter threshold keeps it
    strict = ingest_file(_store(tmp_path, "strict.lance"), f, minhash={"threshold": 0.99})
    assert (strict.added, strict.minhash_duplicates) == (3, 0)


def test_minhash_against_the_store_and_a_reingest_adds_nothing(tmp_path):
    idx = _store(tmp_path)
    ingest_records(idx, [LONG, OTHER])  # stored without the MinHash stage
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": REWORDED}, {"persona": "a beekeeper"},
                                           {"persona": OTHER.upper() + "!"}])
    s = ingest_file(idx, f, minhash=True, report=str(tmp_path / "r.jsonl"))
    assert (s.added, s.minhash_duplicates) == (1, 2)
    rep = {r["line"]: r for r in _report(tmp_path / "r.jsonl")}
    assert rep[1]["matched_id"] == persona_id(LONG) and rep[1]["matched_in"] == "store"
    assert rep[3]["matched_id"] == persona_id(OTHER) and rep[3]["jaccard"] == 1.0
    assert "matched_line" not in rep[1]
    version = idx.version
    again = ingest_file(idx, f, minhash=True)
    assert (again.added, again.exact_duplicates, again.minhash_duplicates) == (0, 1, 2)
    assert idx.version == version and idx.count() == 3


def test_minhash_through_the_cli_with_its_options(tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": LONG}, {"persona": REWORDED}])
    db = tmp_path / "s.lance"
    r = _cli("--db", db, *_hash_model(), "ingest", f, "--minhash", "--minhash-threshold", "0.8",
             "--minhash-perms", "64", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["added"], out["minhash_duplicates"]) == (1, 1)
    assert (out["minhash"]["threshold"], out["minhash"]["num_perm"]) == (0.8, 64)
    assert out["examples"][0]["reason"] == "minhash-duplicate"
    r = _cli("--db", db, *_hash_model(), "ingest", f, "--no-progress")  # off by default
    assert r.exit_code == 0 and "minhash_duplicates" not in r.output
    assert r.output.split("added", 1)[1].split()[0] == "1"  # the reworded copy goes in
    r = _cli("--db", db, *_hash_model(), "ingest", f, "--minhash-threshold", "0.8")
    assert r.exit_code == 2 and "go with --minhash" in r.output
    r = _cli("--db", db, *_hash_model(), "ingest", f, "--minhash", "--minhash-threshold", "0")
    assert r.exit_code == 2


def test_bad_minhash_settings_are_refused_before_any_write(tmp_path):
    idx = _store(tmp_path)
    for bad, msg in (({"threshold": 0}, "threshold"), ({"num_perm": 0}, "num_perm"),
                     ({"num_perm": 128, "bands": 12}, "divide"), ({"perms": 64}, "unknown"),
                     ("yes", "True, False")):
        with pytest.raises(IngestOptionError, match=msg):
            ingest_records(idx, [LONG], minhash=bad)
    assert not idx.exists


def test_a_missing_minhash_library_names_the_extra(tmp_path, monkeypatch):
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": LONG}])
    monkeypatch.setitem(sys.modules, "rensa", None)  # as if it were not installed
    idx = _store(tmp_path)
    with pytest.raises(MissingDependencyError, match=r"pip install 'persona-index\[minhash\]'"):
        ingest_file(idx, f, minhash=True)
    assert not idx.exists
    r = _cli("--db", tmp_path / "s.lance", *_hash_model(), "ingest", f, "--minhash",
             "--no-progress")
    assert r.exit_code == 1 and "persona-index[minhash]" in r.output
    assert "Traceback" not in r.output
    assert ingest_file(idx, f).added == 1  # without --minhash nothing needs it


class _Topic(HashEmbedder):
    """Every text that names a zebra gets the same vector (a cosine-1.0 near
    duplicate of every other zebra text); the rest, the hash embedder's."""

    def encode(self, texts, **kw):
        out = super().encode(texts, **kw)
        zebra = [i for i, t in enumerate(texts) if "zebra" in t.lower()]
        out[zebra] = np.eye(self.dim, dtype=np.float32)[0]
        return out


def test_a_row_the_embedding_stage_drops_is_no_minhash_match_later(tmp_path):
    first = "a zebra keeper in Oslo who loves jazz"
    second = first + " and cats"  # word Jaccard 0.8: MinHash keeps it, the embedding drops it
    third = second.upper() + "!"  # the same words as the second
    idx = PersonaIndex(tmp_path / "s.lance", _Topic(16))
    s = ingest_records(idx, [first, second, third], minhash=True, batch_size=1,
                       report=str(tmp_path / "r.jsonl"))
    assert s.added == 1 and s.near_duplicates == 2 and s.minhash_duplicates == 0
    rep = _report(tmp_path / "r.jsonl")
    assert [r["matched_id"] for r in rep] == [persona_id(first)] * 2  # never the dropped second


def test_find_duplicates_agrees_with_exact_jaccard():
    """A row with an earlier kept row of the same words (in another order) is
    dropped, one with none of exact word Jaccard 0.8 or more is kept, and every
    estimate is near the exact value."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(400)]
    texts = []
    for _ in range(30):
        base = list(rng.choice(vocab, 40, replace=False))
        texts.append(" ".join(base))
        for changed in (0, 1, 4, 10):  # Jaccard 1, 39/41, 36/44, 30/50
            words = list(base)
            for j in rng.choice(40, changed, replace=False):
                words[j] = f"x{rng.integers(10**6)}"
            texts.append(" ".join(rng.permutation(words)))
    match, jac = find_duplicates(texts)
    for i, t in enumerate(texts):
        earlier = [_exact_jaccard(t, texts[j]) for j in range(i) if match[j] < 0]
        best = max(earlier, default=0.0)
        if best == 1.0:
            assert match[i] >= 0, (i, best)
        if best < 0.8:
            assert match[i] < 0, (i, best)
        if match[i] >= 0:
            assert abs(jac[i] - _exact_jaccard(t, texts[match[i]])) < 0.1
            assert jac[i] >= 0.9
    assert (match >= 0).sum() >= 30 + 25  # the reorders, and most one-word copies (0.951)
