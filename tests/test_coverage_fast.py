"""Coverage from one snapshot: the batched metrics equal the one-batch ones,
the uniform comparison equals measuring draw(..., "uniform") batches one by
one, the eigh PCA grid equals the SVD one, and BLAS threads follow the rule."""

from __future__ import annotations

import numpy as np
import pytest

from persona_index import metrics
from persona_index.metrics import CellGrid, coverage_report, coverage_reports


def _unit(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_matches_the_svd_grid(seed):
    X = _unit(700, 24, seed)
    g = CellGrid(X)
    fit = X.astype(np.float64)
    _, _, vt = np.linalg.svd(fit - fit.mean(axis=0), full_matrices=False)
    ref = vt[:4]
    # same directions (the sign rule picks one of +-v for both)
    cos = np.abs((g.components.astype(np.float64) * ref).sum(axis=1))
    assert np.all(cos > 1 - 1e-5)
    signs = np.sign(ref[np.arange(4), np.abs(ref).argmax(axis=1)])
    proj = (X - fit.mean(axis=0).astype(np.float32)) @ (ref * signs[:, None]).T.astype(np.float32)
    edges = np.quantile(proj, np.linspace(0, 1, 5)[1:-1], axis=0).T
    code = np.zeros(len(X), dtype=np.int64)
    for j in range(4):
        code = code * 4 + np.searchsorted(edges[j], proj[:, j], side="right")
    assert np.mean(code == g.pool_cells) > 0.999


def test_batched_reports_equal_one_at_a_time_and_memory_is_blocked(monkeypatch):
    X = _unit(900, 16, 3)
    attrs = {"g": np.array(list("abcd") * 225, dtype=object)}
    batches = [np.arange(0, 900, 30), np.arange(30), np.arange(5, 65, 2), np.arange(100)]
    one = [coverage_report(b, X, attributes=attrs, targets={"g": {"a": 1}}) for b in batches]
    monkeypatch.setattr(metrics, "PRODUCT_BLOCK_CELLS", 1000)  # many small blocks
    seen = []
    many = coverage_reports(batches, X, attributes=attrs, targets={"g": {"a": 1}},
                            progress=seen.append)
    assert sum(seen) == len(X) and max(seen) * sum(len(b) for b in batches) <= 1000 + 200
    for a, b, idx in zip(one, many, batches):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], dict):
                assert a[k] == b[k], k
            else:
                assert a[k] == pytest.approx(b[k], abs=1e-6), k
        # against the plain one-batch functions, which share no code with the blocked product
        rmax, rmean = metrics.kcenter_radius(X[idx], X)
        assert b["kcenter_radius"] == pytest.approx(rmax, abs=1e-6)
        assert b["mean_nearest_distance"] == pytest.approx(rmean, abs=1e-6)
        naive = 1 - (X @ X[idx].T).max(axis=1)
        assert b["mean_nearest_distance"] == pytest.approx(float(np.maximum(naive, 0).mean()),
                                                           abs=1e-5)


def test_uniform_comparison_equals_measuring_uniform_draws(built_store):
    from persona_index.sampling import coverage_of, draw

    ids = draw(built_store, 20, seed=4, record=False).ids
    rep = coverage_of(built_store, ids, compare_uniform=3)
    singles = [coverage_of(built_store, draw(built_store, 20, "uniform", seed=s,
                                             record=False).ids) for s in range(3)]
    uni = rep["uniform"]
    assert uni["draws"] == 3 and uni["seeds"] == [0, 1, 2]
    for k in ("vendi", "kcenter_radius", "knn_coverage", "cell_coverage"):
        vals = [r[k] for r in singles]
        assert uni["mean"][k] == pytest.approx(np.mean(vals), abs=1e-6)
        assert uni["sd"][k] == pytest.approx(np.std(vals, ddof=1), abs=1e-6)
        sign = metrics.BETTER[k]
        if uni["sd"][k] > 0:
            assert uni["z"][k] == pytest.approx(sign * (rep[k] - np.mean(vals)) / uni["sd"][k])
    # the sample's own figures are the plain report's
    assert {k: v for k, v in rep.items() if k != "uniform"} == coverage_of(built_store, ids)


def test_compare_uniform_must_be_a_count(built_store):
    from persona_index.errors import InvalidQueryError
    from persona_index.sampling import coverage_of

    ids = built_store.snapshot().ids.to_pylist()[:5]
    for bad in (-3, 1.5, True):
        with pytest.raises(InvalidQueryError, match="compare_uniform"):
            coverage_of(built_store, ids, compare_uniform=bad)


def test_blas_rule(monkeypatch):
    from persona_index import threads

    monkeypatch.delenv("PERSONA_INDEX_BLAS_THREADS", raising=False)
    assert threads.blas_threads(threads.SMALL_MADDS - 1) == 1
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert threads.blas_threads(1e10) == 8
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert threads.blas_threads(1e10) == 5  # three CPUs are busy
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (20.0, 0.0, 0.0))
    assert threads.blas_threads(1e10) == 1
    monkeypatch.setenv("PERSONA_INDEX_BLAS_THREADS", "3")
    assert threads.blas_threads(1.0) == 3


def test_blas_limit_applies_to_numpy_blas(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from persona_index import threads

    monkeypatch.delenv("PERSONA_INDEX_BLAS_THREADS", raising=False)
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("numpy links no BLAS threadpoolctl sees")
    with threads.blas_limit(10.0):
        inside = [i["num_threads"] for i in threadpoolctl.threadpool_info()
                  if i["user_api"] == "blas"]
    assert inside and all(n == 1 for n in inside)
