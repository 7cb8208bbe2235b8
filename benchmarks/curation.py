"""The curation study: what selecting among generated outputs buys.

On each shared set (Persona Hub tool specs, Synthetic-Persona-Chat
dialogues), as the sampler's transfer study does: each half of the set (by a
stable hash of the persona text; 0 = tuning, 1 = reporting) is cut into
``subpools`` random subpools (600 pairs on tools, 300 on chat). In each
subpool and for each K:

* the baseline: ``uniform_draws`` uniform selections of K of the subpool's
  outputs;
* ``persona default``: the default sampler's K personas, their outputs;
* ``curate, M = m``: the default sampler's m x K personas, then ``curate -n K``
  over their outputs (the curation default on the output embeddings; no
  coherence filter, since the baseline has none). M = 1 keeps every row, so
  it equals the persona default by construction;
* ``herding on outputs, M = 2``: the first trial the issue reports (plain
  herding on the output embeddings);
* a tuning grid of the curation default's ``gamma`` and ``spread`` at M = 2,
  on the tuning half only; the setting with the best worst margin over the
  goal (z - goal, over both sets, both K, both metrics) is reported.

Each selection's output Vendi (diversity), minus the mean cosine distance from
every subpool output to its nearest selected one (representativeness) and
PCA-4 quartile cell coverage of the subpool's outputs are turned into z
against the uniform selections; the table gives the mean z over subpools and
its standard error. Also: the time ``curate`` takes per 1,000 outputs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np

from persona_index.curate import select_outputs
from persona_index.metrics import CellGrid, vendi_score
from persona_index.samplers.base import sample
from persona_index.samplers.herding import herding_select
from persona_index.samplers.registry import STRATEGIES

from .sampler import UNIFORM_SEED0

METRICS = ("diversity", "representativeness", "cells")
#: curate with a score: the coherence (persona . output cosine) as the score field, weight 0.5
SCORED = "curate, M = 2, --score-field coherence"
GOAL = {"tools": 1.5, "chat": 0.8}
FLOOR = {"tools": 1.0, "chat": 0.5}
GRID = [(g, s) for g in (0.25, 0.5, 0.75) for s in (0.5, 0.75, 1.0)]


def _defaults() -> dict:
    return {p.name: p.default for p in STRATEGIES["medoids"].params if p.name in ("gamma", "spread")}


def _vendi(S: np.ndarray) -> float:
    """metrics.vendi_score (which takes the k x k Gram matrix when k < d)."""
    return vendi_score(S)


def _metrics(O: np.ndarray, sel: np.ndarray, grid: CellGrid) -> tuple:
    S = O[sel]
    return (_vendi(S), -float((1.0 - (O @ S.T).max(axis=1)).mean()), grid.coverage(S)[0])


def _settings(half: int, ks, size: int):
    """(label, M, function of (output vectors of the candidates, k) -> picks)."""
    d = _defaults()
    s = [("persona default", 1, None)]
    for m in (1, 2, 4):
        if m * max(ks) <= size:
            s.append((f"curate, M = {m}", m, lambda O, k: select_outputs(O, k)))
    s.append(("herding on outputs, M = 2", 2, lambda O, k: herding_select(O, k, rng=0)))
    s.append((SCORED, 2, "score"))
    if half == 0:
        for g, sp in GRID:
            if (g, sp) == (d["gamma"], d["spread"]):
                continue
            s.append((f"grid gamma={g} spread={sp}, M = 2", 2,
                      lambda O, k, g=g, sp=sp: select_outputs(O, k, params={"gamma": g,
                                                                           "spread": sp})))
    return s


def curation_half(XP, XO, rows, ks, *, half: int, subpools: int, size: int,
                  uniform_draws: int = 50) -> dict:
    rng = np.random.default_rng(half)
    settings = _settings(half, ks, size)
    Z = {lab: {k: [] for k in ks} for lab, _, _ in settings}
    secs = {lab: 0.0 for lab, _, _ in settings}
    coh = (XP * XO).sum(axis=1)  # the coherence score of every pair
    score_means = {k: {"plain": [], "scored": [], "candidates": []} for k in ks}
    for j in range(subpools):
        sp = np.sort(rng.choice(rows, size, replace=False))
        P, O = XP[sp], XO[sp]
        grid = CellGrid(O)
        for k in ks:
            U = np.array([_metrics(O, sample(P, k, "uniform", seed=UNIFORM_SEED0 + 100 * j + u), grid)
                          for u in range(uniform_draws)])
            mu, sd = U.mean(axis=0), U.std(axis=0)
            drawn = {}
            for lab, m, fn in settings:
                if m not in drawn:
                    drawn[m] = sample(P, m * k, "herding", seed=j)
                cand = drawn[m]
                t = time.perf_counter()
                if fn == "score":
                    c = coh[sp][cand]
                    z = (c - c.mean()) / (c.std() or 1.0)
                    sel = cand[select_outputs(O[cand], k, bonus=0.5 * z)]
                    score_means[k]["scored"].append(float(coh[sp][sel].mean()))
                    score_means[k]["plain"].append(float(coh[sp][cand[select_outputs(O[cand], k)]].mean()))
                    score_means[k]["candidates"].append(float(c.mean()))
                else:
                    sel = cand if fn is None else cand[fn(O[cand], k)]
                secs[lab] += time.perf_counter() - t
                Z[lab][k].append((np.array(_metrics(O, sel, grid)) - mu) / np.where(sd > 0, sd, 1))
    out = {}
    for lab, m, _ in settings:
        e = {"M": m, "selection_seconds": secs[lab], "ks": {}}
        for k in ks:
            z = np.array(Z[lab][k])
            se = z.std(axis=0, ddof=1) / np.sqrt(len(z))
            e["ks"][str(k)] = {f"z_{n}": float(z[:, i].mean()) for i, n in enumerate(METRICS)}
            e["ks"][str(k)].update({f"se_{n}": float(se[i]) for i, n in enumerate(METRICS)})
        out[lab] = e
    out[SCORED]["mean_score"] = {str(k): {n: float(np.mean(v)) for n, v in d.items()}
                                 for k, d in score_means.items()}
    return out


def _margin(entry: dict, goal: float) -> float:
    return min(min(v["z_diversity"], v["z_representativeness"]) - goal for v in entry["ks"].values())


def time_per_1000(texts: list[str], k: int = 500) -> dict:
    """``curate_file`` on 1,000 real outputs (embedding with the default model
    included), and the selection alone on their vectors."""
    from persona_index.curate import curate_file
    from persona_index.embed import get_embedder

    e = get_embedder()
    e.encode(["warm up"], progress=False)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "outputs.jsonl")
        with open(path, "w", encoding="utf-8") as fh:
            for i, t in enumerate(texts[:1000]):
                fh.write(json.dumps({"custom_id": f"r{i}", "response": t}) + "\n")
        t0 = time.perf_counter()
        curate_file(path, k, embedder=e)
        total = time.perf_counter() - t0
    O = e.encode(texts[:1000], progress=False)
    t0 = time.perf_counter()
    select_outputs(O, k)
    sel = time.perf_counter() - t0
    return {"outputs": min(1000, len(texts)), "k": k, "curate_seconds": total,
            "selection_seconds": sel, "load_average": os.getloadavg()[0]}


def run_curation(sets: dict, *, quick: bool = False) -> dict:
    """``sets``: name -> (XP, XO, halves, subpool size, ks, output texts)."""
    subpools = 4 if quick else 16
    res = {"subpools": subpools, "uniform_draws": 50, "defaults": _defaults(), "goal": GOAL,
           "floor": FLOOR, "grid": [list(g) for g in GRID], "sets": {}}
    for name, (XP, XO, halves, size, ks, _texts) in sets.items():
        r = {"size": size, "ks": list(ks), "halves": {}}
        for h in (0, 1):
            rows = np.flatnonzero(halves == h)
            r["halves"][str(h)] = curation_half(XP, XO, rows, ks, half=h, subpools=subpools,
                                                size=min(size, len(rows)))
            print(f"  curation[{name}] half {h}: done", flush=True)
        r["reporting_n"] = int((halves == 1).sum())
        res["sets"][name] = r
    # the setting chosen on the tuning half: best worst margin over the goal
    d = _defaults()
    default_lab = "curate, M = 2"
    cands = [default_lab] + [f"grid gamma={g} spread={s}, M = 2" for g, s in GRID
                             if (g, s) != (d["gamma"], d["spread"])]
    margins = {lab: min(_margin(res["sets"][n]["halves"]["0"][lab], GOAL.get(n, 0.0))
                        for n in res["sets"]) for lab in cands}
    best = max(margins, key=margins.get)
    res["tuning_margins"] = margins
    res["chosen_on_tuning"] = best
    res["default_is_chosen"] = best == default_lab
    res["goal_check"] = {}
    for n, r in res["sets"].items():
        for k in r["ks"]:
            v = r["halves"]["1"][default_lab]["ks"][str(k)]
            res["goal_check"][f"{n} K={k}"] = {
                "z_diversity": v["z_diversity"], "z_representativeness": v["z_representativeness"],
                "goal": GOAL.get(n), "floor": FLOOR.get(n),
                "met": bool(min(v["z_diversity"], v["z_representativeness"]) >= GOAL.get(n, 0)),
                "floor_met": bool(min(v["z_diversity"], v["z_representativeness"]) >= FLOOR.get(n, 0))}
    first = next(iter(sets.values()))
    res["time_per_1000"] = time_per_1000(first[5])
    return res


def _cell(v, m):
    return f"{v['z_' + m]:+.2f} ± {v['se_' + m]:.2f}"


def curation_table(res: dict, name: str, half: str = "1") -> list[str]:
    r = res["sets"][name]
    head = "| selection | " + " | ".join(
        f"K={k} diversity z | K={k} representativeness z | K={k} cells z" for k in r["ks"]) + " |"
    L = [head, "|---|" + "---|" * (3 * len(r["ks"]))]
    for lab, e in r["halves"][half].items():
        if lab.startswith("grid "):
            continue
        cells = [_cell(e["ks"][str(k)], m) for k in r["ks"] for m in METRICS]
        name_ = f"**{lab}**" if lab == "curate, M = 2" else lab
        L.append(f"| {name_} | " + " | ".join(cells) + " |")
    return L


def goal_table(res: dict) -> list[str]:
    L = ["| set, K | diversity z | representativeness z | goal (floor) | met |", "|---|---|---|---|---|"]
    for key, g in res["goal_check"].items():
        met = "yes" if g["met"] else ("floor only" if g["floor_met"] else "NO")
        L.append(f"| {key} | {g['z_diversity']:+.2f} | {g['z_representativeness']:+.2f} | "
                 f"{g['goal']:+.1f} ({g['floor']:+.1f}) | {met} |")
    return L


def tuning_table(res: dict) -> list[str]:
    L = ["| setting (M = 2) | worst margin over the goal, tuning half |", "|---|---|"]
    for lab, m in sorted(res["tuning_margins"].items(), key=lambda x: -x[1]):
        d = res["defaults"]
        name_ = (f"default (gamma={d['gamma']} spread={d['spread']})" if lab == "curate, M = 2"
                 else lab.replace("grid ", "").replace(", M = 2", ""))
        L.append(f"| {name_} | {m:+.2f} |")
    return L


def markdown(res: dict) -> list[str]:
    t = res["time_per_1000"]
    L = [f"Reporting half; {res['subpools']} random subpools per half, {res['uniform_draws']} "
         "uniform selections of K of the subpool's outputs each; mean z ± s.e. (positive = "
         "better than uniform). **curate, M = 2** is `sample -n 2K` then `curate -n K` with "
         f"the defaults (medoids, gamma={res['defaults']['gamma']}, "
         f"spread={res['defaults']['spread']}).", ""]
    for name, r in res["sets"].items():
        L += [f"*{name}: {r['reporting_n']} pairs in the reporting half, subpools of {r['size']}*",
              ""] + curation_table(res, name) + [""]
    L += ["The goal at M = 2 (both z at least the goal; the floor below it):", ""]
    L += goal_table(res) + [""]
    L += [f"Tuning (half 0, both sets): chosen **{res['chosen_on_tuning']}**"
          + (" (the default)" if res["default_is_chosen"] else " (NOT the default)") + ".", ""]
    L += tuning_table(res) + [""]
    L += ["With a score (`--score-field`, weight 0.5; the score here is each pair's coherence, "
          "the persona . output cosine, for want of a quality label in the shared sets): the "
          "kept mean score against the same curation without it, and the candidates' mean "
          "(reporting half; the z of this row are in the tables above):", "",
          "| set, K | kept mean score, with the score | without | the 2K candidates |",
          "|---|---|---|---|"]
    for name, r in res["sets"].items():
        for k, v in r["halves"]["1"][SCORED]["mean_score"].items():
            L.append(f"| {name} K={k} | {v['scored']:.3f} | {v['plain']:.3f} | {v['candidates']:.3f} |")
    L += ["", f"Time: `curate` on {t['outputs']:,} Persona Hub outputs keeping {t['k']} took "
          f"{t['curate_seconds']:.1f} s, embedding included (default model, 2 cores, load "
          f"average {t['load_average']:.1f}); the selection alone {t['selection_seconds']:.2f} s."]
    return L
