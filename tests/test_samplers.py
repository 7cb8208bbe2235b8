import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_index.errors import SamplingError, UnknownStrategyError
from persona_index.metrics import kcenter_radius
from persona_index.samplers.base import SamplingWarning, sample
from persona_index.samplers.farthest import farthest_point, naive_farthest
from persona_index.samplers.stratified import parse_target

RANDOM = ["herding", "uniform", "cells", "farthest", "inverse-density", "core-farthest", "facility", "blend"]


def unit(a):
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def planted():
    """20 well-separated clusters with sizes from 5 to 5,000 (log-spaced)."""
    rng = np.random.default_rng(2024)
    sizes = np.unique(np.geomspace(5, 5000, 20).astype(int))
    assert len(sizes) == 20
    centers = unit(rng.standard_normal((20, 32)))
    X = np.concatenate([centers[i] + 0.08 * rng.standard_normal((s, 32)) for i, s in enumerate(sizes)])
    labels = np.repeat(np.arange(20), sizes)
    return unit(X), labels, sizes


def clusters_hit(idx, labels):
    return len(np.unique(labels[idx]))


@pytest.mark.parametrize("strategy", ["farthest", "cells"])
def test_coverage_strategies_hit_every_planted_cluster(planted, strategy):
    X, labels, _ = planted
    for seed in range(5):
        assert clusters_hit(sample(X, 40, strategy, seed=seed), labels) == 20


def test_uniform_misses_small_clusters_and_inverse_density_favours_them(planted):
    X, labels, sizes = planted
    small = np.flatnonzero(sizes <= 50)
    uni_hits, uni_small, inv_small = [], [], []
    for seed in range(8):
        u = sample(X, 40, "uniform", seed=seed)
        v = sample(X, 40, "inverse-density", seed=seed)
        uni_hits.append(clusters_hit(u, labels))
        uni_small.append(np.isin(labels[u], small).sum())
        inv_small.append(np.isin(labels[v], small).sum())
    assert max(uni_hits) < 20
    assert np.mean(inv_small) >= 4 * max(np.mean(uni_small), 0.05)


@pytest.fixture(scope="module")
def small_planted(planted):
    """1,500 rows of the planted pool (every cluster size represented): enough
    for every strategy's randomness, small enough that the determinism checks
    stay fast."""
    X, labels, _ = planted
    rows = np.sort(np.random.default_rng(7).choice(len(X), 1500, replace=False))
    return X[rows], labels[rows]


@pytest.mark.parametrize("strategy", RANDOM)
def test_same_seed_same_ids_other_seed_other_ids(small_planted, strategy):
    X, _ = small_planted
    # herding, facility and blend draw at random only on pools larger than their subsample
    kw = {"herding": {"candidates": 400}, "facility": {"sample_size": 500},
          "blend": {"sample_size": 500}}.get(strategy, {})
    a = sample(X, 30, strategy, seed=11, **kw)
    assert np.array_equal(a, sample(X, 30, strategy, seed=11, **kw))
    assert not np.array_equal(np.sort(a), np.sort(sample(X, 30, strategy, seed=12, **kw)))
    rng_a = sample(X, 30, strategy, seed=np.random.default_rng(5), **kw)
    assert np.array_equal(rng_a, sample(X, 30, strategy, seed=np.random.default_rng(5), **kw))


def test_stratified_same_seed_same_ids(small_planted):
    X, labels = small_planted
    attrs = {"g": labels % 4}
    a = sample(X, 30, "stratified", seed=3, attributes=attrs)
    assert np.array_equal(a, sample(X, 30, "stratified", seed=3, attributes=attrs))


def test_k_too_large_and_unknown_strategy():
    X = unit(np.eye(3))
    with pytest.raises(SamplingError, match="larger than the pool"):
        sample(X, 4, "uniform")
    with pytest.raises(UnknownStrategyError, match="valid: .*farthest.*uniform"):
        sample(X, 1, "nope")
    with pytest.raises(SamplingError, match="non-negative"):
        sample(X, -1, "uniform")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(2, 8), frac=st.floats(0, 1),
       strategy=st.sampled_from(RANDOM + ["stratified"]), dup=st.booleans(), seed=st.integers(0, 2**16))
def test_any_shape_gives_k_distinct_indices(n, d, frac, strategy, dup, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if dup:  # identical rows must not break uniqueness
        X[: n // 2] = X[0]
    X = unit(X)
    k = int(round(frac * n))
    attrs = {"a": rng.integers(0, 3, n).astype(str)} if strategy == "stratified" else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)
        idx = sample(X, k, strategy, seed=seed, attributes=attrs)
    assert len(idx) == k == len(np.unique(idx)) and (k == 0 or (idx.min() >= 0 and idx.max() < n))


@pytest.mark.parametrize("front", [None, 4, 32])
def test_blocked_farthest_agrees_with_naive(front):
    rng = np.random.default_rng(7)
    for trial in range(4):
        C = unit(rng.standard_normal((12, 24)))
        X = unit(C[rng.integers(12, size=3000)] + 0.3 * rng.standard_normal((3000, 24)))
        start = int(rng.integers(3000))
        want = naive_farthest(X, 120, start)
        stats = {}
        got = farthest_point(X, 120, start=start, front=front, stats=stats)
        assert np.array_equal(got, want)
        assert stats["passes"] < 120  # one pass serves many picks


def test_warm_start_continues_the_same_traversal():
    rng = np.random.default_rng(8)
    X = unit(rng.standard_normal((2000, 16)))
    full = naive_farthest(X, 60, 5)
    prior = X[full[:20]]
    rest = farthest_point(np.delete(X, full[:20], axis=0), 40, prior=prior)
    remaining = np.delete(np.arange(2000), full[:20])
    assert np.array_equal(remaining[rest], full[20:])


def test_farthest_radius_within_twice_the_optimum():
    # Cosine distance is not a metric, but the angle is, and it orders pairs the
    # same way: greedy k-center is a 2-approximation in angle.
    def angle_radius(S, X):
        return float(np.arccos(np.clip(1.0 - kcenter_radius(S, X)[0], -1, 1)))

    rng = np.random.default_rng(9)
    for trial in range(10):
        X = unit(rng.standard_normal((11, 3)))
        for k in (2, 3, 4):
            best = min(angle_radius(X[list(c)], X) for c in itertools.combinations(range(11), k))
            got = angle_radius(X[sample(X, k, "farthest", seed=trial)], X)
            assert got <= 2 * best + 1e-5


def test_stratified_quotas_within_one():
    rng = np.random.default_rng(1)
    X = unit(rng.standard_normal((1000, 8)))
    region = rng.choice(["a", "b", "c", "d"], size=1000, p=[0.55, 0.25, 0.15, 0.05])
    age = rng.choice(["y", "o"], size=1000)
    for alloc in ("equal", "proportional"):
        idx = sample(X, 97, "stratified", seed=0, attributes={"region": region}, by=["region"],
                     allocation=alloc)
        counts = {v: int((region[idx] == v).sum()) for v in "abcd"}
        for v in "abcd":
            share = 0.25 if alloc == "equal" else (region == v).mean()
            assert abs(counts[v] - 97 * share) < 1 + 1e-9
    # crossed strata, equal allocation: 8 strata, 80 picks -> 10 each
    idx = sample(X, 80, "stratified", seed=0, attributes={"region": region, "age": age},
                 by=["region", "age"], method="farthest")
    pairs = list(zip(region[idx], age[idx]))
    assert all(pairs.count(p) == 10 for p in set(pairs)) and len(set(pairs)) == 8


def test_stratified_target_and_shortfall():
    rng = np.random.default_rng(2)
    X = unit(rng.standard_normal((600, 8)))
    region = np.array(["Africa"] * 300 + ["Asia"] * 290 + ["Oceania"] * 10, dtype=object)
    name, dist = parse_target("region=Africa:0.3,Asia:0.2,Oceania:0.5")
    assert name == "region" and dist["Oceania"] == 0.5
    with pytest.warns(SamplingWarning, match="short of their quota"):
        idx = sample(X, 100, "stratified", seed=0, attributes={"region": region},
                     target={"region": dist})
    got = {v: int((region[idx] == v).sum()) for v in ("Africa", "Asia", "Oceania")}
    # Oceania gives all 10 it has; its 40 missing go to the others in a 3:2 ratio
    assert got == {"Oceania": 10, "Africa": 54, "Asia": 36}
    with pytest.raises(SamplingError, match="VALUE:WEIGHT"):
        parse_target("region=Africa")


def test_cells_prior_fills_unhit_cells_first(planted):
    X, labels, _ = planted
    from persona_index.samplers.cells import assign, fit_cells

    first = sample(X, 20, "cells", seed=1, n_cells=40)
    second = sample(X, 20, "cells", seed=1, n_cells=40, prior=X[first])
    # the strategy's own cells (its first use of the seeded generator is the fit)
    cell = assign(X, fit_cells(X, 40, np.random.default_rng(1)))
    hit_first = set(cell[first].tolist())
    assert len(hit_first) == 20  # one persona per cell in the first round
    assert not hit_first & set(cell[second].tolist())  # the second batch: only cells left empty
    assert len(set(cell[second].tolist())) == 20


def test_core_farthest_skips_outliers_but_spreads_over_the_core(planted):
    X, labels, sizes = planted
    rng = np.random.default_rng(0)
    outliers = unit(rng.standard_normal((30, 32)))  # isolated points, no neighbours
    Y = np.concatenate([X, outliers])
    lab = np.concatenate([labels, np.full(30, -1)])
    f = sample(Y, 40, "farthest", seed=1)
    c = sample(Y, 40, "core-farthest", seed=1)
    assert (lab[f] == -1).sum() >= 15          # farthest chases the outliers
    assert (lab[c] == -1).sum() == 0           # the core has none
    assert clusters_hit(c, lab) >= 8           # and still spreads over the big clusters


def test_facility_is_more_representative_than_farthest(planted):
    X, _, _ = planted
    f = sample(X, 30, "farthest", seed=0)
    c = sample(X, 30, "facility", seed=0)
    assert kcenter_radius(X[c], X)[1] < kcenter_radius(X[f], X)[1]  # mean distance
    assert kcenter_radius(X[f], X)[0] <= kcenter_radius(X[c], X)[0]  # max distance


def test_blend_interpolates_between_representative_and_diverse(planted):
    from persona_index.metrics import vendi_score

    X, _, _ = planted
    rng = np.random.default_rng(4)
    Y = X[rng.choice(len(X), 3000, replace=False)]
    lo = sample(Y, 40, "blend", seed=0, lam=0.0)
    hi = sample(Y, 40, "blend", seed=0, lam=1.0)
    assert vendi_score(Y[hi]) > vendi_score(Y[lo])
    assert kcenter_radius(Y[lo], Y)[1] < kcenter_radius(Y[hi], Y)[1]
    with pytest.raises(SamplingError, match="lam"):
        sample(Y, 5, "blend", lam=2.0)
