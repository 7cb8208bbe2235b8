"""Markdown report and PNG plots from a results dict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METRICS = ["cell_coverage", "cell_mass_coverage", "knn_coverage", "kcenter_radius",
           "mean_nearest_distance", "vendi", "mean_pairwise_distance"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_coverage(cov: dict, title: str, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(2, 4, figsize=(17, 8))
    for ax, m in zip(axes.flat, METRICS):
        for strat, per_k in cov["strategies"].items():
            ks = sorted(int(k) for k in per_k)
            mean = np.array([per_k[str(k)]["metrics"][m]["mean"] for k in ks])
            std = np.array([per_k[str(k)]["metrics"][m]["std"] for k in ks])
            ax.plot(ks, mean, marker="o", ms=3, label=strat)
            ax.fill_between(ks, mean - std, mean + std, alpha=0.15)
        ax.set_xscale("log")
        ax.set_title(m + (" (lower is better)" if m in ("kcenter_radius", "mean_nearest_distance") else ""),
                     fontsize=9)
        ax.set_xlabel("k")
    axes.flat[-1].axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_map(X: np.ndarray, samples: dict, title: str, path: Path) -> None:
    plt = _plt()
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc[:: max(1, len(X) // 20000)], full_matrices=False)
    P = Xc @ vt[:2].T
    fig, axes = plt.subplots(1, len(samples), figsize=(6 * len(samples), 5.5))
    for ax, (name, idx) in zip(np.atleast_1d(axes), samples.items()):
        ax.scatter(P[:, 0], P[:, 1], s=1, c="#cccccc", rasterized=True)
        ax.scatter(P[idx, 0], P[idx, 1], s=14, c="#d62728")
        ax.set_title(f"{name} (k={len(idx)})")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title + " - PCA of the pool, sample in red")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_speed(speed: dict, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    strategies = sorted({r["strategy"] for r in speed["rows"]})
    for s in strategies:
        rows = sorted((r for r in speed["rows"] if r["strategy"] == s), key=lambda r: r["n"])
        ax.plot([r["n"] for r in rows], [r["seconds"] for r in rows], marker="o",
                ls="--" if "naive" in s else "-", label=s)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("N (pool size)")
    ax.set_ylabel(f"seconds for k={speed['rows'][0]['k']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def coverage_table(cov: dict, k: int) -> str:
    head = "| strategy | " + " | ".join(METRICS) + " | seconds |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for s, per_k in cov["strategies"].items():
        if str(k) not in per_k:
            continue
        e = per_k[str(k)]
        cells = [f"{e['metrics'][m]['mean']:.3f} ± {e['metrics'][m]['std']:.3f}" for m in METRICS]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {e['seconds_mean']:.3f} |")
    return "\n".join(lines)


def write_report(results: dict, out: Path) -> None:
    from .coverage import winners

    r = results
    prov = r.get("provenance") or {}
    commits = {p.get("commit") for p in prov.values()}
    kind = ("quick run" if r["quick"] else "full run") if len(commits) <= 1 and not r.get("reruns") \
        else "merged from several runs: see each section's commit and command below"
    L = [f"# persona-index benchmark ({kind}, {r['date']})", ""]
    if prov:
        L += ["| section | commit | command | date |", "|---|---|---|---|"]
        L += [f"| {sec} | {(p.get('commit') or '?')[:12]} | `{p.get('command')}` | {p.get('date')} |"
              for sec, p in prov.items()]
        L.append("")
    L += [f"First run's command: `{r['command']}`. Machine: {r['environment']['cpus']} CPUs, "
         f"{r['environment']['mem_total_gib']} GiB, {r['environment']['platform']}.",
         "Versions: " + ", ".join(f"{k} {v}" for k, v in r["environment"]["versions"].items() if v),
         "Seeds: random strategies run with seeds 0..S-1 (S per section below); metric seeds are "
         "fixed in persona_index/metrics.py. Cell coverage uses its own PCA grid (4 components x 4 "
         "quantile bins), which no strategy uses.", ""]
    for name, cov in r.get("coverage", {}).items():
        L += [f"## Coverage: {name} (N = {cov['pool']}, {cov['seeds']} seeds)", "",
              f"![coverage vs k](coverage_{name}.png)", ""]
        for k in cov["ks"]:
            L += [f"### k = {k}", "", coverage_table(cov, k), ""]
        w = winners(cov)
        L += ["Winner per metric (best mean) at each k:", "",
              "| metric | " + " | ".join(f"k={k}" for k in cov["ks"]) + " |",
              "|---|" + "---|" * len(cov["ks"])]
        for m, per in w.items():
            L.append(f"| {m} | " + " | ".join(per.get(str(k), "-") for k in cov["ks"]) + " |")
        L += ["", f"![map](map_{name}.png)", ""]
    if "speed" in r:
        sp = r["speed"]
        L += ["## Speed and memory (synthetic clustered float32 vectors, d = 384)", "",
              "![time vs N](speed.png)", "",
              "| N | k | strategy | seconds | extra MB (peak RSS - before) |", "|---|---|---|---|---|"]
        for row in sp["rows"]:
            L.append(f"| {row['n']} | {row['k']} | {row['strategy']} | {row['seconds']:.3f} | "
                     f"{row['extra_mb']:.1f} |")
        L += ["", "Checks:", "", "```", json.dumps(sp["checks"], indent=1), "```", ""]
    if "sampler" in r:
        from .sampler import markdown

        L += markdown(r["sampler"])
    if "store" in r:
        L += ["## Store", "", "```", json.dumps(r["store"], indent=1, default=str), "```", ""]
    if "ray" in r:
        L += ["## Ray (local cluster, 2 workers)", "", "```", json.dumps(r["ray"], indent=1), "```", ""]
    if "synth" in r:
        L += ["## Synthesis client against the local test server", "", "```",
              json.dumps(r["synth"], indent=1), "```", ""]
    if "population" in r:
        L += ["## Generated pool: marginals against the population targets (total variation)", "",
              "```", json.dumps(r["population"], indent=1), "```", ""]
    if "scale" in r:
        L += ["## Scale: a real Lance store of synthetic vectors", "",
              "| N | write rows/s | warm load s (MB) | similar ms (numpy ms) | similar+where | distant | distant+where | ingest 5k into it, personas/s excl. embedding |",
              "|---|---|---|---|---|---|---|---|"]
        for row in r["scale"]:
            q = lambda key: f"{row[key]['ours_ms']:.1f} ({row[key]['numpy_ms']:.1f}, x{row[key]['ratio']:.2f})"
            L.append(f"| {row['n']} | {row['write']['rows_per_s']:.0f} | {row['warm_load']['seconds']:.2f} "
                     f"({row['warm_load']['warm_index_mb']:.0f}) | {q('similar')} | {q('similar_where')} | "
                     f"{q('distant')} | {q('distant_where')} | "
                     f"{row['ingest_5000_into_store']['personas_per_s_excluding_embedding']:.0f} |")
        L += ["", "Near-duplicate check against the store (ingest column above): "
              + "; ".join(f"N={row['n']}: {row['ingest_5000_into_store'].get('method', 'exact')}"
                          + (f", recall {row['blocked_near_dup']['recall_vs_exact']:.3f} on 1,000 planted "
                             f"near duplicates (median cosine {row['blocked_near_dup']['median_cos_to_source']:.3f})"
                             if 'blocked_near_dup' in row else "") for row in r["scale"]), ""]
        L += ["", "| N | strategy | from the store, s | extra MB | on the bare array, s | extra MB |",
              "|---|---|---|---|---|---|"]
        for row in r["scale"]:
            for s_, e in row["strategies"].items():
                L.append(f"| {row['n']} | {s_} | {e['store_seconds']:.2f} | {e['store_extra_mb']:.0f} | "
                         f"{e['array_seconds']:.2f} | {e['array_extra_mb']:.0f} |")
        L.append("")
    if "minhash" in r:
        from .minhash import markdown as minhash_markdown

        L += ["## MinHash at ingest: beyond the embedding stage, and its cost", ""]
        L += minhash_markdown(r["minhash"]) + [""]
    if "faults" in r:
        from .faults import fault_table

        L += ["## Faults: kill -9, file-size limits, a full disk, a read-only store", ""]
        L += fault_table(r["faults"]) + [""]
    if "curation" in r:
        from .curation import markdown as curation_markdown

        L += ["## Curation: selecting among generated outputs", ""]
        L += curation_markdown(r["curation"]) + [""]
    if "gpu" in r:
        from .gpu import markdown as gpu_markdown

        L += ["## GPU kernels and fast embedding", ""] + gpu_markdown(r["gpu"]) + [""]
    for note in r.get("notes", []):
        L.append(f"- {note}")
    (out / "report.md").write_text("\n".join(L) + "\n", encoding="utf-8")
