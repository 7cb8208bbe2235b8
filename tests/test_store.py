import json

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import (EmbedderMismatchError, FormatVersionError, InvalidQueryError,
                                  StoreNotFoundError)
from persona_index.ingest import ingest_records, persona_id


def test_own_text_returns_itself_first(built_store, pool_records):
    for rec in pool_records[:5]:
        hits = built_store.similar(rec["persona"], k=3)
        assert hits[0].id == persona_id(rec["persona"])
        assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
        assert hits[0].attributes["profession"] == rec["profession"]


def test_similar_is_exact_against_brute_force(built_store, embedder):
    q = "a farmer worried about drought"
    ids, X = built_store.vectors()
    sims = X @ embedder.encode([q])[0]
    want = [ids[i] for i in np.argsort(-sims, kind="stable")[:10]]
    got = [h.id for h in built_store.similar(q, k=10)]
    assert got == want
    assert [h.id for h in built_store.distant(q, k=5)] == [ids[i] for i in np.argsort(sims, kind="stable")[:5]]


def test_every_distant_is_less_similar_than_every_similar(built_store):
    q = "a software engineer who writes open-source code"
    near = built_store.similar(q, k=20)
    far = built_store.distant(q, k=20)
    assert max(h.similarity for h in far) < min(h.similarity for h in near)
    assert [h.similarity for h in near] == sorted((h.similarity for h in near), reverse=True)
    assert [h.similarity for h in far] == sorted(h.similarity for h in far)


def test_filters_apply_to_both_queries(built_store):
    for fn in (built_store.similar, built_store.distant):
        hits = fn("a teacher", k=15, where="region = 'Africa'")
        assert hits and all(h.attributes["region"] == "Africa" for h in hits)
    n_africa = built_store.count(where="region = 'Africa'")
    assert len(built_store.similar("a teacher", k=10_000, where="region = 'Africa'")) == n_africa
    hits = built_store.similar("a teacher", k=5, where="region = 'Europe' AND age_band IS NOT NULL")
    assert len(hits) == min(5, built_store.count(where="region = 'Europe' AND age_band IS NOT NULL"))
    assert hits and all(h.attributes["region"] == "Europe" and h.attributes["age_band"] for h in hits)


def test_query_by_id_leaves_the_persona_out(built_store, pool_records):
    pid = persona_id(pool_records[0]["persona"])
    hits = built_store.similar(id=pid, k=5)
    assert len(hits) == 5 and pid not in [h.id for h in hits]


@pytest.mark.parametrize("kwargs,match", [
    ({"query": "x", "k": 0}, "k must be a positive integer"),
    ({"query": "x", "k": -3}, "k must be a positive integer"),
    ({"query": "x", "where": "region === 'x'"}, "bad where clause"),
    ({"query": "x", "where": "no_such_column = 1"}, "bad where clause"),
    ({"id": "deadbeef"}, "no persona with id"),
    ({"query": "   "}, "non-empty"),
])
def test_bad_requests_raise_clear_errors(built_store, kwargs, match):
    v = built_store.version
    with pytest.raises(InvalidQueryError, match=match):
        built_store.similar(**kwargs)
    assert built_store.version == v


def test_model_mismatch_is_refused(built_store):
    with pytest.raises(EmbedderMismatchError, match="all-MiniLM-L6-v2"):
        PersonaIndex(built_store.path, HashEmbedder(384))


def test_missing_store(tmp_path):
    with pytest.raises(StoreNotFoundError):
        PersonaIndex(tmp_path / "nope.lance", must_exist=True)
    with pytest.raises(StoreNotFoundError):
        PersonaIndex(tmp_path / "nope.lance").similar("x")


def test_unknown_format_version_is_refused(tmp_path):
    idx = PersonaIndex(tmp_path / "h.lance", HashEmbedder(8))
    ingest_records(idx, ["a", "b"], near_dedup=False)
    ds = idx.snapshot().dataset  # as a future persona-index would write it
    ds.update_schema_metadata({"persona_index": json.dumps(dict(idx.meta, format_version=99))},
                              replace=False)
    with pytest.raises(FormatVersionError, match="format version 99"):
        PersonaIndex(tmp_path / "h.lance")


def test_delete_keeps_queries_consistent(tmp_path, embedder, pool_records):
    idx = PersonaIndex(tmp_path / "d.lance", embedder)
    ingest_records(idx, pool_records[:60], attrs=["profession", "region"], batch_size=20)
    victims = [persona_id(r["persona"]) for r in pool_records[5:25]]
    assert idx.delete(ids=victims) == 20
    assert idx.count() == 40
    rec = pool_records[30]
    hit = idx.similar(rec["persona"], k=1)[0]
    assert hit.id == persona_id(rec["persona"]) and hit.text == rec["persona"]
    ids = [h.id for h in idx.similar("a person", k=100)]
    assert len(ids) == 40 and not set(ids) & set(victims)


def test_info_reports_model_version_and_memory(built_store):
    info = built_store.info()
    assert info["count"] == built_store.count() and info["model"] == "all-MiniLM-L6-v2"
    assert info["dim"] == 384 and info["format_version"] == 1
    assert "region" in info["attributes"] and info["table_version"] == built_store.version
    # the estimate against what the warm state really holds once loaded
    m = built_store.snapshot()
    m.get(m.ids.to_pylist()[:1])  # loads the matrix and the warm rows
    measured = m.nbytes
    assert measured > 0 and abs(info["warm_index_bytes"] - measured) / measured < 0.5


def test_the_shared_store_guard_fails_when_a_test_writes_to_it(tmp_path):
    """tests/conftest.py's unchanged_after, the teardown of the shared stores
    (built_store, test_cli's and test_newuser_cli's): quiet when the tests
    only read, failing when one wrote rows or a session."""
    from persona_index.sampling import draw
    from tests.conftest import unchanged_after

    idx = PersonaIndex(tmp_path / "g.lance", HashEmbedder(dim=8))
    idx.add([{"text": f"persona {i}"} for i in range(10)])
    guard = unchanged_after(idx.path, idx)
    assert next(guard) is idx
    draw(idx, 3, seed=0)  # a read
    with pytest.raises(StopIteration):
        next(guard)
    for write in (lambda: idx.add([{"text": "a new persona"}]),
                  lambda: draw(idx, 3, seed=0, session="s")):
        guard = unchanged_after(idx.path, idx)
        next(guard)
        write()
        with pytest.raises(AssertionError, match="wrote to the shared store"):
            next(guard)
