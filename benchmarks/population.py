"""The population-weighted generated pool against its targets.

``generate(n, seed=0)`` under uniform and population weights: the total
variation distance of each pool's country and age-band marginals to the
population targets (``target_shares("population")``), among the personas
that name the attribute, next to the distance that sampling noise alone gives
(exact multinomial draws of the same sizes from the targets), and the mean and
s.d. of the same distances over seeds 0..19.
"""

from __future__ import annotations

import time

import numpy as np


def _noise_floor(shares: dict, n: int, draws: int, rng) -> dict:
    p = np.array(list(shares.values()))
    tv = 0.5 * np.abs(rng.multinomial(n, p, size=draws) / n - p).sum(axis=1)
    return {"mean": float(tv.mean()), "p95": float(np.quantile(tv, 0.95)), "draws": draws}


def run_population(n: int = 10_000, seed: int = 0, floor_draws: int = 200,
                   more_seeds: int = 20) -> dict:
    from persona_index.generate import (WEIGHTED, WEIGHTS, generate, marginal_errors,
                                        population_tables, target_shares)

    pop = population_tables()
    targets = target_shares("population")
    out = {"n": n, "seed": seed, "weights": {}, "noise_floor": {}}
    for w in WEIGHTS:
        t = time.perf_counter()
        recs = list(generate(n, seed=seed, weights=w))
        secs = time.perf_counter() - t
        out["weights"][w] = {
            "tv_to_population": marginal_errors(recs, "population"),
            "tv_to_own_targets": marginal_errors(recs, w),
            "named": {a: sum(r[a] is not None for r in recs) for a in WEIGHTED},
            "seconds": secs,
        }
        # one seed can land in the tail: the spread over seeds 0..more_seeds-1 says how far
        many = [marginal_errors(generate(n, seed=s, weights=w), "population")
                for s in range(more_seeds)]
        out["weights"][w]["over_seeds"] = {
            a: {"mean": float(np.mean([m[a] for m in many])),
                "sd": float(np.std([m[a] for m in many], ddof=1)), "seeds": more_seeds}
            for a in WEIGHTED}
    rng = np.random.default_rng(seed)
    for a in WEIGHTED:
        out["noise_floor"][a] = _noise_floor(targets[a], out["weights"]["population"]["named"][a],
                                             floor_draws, rng)
    c, ab = pop["countries"], pop["age_bands"]
    out["targets"] = {
        "countries": len(targets["country"]), "age_bands": len(targets["age_band"]),
        "pool_share_of_world_population": sum(v["population"] for v in c["population"].values())
        / c["world_population"],
        "missing_countries": c["missing"],
        "top_countries": sorted(targets["country"].items(), key=lambda kv: -kv[1])[:5],
        "age_band_shares": targets["age_band"],
        "country_source": {k: c["source"][k] for k in ("repository", "file", "commit", "year",
                                                       "licence")},
        "age_source": {k: ab["source"][k] for k in ("repository", "branch", "file", "commit",
                                                    "year", "licence")},
    }
    return out
