"""Ingest of precomputed vectors from an input field (``vectors_field``,
``ingest --vectors-field``; issue #25 item 3): nothing embedded, each row's
vector checked before any write, errors naming the file, the line and the field."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from persona_index import PersonaIndex
from persona_index.distributed import ingest_file_ray
from persona_index.embed import HashEmbedder
from persona_index.errors import IngestOptionError, InputFileError
from persona_index.ingest import ingest_file

DIM = 8


class CountingEmbedder(HashEmbedder):
    """The hash embedder, counting the texts it embeds."""

    def __init__(self, dim):
        super().__init__(dim)
        self.embedded = 0

    def encode(self, texts, **kw):
        self.embedded += len(texts)
        return super().encode(texts, **kw)


def _rows(n, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n, DIM)) * rng.uniform(0.5, 3.0, (n, 1))  # not unit length
    return [{"text": f"persona number {i}", "region": "ab"[i % 2], "emb": V[i].tolist()}
            for i in range(n)], V


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _stored(idx):
    ids, X = idx.vectors()
    return dict(zip(ids, X))


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_vectors_come_from_the_field_unit_length_and_nothing_is_embedded(tmp_path, fmt):
    rows, V = _rows(50)
    if fmt == "jsonl":
        src = _jsonl(tmp_path / "p.jsonl", rows)
    else:
        src = tmp_path / "p.parquet"
        pq.write_table(pa.Table.from_pylist(rows), src)
    emb = CountingEmbedder(DIM)
    idx = PersonaIndex(tmp_path / "s.lance", emb)
    s = ingest_file(idx, src, vectors_field="emb")
    assert (s.read, s.added) == (50, 50)
    assert emb.embedded == 0
    assert "emb" not in idx.columns and "region" in idx.attributes
    got = _stored(idx)
    for r, v in zip(rows, V):
        [h] = [x for x in idx.get([p for p in got]) if x["text"] == r["text"]]
        np.testing.assert_allclose(got[h["id"]], v / np.linalg.norm(v), rtol=0, atol=1e-6)
    # queries by a stored vector find it first
    first = next(iter(got))
    assert idx.similar(vector=got[first], k=1)[0].id == first


def test_near_duplicates_are_checked_on_the_given_vectors(tmp_path):
    rows, _ = _rows(10)
    rows[7]["emb"] = [2 * x for x in rows[3]["emb"]]  # another text, the same direction
    src = _jsonl(tmp_path / "p.jsonl", rows)
    s = ingest_file(PersonaIndex(tmp_path / "a.lance", HashEmbedder(DIM)), src, vectors_field="emb")
    assert (s.added, s.near_duplicates) == (9, 1)
    s = ingest_file(PersonaIndex(tmp_path / "b.lance", HashEmbedder(DIM)), src, vectors_field="emb",
                    near_dedup=False)
    assert (s.added, s.near_duplicates) == (10, 0)


@pytest.mark.parametrize("value, message", [
    ([0.1] * (DIM - 1), f"field 'emb': has {DIM - 1} number(s), want {DIM}"),
    (None, "field 'emb': is null"),
    ("0.1, 0.2", "field 'emb': is str, not a list of numbers"),
    ([0.1] * 3 + ["x"] + [0.1] * 4, "field 'emb': entry 3 is 'x', not a number"),
    ([0.1] * 5 + [True] + [0.1] * 2, "field 'emb': entry 5 is True, not a number"),
    ([0.1] * 2 + [None] + [0.1] * 5, "field 'emb': entry 2 is None, not a number"),
    ([0.0] * DIM, "field 'emb': is all zeros"),
    ("missing", "no vectors field 'emb'"),
])
def test_a_bad_vector_names_file_line_and_field_and_writes_nothing(tmp_path, value, message):
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(DIM))
    good, _ = _rows(5, seed=1)
    ingest_file(idx, _jsonl(tmp_path / "first.jsonl", good), vectors_field="emb")
    version, count = idx.version, idx.count()
    rows, _ = _rows(3000, seed=2)  # more than one write batch before the bad row
    if value == "missing":
        del rows[2500]["emb"]
    else:
        rows[2500]["emb"] = value
    src = _jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(InputFileError) as e:
        ingest_file(idx, src, vectors_field="emb")
    assert str(e.value).startswith(f"{src}:2501: ")
    assert message in str(e.value)
    assert (idx.version, idx.count()) == (version, count)


def test_a_nan_entry_is_refused(tmp_path):
    rows, _ = _rows(3)
    rows[1]["emb"][4] = float("nan")  # json writes NaN, and reads it back as nan
    src = _jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(InputFileError, match=r"p.jsonl:2: field 'emb': entry 4 is nan, not a finite"):
        ingest_file(PersonaIndex(tmp_path / "s.lance", HashEmbedder(DIM)), src, vectors_field="emb")


def test_the_length_asked_is_the_store_s_once_it_exists(tmp_path):
    """A new store takes the embedder's dim; an existing store its own, even
    when the handle's embedder says otherwise."""
    rows, _ = _rows(4)
    src = _jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(InputFileError, match=f"want 16"):
        ingest_file(PersonaIndex(tmp_path / "a.lance", HashEmbedder(16)), src, vectors_field="emb")
    ingest_file(PersonaIndex(tmp_path / "b.lance", HashEmbedder(DIM)), src, vectors_field="emb")
    more, _ = _rows(4, seed=5)
    more = [{**r, "text": "other " + r["text"], "emb": r["emb"] + [0.0] * 8} for r in more]
    with pytest.raises(InputFileError, match=f"has 16 number\\(s\\), want {DIM}"):
        ingest_file(PersonaIndex(tmp_path / "b.lance"), _jsonl(tmp_path / "q.jsonl", more),
                    vectors_field="emb")


def test_ray_refuses_precomputed_vectors_before_starting(tmp_path):
    rows, _ = _rows(3)
    with pytest.raises(IngestOptionError, match="vectors_field"):
        ingest_file_ray(PersonaIndex(tmp_path / "s.lance", HashEmbedder(DIM)),
                        _jsonl(tmp_path / "p.jsonl", rows), vectors_field="emb")


def test_a_parquet_vector_column_is_read_as_numpy_rows_and_checked_the_same(tmp_path):
    """iter_file(arrays=) hands the vectors as numpy rows (no Python floats);
    a non-finite entry is still refused with its file, row and field."""
    from persona_index.readers import iter_file

    rows, V = _rows(20)
    src = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    got = list(iter_file(src, arrays=["emb"]))
    assert isinstance(got[0][1]["emb"], np.ndarray)
    np.testing.assert_array_equal(np.stack([r["emb"] for _, r in got]), V)
    assert [r["text"] for _, r in got] == [r["text"] for r in rows]
    assert isinstance(next(iter_file(src))[1]["emb"], list)  # without arrays=: as before
    rows[12]["emb"][3] = float("inf")
    pq.write_table(pa.Table.from_pylist(rows), src)
    with pytest.raises(InputFileError, match=r"p.parquet:13: field 'emb': entry 3 is inf"):
        ingest_file(PersonaIndex(tmp_path / "s.lance", HashEmbedder(DIM)), src, vectors_field="emb")


def _cli(tmp_path, *args):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    by_name = {p.name: p for p in cli.params}
    opt = (by_name.get("embed_model") or by_name["model"]).opts[0]
    return CliRunner().invoke(cli, ["--db", str(tmp_path / "c.lance"), opt, "hash-16", *args])


def test_cli_ingest_vectors_field(tmp_path):
    rows, V = _rows(30)
    rows = [{**r, "emb": r["emb"] * 2} for r in rows]  # 16 numbers: hash-16's length
    src = _jsonl(tmp_path / "p.jsonl", rows)
    r = _cli(tmp_path, "ingest", str(src), "--vectors-field", "emb", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 30
    _, X = PersonaIndex(tmp_path / "c.lance").vectors()
    W = np.hstack([V, V])
    np.testing.assert_allclose(np.sort(X @ X.T, axis=None),
                               np.sort((W @ W.T) / np.outer(*[np.linalg.norm(W, axis=1)] * 2),
                                       axis=None), atol=1e-5)


def test_cli_a_bad_vector_is_one_line_exit_1_and_ray_is_a_usage_error(tmp_path):
    rows, _ = _rows(5)
    rows = [{**r, "emb": r["emb"] * 2} for r in rows]
    rows[3]["emb"][7] = "x"
    src = _jsonl(tmp_path / "p.jsonl", rows)
    r = _cli(tmp_path, "ingest", str(src), "--vectors-field", "emb", "--no-progress")
    assert r.exit_code == 1
    assert r.stderr.strip() == f"Error: {src}:4: field 'emb': entry 7 is 'x', not a number"
    assert not (tmp_path / "c.lance").exists()
    r = _cli(tmp_path, "ingest", str(src), "--vectors-field", "emb", "--engine", "ray")
    assert r.exit_code == 2 and "--vectors-field needs no embedding" in r.stderr
