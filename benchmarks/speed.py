"""Speed and memory per strategy vs N, with the naive baselines in the same run."""

from __future__ import annotations

import gc

import numpy as np
from scipy.stats import spearmanr

from persona_index.samplers.base import sample
from persona_index.samplers.density import knn_distance
from persona_index.samplers.farthest import farthest_point, naive_farthest
from persona_index.metrics import kcenter_radius

from .common import clustered_vectors, measure


def exact_knn_distance(X: np.ndarray, queries: np.ndarray, k: int = 10, block: int = 2048):
    """Mean distance of each query row to its k nearest others among all of X."""
    out = np.empty(len(queries), dtype=np.float32)
    for s in range(0, len(queries), block):
        q = queries[s:s + block]
        best = np.full((len(q), k + 1), -np.inf, dtype=np.float32)
        for c in range(0, len(X), 65536):
            sims = X[q] @ X[c:c + 65536].T
            both = np.concatenate([best, sims], axis=1)
            best = -np.partition(-both, k, axis=1)[:, : k + 1]
        # drop the self match (similarity 1 at the query's own row)
        best = -np.sort(-best, axis=1)[:, 1: k + 1]
        out[s:s + block] = 1.0 - best.mean(axis=1)
    return out


def herding_checks(X: np.ndarray, k: int, rows: list, queries: int = 2000,
                   eval_rows: int = 20_000, uniform_draws: int = 20) -> dict:
    """The default at this N against blocked farthest-point from the same run,
    the error of its reference-sampled typicality term, and its coverage
    against uniform batches (measured over a seeded subsample of the pool)."""
    from persona_index.metrics import vendi_score
    from persona_index.samplers.herding import REFERENCE, mean_kernel

    n = len(X)
    t_h = next(r for r in rows if r["n"] == n and r["strategy"] == "herding")
    t_f = next(r for r in rows if r["n"] == n and r["strategy"] == "farthest")
    rng = np.random.default_rng(3)
    q = np.sort(rng.choice(n, min(queries, n), replace=False))
    big = min(n, 16 * REFERENCE)
    ref_big = np.arange(n) if big >= n else np.sort(rng.choice(n, big, replace=False))
    ref = np.sort(np.random.default_rng(4).choice(n, min(n, REFERENCE), replace=False))
    mu_ref = mean_kernel(X[q], X[ref], 0.2)
    mu_big = mean_kernel(X[q], X[ref_big], 0.2)
    rel = np.abs(mu_ref - mu_big) / mu_big
    ev = np.sort(rng.choice(n, min(eval_rows, n), replace=False))
    E = X[ev]

    def cover(idx):
        d = 1.0 - (E @ X[idx].T).max(axis=1)
        return vendi_score(X[idx]), float(d.mean()), float(d.max())

    h = cover(sample(X, k, "herding", seed=0))
    U = np.array([cover(sample(X, k, "uniform", seed=100 + s)) for s in range(uniform_draws)])
    mu, sd = U.mean(axis=0), U.std(axis=0)
    alt = {}
    for beta in (0.0, 1.0):  # the spread weight's effect on this kind of pool
        a = cover(sample(X, k, "herding", seed=0, beta=beta))
        alt[f"beta={beta}"] = {"vendi_z": float((a[0] - mu[0]) / sd[0]),
                               "mean_nearest_z": float(-(a[1] - mu[1]) / sd[1])}
    return {"seconds": t_h["seconds"], "farthest_seconds": t_f["seconds"],
            "ratio_to_farthest": t_h["seconds"] / t_f["seconds"],
            "extra_mb": t_h["extra_mb"], "array_mb": X.nbytes / 2**20,
            "extra_over_array": t_h["extra_mb"] / (X.nbytes / 2**20),
            "mu_reference_rows": int(len(ref)), "mu_compared_with_rows": int(len(ref_big)),
            "mu_rel_error_mean": float(rel.mean()), "mu_rel_error_p99": float(np.quantile(rel, 0.99)),
            "mu_spearman": float(spearmanr(mu_ref, mu_big).statistic),
            "coverage_eval_rows": int(len(ev)), "uniform_draws": uniform_draws,
            "vendi_z": float((h[0] - mu[0]) / sd[0]),
            "mean_nearest_z": float(-(h[1] - mu[1]) / sd[1]),
            "radius_ratio": float(h[2] / mu[2]), "other_beta": alt}


def run_speed(ns, k: int, strategies, naive_max_n: int, knn_queries: int = 10_000) -> dict:
    rows = []
    extra = {}
    for n in ns:
        X = clustered_vectors(n, seed=n)
        start = 12345 % n
        # the naive loop first, the blocked one on the same data and start
        if n <= naive_max_n:
            with measure() as m_naive:
                ref = naive_farthest(X, k, start)
            rows.append({"n": n, "k": k, "strategy": "farthest (naive loop)", **m_naive})
        else:
            ref = None
        stats = {}
        with measure() as m_fp:
            got = farthest_point(X, k, start=start, stats=stats)
        rows.append({"n": n, "k": k, "strategy": "farthest", **m_fp, "passes": stats["passes"]})
        if ref is not None:
            same = bool(np.array_equal(ref, got))
            r_ref, r_got = kcenter_radius(X[ref], X)[0], kcenter_radius(X[got], X)[0]
            extra[f"farthest_n{n}"] = {
                "identical_selection": same,
                "first_difference": None if same else int(np.argmax(ref != got)),
                "radius_naive": r_ref, "radius_blocked": r_got,
                "radius_abs_diff": abs(r_ref - r_got),
                "speedup": m_naive["seconds"] / m_fp["seconds"],
                "extra_mb": m_fp["extra_mb"], "array_mb": X.nbytes / 2**20,
                "passes": stats["passes"]}
        for strat in strategies:
            if strat == "farthest":
                continue
            kw = {}
            if strat == "stratified":
                kw = {"attributes": {"g": (np.arange(n) % 16).astype(str)}, "by": ["g"]}
            gc.collect()
            with measure() as m:
                sample(X, k, strat, seed=0, **kw)
            rows.append({"n": n, "k": k, "strategy": strat, **m})
            print(f"  speed n={n} {strat}: {m['seconds']:.2f}s", flush=True)
        if n >= 10_000:
            extra[f"herding_n{n}"] = herding_checks(X, k, rows)
        # inverse-density's density estimate against exact k-NN on a query subsample
        if n >= 10_000:
            rng = np.random.default_rng(1)
            q = np.sort(rng.choice(n, min(knn_queries, n), replace=False))
            with measure() as m_est:
                est = knn_distance(X, 10, rng=np.random.default_rng(0))
            # exact k-NN for a query subsample, neighbours from all N
            with measure() as m_ex:
                exact = exact_knn_distance(X, q)
            rho = float(spearmanr(est[q], exact).statistic)
            extra[f"density_n{n}"] = {"estimate_seconds": m_est["seconds"],
                                      "exact_on_queries_seconds": m_ex["seconds"],
                                      "queries": int(len(q)), "spearman": rho}
        del X
        gc.collect()
    return {"rows": rows, "checks": extra}
