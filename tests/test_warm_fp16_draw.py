"""draw() and coverage on a float16 warm matrix (PERSONA_INDEX_WARM_DTYPE=float16,
issue #25 item 3): no float32 copy of the pool, and the float32 answer.

The stores here hold vectors that float16 represents exactly (16 entries of
+-0.25, the rest 0: unit length in both dtypes), so the float16 matrix,
converted at any rows, is the float32 matrix bit for bit, and every strategy
must pick the same batch from either. On vectors float16 rounds, herding's
scores move by up to about 5e-4 and a near tie can go the other way (not
tested here: nothing must hold there but the picks' count and distinctness).
"""

import json
import tracemalloc

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.metrics import coverage_reports
from persona_index.sampling import coverage_of, draw
from persona_index.samplers.base import sample

DIM = 32
N = 20_000  # over herding's 16,384 candidates: the subsample path, float16 rows gathered


def _exact_half_vectors(n, d, seed):
    """``n`` unit rows of 16 entries of +-0.25 each: exact in float16."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, d), dtype=np.float32)
    cols = np.argsort(rng.random((n, d)), axis=1)[:, :16]
    X[np.arange(n)[:, None], cols] = rng.choice([-0.25, 0.25], size=(n, 16))
    return X


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    X = _exact_half_vectors(N, DIM, 0)
    path = tmp_path_factory.mktemp("fp16draw") / "s.lance"
    idx = PersonaIndex(path, HashEmbedder(dim=DIM))
    idx.add([{"text": f"persona {i}", "region": "abc"[i % 3]} for i in range(N)], vectors=X,
            attributes=["region"])
    return path, X


def _handle(path, dtype, monkeypatch):
    monkeypatch.setenv("PERSONA_INDEX_WARM_DTYPE", dtype)
    idx = PersonaIndex(path, HashEmbedder(dim=DIM))
    assert idx.snapshot().vectors.dtype == np.dtype(dtype)  # the path under test is taken
    return idx


def test_the_fixture_is_exact_in_float16(store):
    _, X = store
    assert np.array_equal(X.astype(np.float16).astype(np.float32), X)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=0)
    assert len(np.unique(X, axis=0)) == N  # a pool, not a few repeated rows


@pytest.mark.parametrize("strategy, params, where", [
    ("herding", {}, None),
    ("herding", {}, "region = 'b'"),
    ("herding", {"candidates": 4000, "reference": 500}, None),
    ("uniform", {}, None),
    ("farthest", {}, None),  # not float16-aware: gets a float32 copy, same answer
])
def test_a_float16_store_draws_the_float32_batch(store, monkeypatch, strategy, params, where):
    path, _ = store
    got = {}
    for dtype in ("float32", "float16"):
        idx = _handle(path, dtype, monkeypatch)
        got[dtype] = draw(idx, 20, strategy, seed=3, where=where, record=False, **params).ids
    assert len(set(got["float16"])) == 20
    assert got["float16"] == got["float32"]


def test_a_session_continues_the_same_way_in_float16(store, monkeypatch):
    """The second batch of a session herds on from the first (``prior``, read
    from the warm matrix at the drawn rows)."""
    path, _ = store
    got = {}
    for dtype in ("float32", "float16"):
        idx = _handle(path, dtype, monkeypatch)
        got[dtype] = [draw(idx, 15, seed=s, session=f"s-{dtype}").ids for s in (1, 2)]
    assert got["float16"] == got["float32"]
    assert not set(got["float16"][0]) & set(got["float16"][1])


def test_coverage_is_the_same_on_a_float16_store(store, monkeypatch):
    path, _ = store
    reps = {}
    for dtype in ("float32", "float16"):
        idx = _handle(path, dtype, monkeypatch)
        ids = draw(idx, 30, seed=5, record=False).ids
        reps[dtype] = json.dumps(coverage_of(idx, ids, compare_uniform=3), sort_keys=True)
    assert reps["float16"] == reps["float32"]


def test_sample_makes_no_float32_copy_of_a_float16_pool():
    """The pool is 600,000 x 64 in float16 (77 MB); a float32 copy would
    allocate 154 MB. Herding with a small reference needs a few MB."""
    rng = np.random.default_rng(0)
    X16 = np.empty((600_000, 64), dtype=np.float16)
    for s in range(0, len(X16), 100_000):
        b = rng.standard_normal((100_000, 64), dtype=np.float32)
        X16[s:s + 100_000] = b / np.linalg.norm(b, axis=1, keepdims=True)
    copy_bytes = X16.size * 4
    for strategy, params in (("herding", {"reference": 256}), ("uniform", {})):
        tracemalloc.start()
        try:
            idx = sample(X16, 10, strategy, seed=0, **params)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(set(idx.tolist())) == 10
        assert peak < copy_bytes / 4, (strategy, peak)


def _traced(fn, *args):
    tracemalloc.start()
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_coverage_reports_convert_blocks_not_the_pool():
    """coverage_reports on a float16 pool equals the float32 pool's (exact
    vectors), and its peak memory is the float32 run's plus a block, not
    plus a float32 copy of the pool (25.6 MB here)."""
    X = _exact_half_vectors(200_000, DIM, 1)
    X16 = X.astype(np.float16)
    batches = [np.arange(0, 200_000, 500), np.arange(40)]
    a, peak32 = _traced(coverage_reports, batches, X)
    b, peak16 = _traced(coverage_reports, batches, X16)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert peak16 < peak32 + X.nbytes / 2, (peak16, peak32)
