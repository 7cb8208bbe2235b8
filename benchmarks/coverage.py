"""Coverage per strategy vs k, every metric, random strategies over seeds."""

from __future__ import annotations

import time

import numpy as np

from persona_index.metrics import CellGrid, coverage_report
from persona_index.samplers.base import sample

def run_coverage(X: np.ndarray, ks, strategies, seeds: int, attributes=None, label="") -> dict:
    grid = CellGrid(X)  # the metric's own PCA grid: no strategy uses it
    out = {"pool": int(len(X)), "ks": list(ks), "seeds": seeds, "strategies": {}}
    for strat in strategies:
        per_k = {}
        for k in ks:
            if k > len(X):
                continue
            reps, secs = [], []
            for s in range(seeds):
                kw = {}
                if strat == "stratified":
                    if not attributes:
                        break
                    kw = {"attributes": attributes, "by": list(attributes)}
                t = time.perf_counter()
                idx = sample(X, k, strat, seed=s, **kw)
                secs.append(time.perf_counter() - t)
                reps.append(coverage_report(idx, X, attributes=attributes, grid=grid))
            if not reps:
                continue
            metrics = {}
            for m in ("cell_coverage", "cell_mass_coverage", "knn_coverage", "kcenter_radius",
                      "mean_nearest_distance", "vendi", "mean_pairwise_distance"):
                v = np.array([r[m] for r in reps])
                metrics[m] = {"mean": float(v.mean()), "std": float(v.std())}
            if attributes:
                for a in attributes:
                    v = np.array([r["attribute_balance"][a] for r in reps])
                    metrics[f"balance_{a}"] = {"mean": float(v.mean()), "std": float(v.std())}
            per_k[str(k)] = {"metrics": metrics, "seconds_mean": float(np.mean(secs))}
        if per_k:
            out["strategies"][strat] = per_k
        print(f"  coverage[{label}] {strat}: done", flush=True)
    return out


HIGHER_IS_BETTER = {"cell_coverage": True, "cell_mass_coverage": True, "knn_coverage": True,
                    "kcenter_radius": False, "mean_nearest_distance": False, "vendi": True,
                    "mean_pairwise_distance": True}


def winners(cov: dict) -> dict:
    """Per metric and k, the strategy with the best mean."""
    out = {}
    for m, hib in HIGHER_IS_BETTER.items():
        out[m] = {}
        for k in cov["ks"]:
            vals = {s: d[str(k)]["metrics"][m]["mean"] for s, d in cov["strategies"].items()
                    if str(k) in d}
            if vals:
                out[m][str(k)] = (max if hib else min)(vals, key=vals.get)
    return out
