import numpy as np
import pytest

from persona_index.metrics import (CellGrid, coverage_report, divergence_from_target,
                                   kcenter_radius, knn_coverage, mean_pairwise_distance,
                                   normalized_entropy, vendi_score)


def test_vendi_hand_cases():
    e = np.eye(5, dtype=np.float32)
    assert vendi_score(e) == pytest.approx(5.0)          # 5 orthogonal: 5 effective items
    assert vendi_score(np.repeat(e[:1], 7, axis=0)) == pytest.approx(1.0)  # all identical
    # two identical + one orthogonal: eigenvalues of K/n are 2/3, 1/3
    x = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    assert vendi_score(x) == pytest.approx(np.exp(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))))


def test_vendi_matches_the_n_by_n_definition():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    lam = np.linalg.eigvalsh(X @ X.T / 40)
    lam = lam[lam > 1e-12]
    assert vendi_score(X) == pytest.approx(np.exp(-(lam * np.log(lam)).sum()), rel=1e-6)


def test_mean_pairwise_distance():
    assert mean_pairwise_distance(np.eye(4, dtype=np.float32)) == pytest.approx(1.0)
    x = np.array([[1, 0], [-1, 0]], dtype=np.float32)
    assert mean_pairwise_distance(x) == pytest.approx(2.0)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 5)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - X @ X.T
    assert mean_pairwise_distance(X) == pytest.approx(D[np.triu_indices(30, 1)].mean(), abs=1e-5)


def test_kcenter_radius_hand_case():
    pool = np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32)
    rmax, rmean = kcenter_radius(pool[:1], pool)
    assert rmax == pytest.approx(2.0) and rmean == pytest.approx((0 + 1 + 2) / 3)
    assert kcenter_radius(pool, pool) == pytest.approx((0.0, 0.0))


def test_knn_coverage_hand_case():
    # reference: 4 points on two tight pairs; balls reach the 1st neighbour
    ref = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.141, 0.99]], dtype=np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    only_first_pair = ref[:1]
    assert knn_coverage(only_first_pair, ref, k=1, reference=ref) == pytest.approx(0.5)
    assert knn_coverage(ref, ref, k=1, reference=ref) == pytest.approx(1.0)
    far = np.array([[-1, 0]], dtype=np.float32)
    assert knn_coverage(far, ref, k=1, reference=ref) == 0.0


def test_cell_grid_coverage():
    rng = np.random.default_rng(2)
    pool = rng.standard_normal((5000, 16)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    g = CellGrid(pool, dims=3, bins=4)
    assert len(g.occupied) == 64  # 5,000 gaussian rows reach every cell
    for j in range(3):  # equal-mass bins: each quarter of each axis holds a quarter of the pool
        assert np.bincount((g.pool_cells // 4 ** (2 - j)) % 4, minlength=4).tolist() == [1250] * 4
    assert g.coverage(pool) == pytest.approx((1.0, 1.0))
    one = g.coverage(pool[:1])
    assert one[0] == pytest.approx(1 / len(g.occupied))
    # reproducible: a second fit gives the same cells
    assert np.array_equal(CellGrid(pool, dims=3, bins=4).pool_cells, g.pool_cells)


def test_balance_and_divergence():
    assert normalized_entropy(["a", "b", "a", "b"]) == pytest.approx(1.0)
    assert normalized_entropy(["a", "a"], categories=["a", "b"]) == pytest.approx(0.0)
    d = divergence_from_target(["a", "a", "b", "b"], {"a": 0.5, "b": 0.5})
    assert d["tv"] == pytest.approx(0.0) and d["js"] == pytest.approx(0.0)
    d = divergence_from_target(["a"] * 4, {"b": 1.0})
    assert d["tv"] == pytest.approx(1.0) and d["js"] == pytest.approx(1.0)


def test_coverage_report_has_every_metric():
    rng = np.random.default_rng(3)
    pool = rng.standard_normal((500, 8)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    reg = rng.choice(["x", "y"], 500)
    rep = coverage_report(np.arange(50), pool, attributes={"region": reg},
                          targets={"region": {"x": 1.0}})
    for key in ("cell_coverage", "cell_mass_coverage", "knn_coverage", "kcenter_radius",
                "mean_nearest_distance", "vendi", "mean_pairwise_distance"):
        assert np.isfinite(rep[key])
    assert 0 < rep["attribute_balance"]["region"] <= 1
    assert 0 < rep["target_divergence"]["region"]["tv"] < 1
    # each key is its own metric, not a neighbour's
    from persona_index.metrics import kcenter_radius, mean_pairwise_distance, vendi_score

    rmax, rmean = kcenter_radius(pool[:50], pool)
    assert rep["kcenter_radius"] == pytest.approx(rmax) and rep["mean_nearest_distance"] == pytest.approx(rmean)
    assert rep["vendi"] == pytest.approx(vendi_score(pool[:50]))
    assert rep["mean_pairwise_distance"] == pytest.approx(mean_pairwise_distance(pool[:50]))
    assert rep["target_divergence"]["region"]["tv"] == pytest.approx((reg[:50] == "y").mean())
