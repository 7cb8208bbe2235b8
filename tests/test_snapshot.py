"""Snapshots: one immutable read view per table version, and writes that
commit their schema change together with their rows."""

import lance
import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.sampling import draw, replay
from persona_index.tagging import tag

DIM = 16


def _vecs(n, seed):
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _store(tmp_path, n=40):
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(dim=DIM))
    recs = [{"text": f"persona {i}", "region": ["north", "south"][i % 2]} for i in range(n)]
    idx.add(recs, vectors=_vecs(n, 0), attributes=["region"])
    return idx


def _at(idx, version):
    return lance.dataset(f"{idx.path}/personas.lance", version=version)


def test_a_snapshot_does_not_move_when_the_store_does(tmp_path):
    idx = _store(tmp_path)
    snap = idx.snapshot()
    q = snap.vectors[3]
    before = ([h.id for h in snap.similar(vector=q, k=5, where="region = 'north'")],
              snap.count(), snap.count("region = 'north'"), snap.ids.to_pylist())
    idx.add([{"text": f"newcomer {i}", "region": "north"} for i in range(30)],
            vectors=np.tile(q, (30, 1)), attributes=["region"])  # all closest to q
    after = ([h.id for h in snap.similar(vector=q, k=5, where="region = 'north'")],
             snap.count(), snap.count("region = 'north'"), snap.ids.to_pylist())
    assert after == before
    fresh = idx.snapshot()
    assert fresh.version > snap.version and fresh.count() == snap.count() + 30
    got = {h.text for h in fresh.similar(vector=q, k=5)}  # persona 3 is q itself
    assert got <= {f"newcomer {i}" for i in range(30)} | {"persona 3"} and len(got - {"persona 3"}) >= 4


def test_the_handle_hands_out_one_snapshot_per_version(tmp_path):
    idx = _store(tmp_path)
    a = idx.snapshot()
    assert idx.snapshot() is a  # what it loaded stays warm
    idx.add([{"text": "one more"}], vectors=_vecs(1, 5))
    assert idx.snapshot() is not a and idx.snapshot().version == a.version + 1


def test_new_columns_attributes_and_rows_land_in_one_commit(tmp_path):
    idx = _store(tmp_path)
    v = idx.version
    idx.add([{"text": "a diver", "region": "south", "depth": "40m"}], vectors=_vecs(1, 1),
            attributes=["region", "depth"])
    assert idx.version == v + 1  # one commit
    old, new = _at(idx, v), _at(idx, v + 1)
    assert "depth" not in old.schema.names and old.count_rows() == 40
    assert "depth" in new.schema.names and new.count_rows() == 41
    assert "depth" in idx.attributes
    assert idx.snapshot().count("depth = '40m'") == 1
    assert idx.snapshot().count("depth IS NULL") == 40
    assert not lance.dataset(f"{idx.path}/personas.lance").validate()


def test_a_new_column_after_a_dropped_one_still_lands_whole(tmp_path):
    # tag --replace drops a column, so field ids are no longer the fresh ones
    # and the write takes the multi-commit path: the data must be the same
    idx = _store(tmp_path)
    tag(idx, "topic", ["nursing", "welding"])
    tag(idx, "topic", ["cooking", "poetry"], replace=True)
    idx.add([{"text": "a diver", "depth": "40m"}], vectors=_vecs(1, 1), attributes=["depth"])
    rows = {r["text"]: r for r in idx.snapshot().dataset.to_table(
        columns=["text", "depth", "topic"]).to_pylist()}
    assert rows["a diver"]["depth"] == "40m" and rows["persona 1"]["depth"] is None
    assert rows["persona 1"]["topic"] in ("cooking", "poetry")
    assert {"depth", "topic"} <= set(idx.attributes)


def test_tag_with_a_new_column_is_one_commit(tmp_path):
    idx = _store(tmp_path)
    v = idx.version
    tag(idx, "topic", ["nursing", "welding"])
    assert idx.version == v + 1
    assert "topic" in idx.attributes and idx.snapshot().count("topic IS NULL") == 0


def test_a_draw_reads_one_version_even_when_a_commit_lands_midway(tmp_path, monkeypatch):
    import persona_index.sampling as sampling

    idx = _store(tmp_path)
    v = idx.version
    real = sampling.sample
    other = PersonaIndex(idx.path)  # another writer commits while the sampler runs

    def sample_with_a_commit_midway(*a, **kw):
        other.add([{"text": f"late {i}", "region": "north"} for i in range(50)],
                  vectors=_vecs(50, 9), attributes=["region"])
        return real(*a, **kw)

    monkeypatch.setattr(sampling, "sample", sample_with_a_commit_midway)
    b = draw(idx, 10, "stratified", seed=3, where="region = 'north'", params={"by": ["region"]})
    monkeypatch.setattr(sampling, "sample", real)
    assert idx.version == v + 1  # the commit did land
    assert b.manifest["table_version"] == v and b.manifest["pool_size"] == 20
    assert not any(r["text"].startswith("late") for r in b.rows)
    assert [r["id"] for r in b.rows] == b.ids
    assert replay(b.manifest).ids == b.ids


@pytest.mark.parametrize("blocking_min", [10**9, 10])  # exact (streamed) and blocked dedup
def test_ingest_dedups_against_the_store_without_its_warm_matrix(tmp_path, blocking_min):
    from persona_index.ingest import ingest_records

    idx = _store(tmp_path)
    other = PersonaIndex(idx.path, HashEmbedder(dim=DIM))
    start = other.snapshot()  # the view the ingest starts from
    s = ingest_records(other, [{"persona": "persona 0"}, {"persona": "a brand-new persona"}],
                       blocking_min=blocking_min)
    assert s.exact_duplicates == 1 and s.added == 1
    assert s.near_dedup_method.startswith("exact" if blocking_min > 40 else "blocked")
    assert start.nbytes == 0 and other.snapshot().nbytes == 0  # no warm matrix was built
