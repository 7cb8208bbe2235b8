"""The default's draw without the warm matrix (persona_index/stored_rows.py):
on a pool larger than its candidate subsample, draw() reads only the rows
herding indexes, and the batch is the warm matrix's batch, row for row."""

import shutil

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.sampling import draw, replay

N, D = 36_000, 16  # region A: 18,000 rows, more than the 16,384 candidates


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("stored") / "p.lance"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    PersonaIndex(path, HashEmbedder(dim=D)).add(
        [{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(N)], vectors=X,
        attributes=["region"])
    return path


def _copy(src, dst):
    shutil.copytree(src, dst)
    return PersonaIndex(dst, HashEmbedder(dim=D))


@pytest.mark.parametrize("strategy", ["herding", "uniform"])
@pytest.mark.parametrize("where", [None, "region = 'A'"])
def test_a_cold_draw_reads_rows_and_equals_the_warm_draw(big_store, where, strategy):
    cold = PersonaIndex(big_store, HashEmbedder(dim=D))
    warm = PersonaIndex(big_store, HashEmbedder(dim=D))
    warm.snapshot().vectors  # noqa: B018 (load the warm matrix)
    a = draw(cold, 50, strategy, seed=7, where=where, record=False)
    b = draw(warm, 50, strategy, seed=7, where=where, record=False)
    assert a.ids == b.ids and len(set(a.ids)) == 50
    assert not cold.snapshot().vectors_loaded  # it read rows, not the matrix
    assert replay(a.manifest).ids == a.ids
    if where:
        assert {r["region"] for r in a.rows} == {"A"}


def test_sessions_and_float16_draw_the_warm_batches(big_store, tmp_path, monkeypatch):
    """Two batches of a session (the second continues the first as its prior)
    and an excluding session, cold and warm on two copies of one store, with
    the float16 warm dtype: the same ids batch by batch, never a repeat."""
    monkeypatch.setenv("PERSONA_INDEX_WARM_DTYPE", "float16")
    cold, warm = _copy(big_store, tmp_path / "cold.lance"), _copy(big_store, tmp_path / "warm.lance")
    got = {}
    for name, idx in (("cold", cold), ("warm", warm)):
        got[name] = []
        for s, session, exclude in ((1, "s", []), (2, "s", []), (3, "t", ["s"])):
            if name == "warm":
                idx.snapshot().vectors  # noqa: B018 (load the warm matrix)
            got[name].append(draw(idx, 40, seed=s, session=session, exclude_sessions=exclude).ids)
            assert idx.snapshot().vectors_loaded == (name == "warm")
    assert got["cold"] == got["warm"]
    flat = [i for ids in got["cold"] for i in ids]
    assert len(flat) == len(set(flat)) == 120
    assert not cold.snapshot().vectors_loaded


def test_after_deletes_the_cold_draw_reads_the_right_rows(big_store, tmp_path):
    """Rows deleted from the middle of the table: positions in the matrix and
    in a Lance take must still name the same rows."""
    idx = _copy(big_store, tmp_path / "d.lance")
    gone = [f"persona {i}" for i in range(0, N, 7)]
    assert idx.delete(where="text IN (" + ", ".join(f"'{t}'" for t in gone) + ")") == len(gone)
    warm = PersonaIndex(tmp_path / "d.lance", HashEmbedder(dim=D))
    warm.snapshot().vectors  # noqa: B018
    cold = PersonaIndex(tmp_path / "d.lance", HashEmbedder(dim=D))
    a, b = draw(cold, 30, seed=5, record=False), draw(warm, 30, seed=5, record=False)
    assert a.ids == b.ids and not cold.snapshot().vectors_loaded
    assert not {r["text"] for r in a.rows} & set(gone)


def test_herding_reads_only_its_candidates_and_reference(big_store):
    """Through StoredRows, herding reads its candidate and reference rows
    and no others, and picks what it picks on the warm matrix."""
    from persona_index.samplers.herding import herding_select
    from persona_index.stored_rows import StoredRows

    snap = PersonaIndex(big_store, HashEmbedder(dim=D)).snapshot()
    rows = StoredRows(snap, np.arange(N))
    cold = herding_select(rows, 40, rng=3, candidates=5000, reference=1000)
    assert 0 < rows.reads <= 5000 + 1000 and not snap.vectors_loaded
    assert np.array_equal(cold, herding_select(snap.vectors, 40, rng=3, candidates=5000,
                                               reference=1000))


@pytest.mark.parametrize("params,cold", [({"candidates": N - 1}, True), ({"candidates": N}, False),
                                         ({"reference": N - 1}, True), ({"reference": N}, False)])
def test_the_cold_draw_starts_where_herding_reads_a_strict_subset(big_store, params, cold):
    """At the edge: candidates or reference covering the whole pool make herding
    read every row, so draw() loads the matrix; one row fewer, it reads rows.
    Either way the batch is the warm draw's."""
    a_idx = PersonaIndex(big_store, HashEmbedder(dim=D))
    a = draw(a_idx, 20, seed=1, params=params, record=False)
    assert a_idx.snapshot().vectors_loaded is not cold
    warm = PersonaIndex(big_store, HashEmbedder(dim=D))
    warm.snapshot().vectors  # noqa: B018
    assert draw(warm, 20, seed=1, params=params, record=False).ids == a.ids
