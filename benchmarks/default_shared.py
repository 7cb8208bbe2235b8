"""The default's held-out check on the shared real persona sets (issue 25):
the rule adopted by the default grid against the rule it replaced, on the
sampler section's persona-space figures (same ks, same uniform baseline
draws) and on its persona -> output transfer study (same subpools, halves
and uniform selections), for these two rules only (the full sampler section
takes hours on a shared 2-core machine)."""

from __future__ import annotations

import numpy as np

from persona_index.samplers.herding import CONSTANT_RULE

#: (label, herding params): the default, then the rule it replaced
RULES = (("herding ramp beta=1.0 (default)", {}),
         ("herding constant beta=0.5 (old default)", dict(CONSTANT_RULE)))
PERSONA_METRICS = ("vendi", "mean_nearest_distance", "kcenter_radius")


def persona_space_rules(X: np.ndarray, ks, *, uniform_draws: int = 100, rules=RULES) -> dict:
    """Each rule's Vendi z, mean-nearest z and radius / uniform at each k,
    against ``uniform_draws`` uniform batches (the sampler section's seeds).
    Herding on pools this small uses every row, so one seed is the rule."""
    from persona_index.metrics import CellGrid, coverage_report
    from persona_index.samplers.base import sample

    from .sampler import UNIFORM_SEED0

    grid = CellGrid(X)
    out = {}
    for k in ks:
        U = [coverage_report(sample(X, k, "uniform", seed=UNIFORM_SEED0 + s), X, grid=grid)
             for s in range(uniform_draws)]
        mu = {m: float(np.mean([u[m] for u in U])) for m in PERSONA_METRICS}
        sd = {m: float(np.std([u[m] for u in U])) for m in PERSONA_METRICS}
        row = {}
        for label, params in rules:
            r = coverage_report(sample(X, k, "herding", seed=0, **params), X, grid=grid)
            row[label] = {"vendi_z": (r["vendi"] - mu["vendi"]) / sd["vendi"],
                          "mean_nearest_z": -(r["mean_nearest_distance"] - mu["mean_nearest_distance"])
                          / sd["mean_nearest_distance"],
                          "radius_ratio": r["kcenter_radius"] / mu["kcenter_radius"]}
        out[str(k)] = row
    return out


def run_default_shared(sets: dict, rules=RULES, subpools: int = 16) -> dict:
    """``sets``: name -> (path, persona-space ks, transfer subpool size, transfer ks)."""
    from .common import cached_embeddings, load_pairs, stable_half
    from .sampler import transfer_half

    settings = [(label, "herding", params) for label, params in rules]
    res = {"rules": [label for label, _ in rules], "subpools": subpools, "sets": {}}
    for name, (path, ks, size, tks) in sets.items():
        personas, outputs = load_pairs(path)
        XP = cached_embeddings(personas, f"{name}-personas")
        XO = cached_embeddings(outputs, f"{name}-outputs")
        halves = np.array([stable_half(p) for p in personas])
        r = {"pool": int(len(XP)), "persona_space": persona_space_rules(XP, ks, rules=rules),
             "transfer_size": size, "transfer_ks": list(tks), "transfer": {}}
        for h in (0, 1):
            rows = np.flatnonzero(halves == h)
            r["transfer"][str(h)] = transfer_half(XP, XO, rows, tks, settings, subpools=subpools,
                                                  size=min(size, len(rows)), seed=h)
        print(f"  default-shared[{name}]: done", flush=True)
        res["sets"][name] = r
    return res


def default_shared_markdown(res: dict) -> list[str]:
    """Persona space, then transfer (reporting half 1, tuning half 0), one row per rule."""
    L = ["| set | k | rule | Vendi z | mean-nearest z | radius / uniform |", "|---|---|---|---|---|---|"]
    for name, r in res["sets"].items():
        for k, row in r["persona_space"].items():
            for label in res["rules"]:
                e = row[label]
                L.append(f"| {name} (N = {r['pool']:,}) | {k} | {label} | {e['vendi_z']:+.1f} | "
                         f"{e['mean_nearest_z']:+.1f} | {e['radius_ratio']:.3f} |")
    L += ["", f"Transfer (outputs z against 50 uniform selections, mean ± s.e. over "
          f"{res['subpools']} subpools per half):", "",
          "| set | half | k | rule | output diversity z | output representativeness z |",
          "|---|---|---|---|---|---|"]
    for name, r in res["sets"].items():
        for h in ("1", "0"):
            for k in r["transfer_ks"]:
                for label in res["rules"]:
                    v = r["transfer"][h][label]["ks"][str(k)]
                    L.append(f"| {name} ({r['transfer_size']} of a half) | "
                             f"{'reporting' if h == '1' else 'tuning'} | {k} | {label} | "
                             f"{v['z_diversity']:+.2f} ± {v['se_diversity']:.2f} | "
                             f"{v['z_representativeness']:+.2f} ± {v['se_representativeness']:.2f} |")
    return L


def default_now_markdown(res: dict) -> list[str]:
    """The README's headline table: the current default (the first rule) per shared set and k,
    against the bar, with the rule it replaced beside it."""
    now, old = res["rules"][0], res["rules"][1]
    L = ["| set | k | Vendi z | mean-nearest z | radius / uniform | bar met | before the ramp: "
         "Vendi z / mean-nearest z |", "|---|---|---|---|---|---|---|"]
    for name, r in res["sets"].items():
        for k, row in r["persona_space"].items():
            e, o = row[now], row[old]
            met = e["vendi_z"] >= 2 and e["mean_nearest_z"] >= 2 and e["radius_ratio"] <= 1.0
            L.append(f"| {name} | {k} | {e['vendi_z']:+.2f} | {e['mean_nearest_z']:+.2f} | "
                     f"{e['radius_ratio']:.3f} | {'yes' if met else 'NO'} | "
                     f"{o['vendi_z']:+.2f} / {o['mean_nearest_z']:+.2f} |")
    return L
