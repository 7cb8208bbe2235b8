"""The error of a balanced batch, said: how far it is from its targets, and
how well it covers the inside of each stratum.

Array in, numbers out (like :mod:`persona_index.metrics`):

* ``marginal_tv``: per targeted attribute, the total variation between the
  batch's shares and the completed target (named values as given, the rest
  sharing what is left by pool size: :func:`~persona_index.samplers.stratified.complete_marginal`);
* ``joint_tv``: the total variation between the batch's cell shares and the
  fitted cell quotas (:func:`~persona_index.samplers.stratified.fit_quotas`);
* ``within``: inside the strata, the pooled mean nearest distance (each pool
  persona of a stratum the batch draws from, to its nearest pick in the same
  stratum, averaged over all of them; lower is better) and the Vendi score
  (per stratum, weighted by its picks; higher is better), next to the mean
  and s.d. of ``uniform_draws`` stratified-uniform draws with the same
  per-stratum counts (seeds 0, 1, ...), and z = the batch's distance from that
  mean in s.d., signed so that positive is better.

Pools above ``reference`` rows (20,000) measure the mean nearest distance on a
fixed-seed subsample of their rows, so the cost stays bounded.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

REFERENCE = 20_000
REFERENCE_SEED = 24680


def vendi_small(S: np.ndarray) -> float:
    """The Vendi score (cosine kernel) of a few rows, from the n x n Gram
    matrix when n < d (the same non-zero spectrum as
    :func:`persona_index.metrics.vendi_score`'s d x d form, much cheaper).

    Examples
    --------
    >>> from persona_index.metrics import vendi_score
    >>> S = np.random.default_rng(0).standard_normal((5, 40))
    >>> S /= np.linalg.norm(S, axis=1, keepdims=True)
    >>> bool(abs(vendi_small(S) - vendi_score(S)) < 1e-9)
    True
    """
    from .metrics import vendi_score

    S = np.asarray(S, dtype=np.float64)
    n = len(S)
    if n == 0 or n >= S.shape[1]:
        return vendi_score(S)
    lam = np.linalg.eigvalsh(S @ S.T / n)
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    return float(np.exp(-(lam * np.log(lam)).sum()))


def _within(X, cell, picks_by_cell, ref_by_cell):
    """(pooled mean nearest distance, pick-weighted mean Vendi) for one batch."""
    vendi_score = vendi_small
    total, count, vendi, picks = 0.0, 0, 0.0, 0
    for c, picks_c in picks_by_cell.items():
        S = X[picks_c]
        R = X[ref_by_cell[c]]
        d = np.maximum(1.0 - (R @ S.T).max(axis=1), 0.0)
        total += float(d.sum())
        count += len(d)
        vendi += len(picks_c) * vendi_score(S)
        picks += len(picks_c)
    return (total / count if count else float("nan"), vendi / picks if picks else float("nan"))


def balance_report(X: np.ndarray, attributes: Mapping[str, Sequence], sel: Sequence[int],
                   by: Sequence[str], *, target: Mapping | None = None,
                   allocation: str | None = None, min_per_cell: int = 0,
                   uniform_draws: int = 20, reference: int = REFERENCE) -> dict:
    """The batch ``sel`` (rows of ``X``) against its targets and strata.

    Parameters
    ----------
    X : (n, d) float32 unit vectors of the pool.
    attributes : name -> length-n column, for at least ``by``.
    sel : the batch's row indices.
    by : the strata; target, allocation, min_per_cell : as the draw used them
        (the fitted quotas are those of :func:`fit_quotas` for ``len(sel)``).
    uniform_draws : stratified-uniform batches to compare with (0: none).

    Returns
    -------
    dict with ``by``, ``cells``, ``empty_cells``, ``thin_cells``,
    ``marginal_tv`` (per targeted attribute), ``joint_tv`` and ``within``.

    Examples
    --------
    Two strata, each a tight pair of clusters; a batch that takes one persona
    from each cluster covers them, a batch from one cluster per stratum does not:

    >>> rng = np.random.default_rng(0)
    >>> centres = np.eye(4, dtype=np.float32)
    >>> X = np.repeat(centres, 25, axis=0) + 0.05 * rng.standard_normal((100, 4)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> g = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    >>> good = balance_report(X, {"g": g}, [0, 25, 50, 75], ["g"], target={"g": {"a": 1, "b": 1}})
    >>> good["marginal_tv"], round(good["joint_tv"], 3)
    ({'g': 0.0}, 0.0)
    >>> good["within"]["z"]["mean_nearest"] > 0
    True
    >>> bad = balance_report(X, {"g": g}, [0, 1, 50, 51], ["g"])
    >>> bad["within"]["mean_nearest"] > good["within"]["mean_nearest"]
    True
    """
    from .samplers.stratified import fit_quotas, labels_of

    sel = np.asarray(sel, dtype=np.int64)
    by = list(by)
    k = len(sel)
    fit = fit_quotas(attributes, by, k, target=target, allocation=allocation,
                     min_per_cell=min_per_cell)
    C = len(fit.cells)
    got = np.bincount(fit.inv[sel], minlength=C)
    out = {"by": by, "k": k, "cells": C, "empty_cells": fit.empty,
           "thin_cells": fit.thin, "marginal_tv": {}, "joint_tv": None}
    if target:
        rows = labels_of(attributes, by)
        for name in target:
            share = fit.targets[name]
            col = rows[sel, by.index(name)].astype(str)
            p = {v: float((col == v).mean()) for v in set(col) | set(share)}
            out["marginal_tv"][name] = 0.5 * sum(abs(p.get(v, 0.0) - share.get(v, 0.0))
                                                 for v in p)
    out["joint_tv"] = float(0.5 * np.abs(got / max(k, 1) - fit.shares()).sum())
    # inside the strata: the batch, then stratified-uniform batches of the same counts
    n = len(X)
    if n > reference:
        keep = np.zeros(n, dtype=bool)
        keep[np.random.default_rng(REFERENCE_SEED).choice(n, reference, replace=False)] = True
    else:
        keep = np.ones(n, dtype=bool)
    order = np.argsort(fit.inv, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(fit.sizes)])
    members = {int(c): order[bounds[c]:bounds[c + 1]] for c in np.flatnonzero(got)}
    ref = {c: m[keep[m]] if keep[m].any() else m for c, m in members.items()}
    by_cell = {c: sel[fit.inv[sel] == c] for c in members}
    mn, vd = _within(X, fit.inv, by_cell, ref)
    within = {"mean_nearest": mn, "vendi": vd, "uniform_draws": int(uniform_draws)}
    if uniform_draws:
        us = []
        for s in range(uniform_draws):
            rng = np.random.default_rng(s)
            draw = {c: rng.choice(m, size=int(got[c]), replace=False) for c, m in members.items()}
            us.append(_within(X, fit.inv, draw, ref))
        us = np.array(us)
        mean, sd = us.mean(axis=0), us.std(axis=0, ddof=1) if len(us) > 1 else np.zeros(2)
        within["uniform"] = {"mean_nearest": {"mean": float(mean[0]), "sd": float(sd[0])},
                             "vendi": {"mean": float(mean[1]), "sd": float(sd[1])}}
        within["z"] = {"mean_nearest": float((mean[0] - mn) / sd[0]) if sd[0] > 0 else 0.0,
                       "vendi": float((vd - mean[1]) / sd[1]) if sd[1] > 0 else 0.0}
    out["within"] = within
    return out


def balance_rows(rep: dict) -> list[dict]:
    """A balance report as table rows: metric, batch, stratified-uniform mean ± sd, z.

    Examples
    --------
    >>> rows = balance_rows({"marginal_tv": {"g": 0.01}, "joint_tv": 0.02, "thin_cells": [],
    ...                      "cells": 2, "empty_cells": 0, "within": {"mean_nearest": 0.1,
    ...                      "vendi": 2.0, "uniform_draws": 0}})
    >>> [r["metric"] for r in rows]
    ['tv to target [g] (lower is better)', 'joint tv to fitted quotas', 'within-strata mean nearest (lower is better)', 'within-strata vendi (higher is better)', 'cells: non-empty / empty / thin']
    """
    rows = [{"metric": f"tv to target [{a}] (lower is better)", "batch": round(v, 4)}
            for a, v in rep["marginal_tv"].items()]
    if rep.get("joint_tv") is not None:
        rows.append({"metric": "joint tv to fitted quotas", "batch": round(rep["joint_tv"], 4)})
    w = rep["within"]
    for key, label in (("mean_nearest", "within-strata mean nearest (lower is better)"),
                       ("vendi", "within-strata vendi (higher is better)")):
        row = {"metric": label, "batch": round(w[key], 4)}
        if w.get("uniform"):
            u = w["uniform"][key]
            row["stratified-uniform"] = f"{u['mean']:.4f} ± {u['sd']:.4f}"
            row["z (+ better)"] = f"{w['z'][key]:+.2f}"
        rows.append(row)
    rows.append({"metric": "cells: non-empty / empty / thin",
                 "batch": f"{rep['cells']} / {rep['empty_cells']} / {len(rep['thin_cells'])}"})
    return rows
