"""Balanced and covering at once (issue #24).

Part 1, the default inside strata. ``generate(6000, seed=21)`` embedded with
the default model (all-MiniLM-L6-v2), restricted to the personas that name
both a region and an age band (as ``--where "region IS NOT NULL AND age_band
IS NOT NULL"`` does), stratified ``by region x age_band`` with two marginal
targets (the ``world`` shares of region and age band), k = 300, seeds 0-9:
the stratified strategy with ``method="herding"`` (the default) and with
``method="uniform"``, through :func:`persona_index.samplers.base.sample`,
the function ``draw`` calls. Per seed, :func:`persona_index.balance.balance_report`
gives each marginal's TV to its target, the joint TV to the fitted quotas and,
inside the strata, the pooled mean nearest distance and Vendi with z against
20 stratified-uniform draws of the same counts. The marginal TVs are set
against the multinomial floor: the mean TV of 2,000 multinomial draws of 300
from the target. A second z compares the ten herding values with the ten
``method="uniform"`` values of the same seeds (same quotas: the rounding uses
the generator first).

Part 2, the session prior: a first batch of 150 (seeds 0-4), then a second
of 150 from what is left, with herding inside strata given (a) the first
batch's picks in its own stratum (what ``draw`` does), (b) all of them in
every stratum, (c) none; the union of both batches measured inside the strata
and over the whole pool (mean nearest distance, Vendi).

Part 3, raking against the product rule: a seeded 10,000-row table whose region
and age band are correlated, with two empty cells; two marginal targets;
k = 300, seeds 0-9, ``quotas="raking"`` and ``quotas="product"``: the marginal
TV of each draw and of each rule's fitted quotas.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter

import numpy as np

K = 300
SEEDS = 10
UNIFORM_DRAWS = 20


def _floor(share: dict, k: int, draws: int, rng) -> float:
    p = np.array(list(share.values()))
    p = p / p.sum()
    return float((0.5 * np.abs(rng.multinomial(k, p, size=draws) / k - p).sum(axis=1)).mean())


def _tv(col, idx, share):
    vals = np.asarray(col, dtype=object)[idx].astype(str)
    keys = set(vals) | set(share)
    return 0.5 * sum(abs(float((vals == v).mean()) - share.get(v, 0.0)) for v in keys)


def inside_strata(seed: int = 21, n: int = 6000, k: int = K, seeds: int = SEEDS) -> dict:
    from persona_index.balance import balance_report
    from persona_index.embed import get_embedder
    from persona_index.generate import generate
    from persona_index.samplers.base import sample
    from persona_index.targets import world_target

    from .common import cached_embeddings

    recs = [r for r in generate(n, seed=seed) if r["region"] and r["age_band"]]
    t = time.perf_counter()
    X = cached_embeddings([r["persona"] for r in recs], "balanced-generated")
    embed_s = time.perf_counter() - t
    attrs = {a: np.array([r[a] for r in recs], dtype=object) for a in ("region", "age_band")}
    target, matched = world_target(attrs)
    by = ["region", "age_band"]
    runs = {"herding": [], "uniform": []}
    seconds = {"herding": 0.0, "uniform": 0.0}
    for s in range(seeds):
        for method in runs:
            t = time.perf_counter()
            idx = sample(X, k, "stratified", seed=s, attributes=attrs, by=by, target=target,
                         method=method)
            seconds[method] += time.perf_counter() - t
            rep = balance_report(X, attrs, idx, by, target=target, uniform_draws=UNIFORM_DRAWS)
            runs[method].append({"marginal_tv": rep["marginal_tv"], "joint_tv": rep["joint_tv"],
                                 "mean_nearest": rep["within"]["mean_nearest"],
                                 "vendi": rep["within"]["vendi"], "z": rep["within"]["z"],
                                 "thin_cells": len(rep["thin_cells"]),
                                 "counts": sorted(Counter(zip(attrs["region"][idx].tolist(),
                                                              attrs["age_band"][idx].tolist()))
                                                  .items())})
    rng = np.random.default_rng(0)
    floor = {a: _floor(target[a], k, 2000, rng) for a in by}

    def stats(vals):
        v = np.asarray(vals, dtype=float)
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}

    out = {"n_generated": n, "seed": seed, "pool": len(recs), "k": k, "seeds": seeds,
           "embedder": get_embedder().name, "embed_seconds": embed_s, "by": by,
           "target": target, "target_matched": matched, "uniform_draws": UNIFORM_DRAWS,
           "multinomial_floor": floor, "methods": {}}
    for method, rs in runs.items():
        out["methods"][method] = {
            "marginal_tv": {a: stats([r["marginal_tv"][a] for r in rs]) for a in by},
            "joint_tv": stats([r["joint_tv"] for r in rs]),
            "mean_nearest": stats([r["mean_nearest"] for r in rs]),
            "vendi": stats([r["vendi"] for r in rs]),
            "z_vs_stratified_uniform": {m: stats([r["z"][m] for r in rs])
                                        for m in ("mean_nearest", "vendi")},
            "thin_cells": max(r["thin_cells"] for r in rs),
            "seconds_per_draw": seconds[method] / seeds,
        }
        out["methods"][method]["tv_over_floor"] = {
            a: out["methods"][method]["marginal_tv"][a]["mean"] / floor[a] for a in by}
    h, u = out["methods"]["herding"], out["methods"]["uniform"]
    out["same_quotas"] = all(a["counts"] == b["counts"]
                             for a, b in zip(runs["herding"], runs["uniform"]))
    out["z_herding_vs_uniform_seeds"] = {
        "mean_nearest": (u["mean_nearest"]["mean"] - h["mean_nearest"]["mean"])
        / u["mean_nearest"]["sd"],
        "vendi": (h["vendi"]["mean"] - u["vendi"]["mean"]) / u["vendi"]["sd"]}
    return out


def session_prior(seed: int = 21, n: int = 6000, k: int = 150, seeds: int = 5) -> dict:
    from persona_index.balance import balance_report
    from persona_index.generate import generate
    from persona_index.metrics import kcenter_radius, vendi_score
    from persona_index.samplers.base import sample

    from .common import cached_embeddings

    recs = [r for r in generate(n, seed=seed) if r["region"] and r["age_band"]]
    X = cached_embeddings([r["persona"] for r in recs], "balanced-generated")
    attrs = {a: np.array([r[a] for r in recs], dtype=object) for a in ("region", "age_band")}
    by = ["region", "age_band"]
    rows = {m: [] for m in ("own stratum", "whole prior", "none")}
    for s in range(seeds):
        first = sample(X, k, "stratified", seed=s, attributes=attrs, by=by)
        rest = np.setdiff1d(np.arange(len(X)), first)
        sub = {a: v[rest] for a, v in attrs.items()}
        pa = {a: v[first] for a, v in attrs.items()}
        for mode, kw in (("own stratum", {"prior": X[first], "prior_attributes": pa}),
                         ("whole prior", {"prior": X[first]}), ("none", {})):
            second = rest[sample(X[rest], k, "stratified", seed=s, attributes=sub, by=by, **kw)]
            union = np.concatenate([first, second])
            rep = balance_report(X, attrs, union, by, uniform_draws=0)
            rows[mode].append([rep["within"]["mean_nearest"], rep["within"]["vendi"],
                               kcenter_radius(X[union], X)[1], vendi_score(X[union])])
    keys = ("within_mean_nearest", "within_vendi", "pool_mean_nearest", "pool_vendi")
    return {"k_each": k, "seeds": seeds, "modes": {
        m: {key: {"mean": float(np.mean(v, axis=0)[i]), "sd": float(np.std(v, axis=0, ddof=1)[i])}
            for i, key in enumerate(keys)} for m, v in rows.items()}}


def correlated_table(n: int = 10_000, seed: int = 0):
    """Region and age band correlated, two empty cells (B x 18-34, D x 55+)."""
    rng = np.random.default_rng(seed)
    regions = np.array(["A", "B", "C", "D"])
    bands = np.array(["18-34", "35-54", "55+"])
    region = regions[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])]
    probs = {"A": [0.7, 0.25, 0.05], "B": [0.0, 0.6, 0.4], "C": [0.1, 0.3, 0.6],
             "D": [0.5, 0.5, 0.0]}
    u = rng.random(n)
    band = np.empty(n, dtype=object)
    for r, p in probs.items():
        m = region == r
        band[m] = bands[np.searchsorted(np.cumsum(p), u[m], side="right").clip(0, 2)]
    return region.astype(object), band


def raking_vs_product(n: int = 10_000, k: int = K, seeds: int = SEEDS) -> dict:
    from persona_index.samplers.base import sample
    from persona_index.samplers.stratified import fit_quotas, strata_codes, target_weights

    region, band = correlated_table(n)
    attrs = {"region": region, "age_band": band}
    by = ["region", "age_band"]
    X = np.random.default_rng(1).standard_normal((n, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    targets = {
        "balanced": {"region": {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25},
                     "age_band": {"18-34": 0.4, "35-54": 0.3, "55+": 0.3}},
        "skewed": {"region": {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4},
                   "age_band": {"18-34": 0.2, "35-54": 0.3, "55+": 0.5}},
    }
    inv, labels = strata_codes(attrs, by)
    sizes = np.bincount(inv)
    out = {"n": n, "k": k, "seeds": seeds, "cells": len(labels),
           "empty_cells": 4 * 3 - len(labels),
           "pool_shares": {a: {v: float((attrs[a] == v).mean()) for v in np.unique(attrs[a])}
                           for a in by},
           "cell_sizes": {f"{a} x {b}": int(s) for (a, b), s in zip(labels, sizes)},
           "targets": {}}
    for name, target in targets.items():
        row = {"target": target, "draws": {}, "fitted": {}}
        fit = fit_quotas(attrs, by, k, target=target)
        w = target_weights(labels, by, sizes, target)
        for rule, expected in (("raking", fit.expected), ("product", k * w / w.sum())):
            row["fitted"][rule] = {
                a: 0.5 * sum(abs(sum(e for lab, e in zip(labels, expected) if lab[j] == v) / k
                                 - target[a].get(v, 0.0)) for v in target[a])
                for j, a in enumerate(by)}
        for rule in ("raking", "product"):
            tvs = {a: [] for a in by}
            for s in range(seeds):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    idx = sample(X, k, "stratified", seed=s, attributes=attrs, by=by,
                                 target=target, quotas=rule, method="uniform")
                for a in by:
                    tvs[a].append(_tv(attrs[a], idx, target[a]))
            row["draws"][rule] = {a: {"mean": float(np.mean(v)), "max": float(np.max(v))}
                                  for a, v in tvs.items()}
        out["targets"][name] = row
    return out


def run_balanced() -> dict:
    t = time.perf_counter()
    out = {"inside_strata": inside_strata()}
    print(f"balanced: inside strata done ({time.perf_counter() - t:.0f}s)", flush=True)
    out["session_prior"] = session_prior()
    print(f"balanced: session prior done ({time.perf_counter() - t:.0f}s)", flush=True)
    out["raking_vs_product"] = raking_vs_product()
    out["seconds"] = time.perf_counter() - t
    return out


def markdown(r: dict) -> list[str]:
    """The docs/balanced.md table (a generated block)."""
    s = r["inside_strata"]
    h, u = s["methods"]["herding"], s["methods"]["uniform"]
    L = [f"*Generated pool of {s['n_generated']:,} (seed {s['seed']}), the {s['pool']:,} personas "
         f"naming both a region and an age band, embedded with {s['embedder']}; "
         f"`by region x age_band`, targets: the `world` shares of "
         f"{' and '.join(s['target_matched']['matched'])}; k = {s['k']}, seeds 0-{s['seeds'] - 1}; "
         f"mean ± sd over seeds. z against {s['uniform_draws']} stratified-uniform draws of the "
         f"same counts per seed, positive = better.*", "",
         "| | herding inside strata (default) | uniform inside strata |", "|---|---|---|"]
    for a in s["by"]:
        f = s["multinomial_floor"][a]
        L.append(f"| TV to target, {a} (multinomial floor {f:.3f}) | "
                 f"{h['marginal_tv'][a]['mean']:.4f} ({h['tv_over_floor'][a]:.2f}x floor) | "
                 f"{u['marginal_tv'][a]['mean']:.4f} ({u['tv_over_floor'][a]:.2f}x floor) |")
    L.append(f"| joint TV to fitted quotas | {h['joint_tv']['mean']:.4f} | "
             f"{u['joint_tv']['mean']:.4f} |")
    for m, label in (("mean_nearest", "within-strata mean nearest distance (lower is better)"),
                     ("vendi", "within-strata Vendi (higher is better)")):
        L.append(f"| {label} | {h[m]['mean']:.4f} ± {h[m]['sd']:.4f} | "
                 f"{u[m]['mean']:.4f} ± {u[m]['sd']:.4f} |")
        z = h["z_vs_stratified_uniform"][m]
        zu = u["z_vs_stratified_uniform"][m]
        L.append(f"| z of {m.replace('_', ' ')} | {z['mean']:+.2f} ± {z['sd']:.2f} | "
                 f"{zu['mean']:+.2f} ± {zu['sd']:.2f} |")
    L.append(f"| seconds per draw | {h['seconds_per_draw']:.2f} | {u['seconds_per_draw']:.2f} |")
    zz = s["z_herding_vs_uniform_seeds"]
    L += ["", f"Herding's mean over the {s['seeds']} seeds against the {s['seeds']} "
              f"`--stratum-method uniform` draws of the same seeds (same quotas: "
              f"{'yes' if s['same_quotas'] else 'no'}): z = {zz['mean_nearest']:+.1f} for mean "
              f"nearest distance, {zz['vendi']:+.1f} for Vendi.", ""]
    sp = r.get("session_prior")
    if sp:
        L += [f"*The session prior: a second batch of {sp['k_each']} after a first of "
              f"{sp['k_each']}, herding inside strata given the first batch's picks in their "
              f"own stratum (what `draw` does), all of them in every stratum, or none; the union "
              f"of both batches, mean ± sd over seeds 0-{sp['seeds'] - 1}.*", "",
              "| prior | within-strata mean nearest (lower is better) | within-strata Vendi | "
              "pool mean nearest (lower is better) | pool Vendi |", "|---|---|---|---|---|"]
        for mode, v in sp["modes"].items():
            L.append(f"| {mode} | " + " | ".join(
                f"{v[key]['mean']:.4f} ± {v[key]['sd']:.4f}" for key in
                ("within_mean_nearest", "within_vendi", "pool_mean_nearest", "pool_vendi"))
                + " |")
        L.append("")
    rp = r["raking_vs_product"]
    L += [f"*Raking against the product rule: a seeded {rp['n']:,}-row table with region and "
          f"age band correlated and {rp['empty_cells']} empty cells ({rp['cells']} non-empty); "
          f"k = {rp['k']}, seeds 0-{rp['seeds'] - 1}, uniform inside strata; marginal TV to the "
          f"target, mean over seeds (the fitted quotas' own TV in brackets).*", "",
          "| target | attribute | raking | product rule |", "|---|---|---|---|"]
    for name, row in rp["targets"].items():
        for a in row["draws"]["raking"]:
            L.append(f"| {name} | {a} | {row['draws']['raking'][a]['mean']:.4f} "
                     f"({row['fitted']['raking'][a]:.4f}) | "
                     f"{row['draws']['product'][a]['mean']:.4f} "
                     f"({row['fitted']['product'][a]:.4f}) |")
    return L
