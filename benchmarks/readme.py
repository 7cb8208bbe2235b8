"""Rewrite the generated sections of the README and the docs/ pages from
committed results.

A generated section sits between ``<!-- generated: NAME from PATH -->`` and
``<!-- /generated: NAME -->``; PATH is a results.json under benchmarks/results.
``python -m benchmarks.readme`` rewrites every section of every page
(README.md and docs/**/*.md); ``--check`` only reports the sections that
differ from what their results give (exit 1), which is what
tests/test_readme_figures.py runs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) from (?P<path>\S+) -->\n)(?P<body>.*?)"
                   r"(<!-- /generated: (?P=name) -->)", re.S)


def _provenance(res: dict, section: str) -> str:
    prov = res.get("provenance", {}).get(section) or {}
    commit = prov.get("commit") or res.get("environment", {}).get("commit") or "unknown"
    command = prov.get("command") or res.get("command")
    return f"*From `{command}` at commit {commit[:10]}.*"


def render(name: str, res: dict) -> str:
    from .sampler import default_check_table, persona_space_table, transfer_table

    if name == "sampler-default":
        s = res["sampler"]
        L = default_check_table(s["default_check"])
        return "\n".join(L + ["", _provenance(res, "sampler")])
    if name == "sampler-persona-space":
        s = res["sampler"]
        L = []
        for set_name, ps in s["persona_space"].items():
            for k in ps["ks"]:
                L += [f"*{set_name} (N = {ps['pool']}), k = {k}: mean ± sd over {ps['seeds']} seeds "
                      f"(z against {ps['uniform_draws']} uniform draws; positive = better)*", ""]
                L += persona_space_table(ps, k) + [""]
        return "\n".join(L + [_provenance(res, "sampler")])
    if name == "sampler-transfer":
        t = res["sampler"]["transfer"]
        L = []
        for set_name, r in t["sets"].items():
            L += [f"*{set_name}: reporting half ({r['reporting_n']} pairs), {t['subpools']} subpools "
                  f"of {r['size']}, {t['uniform_draws']} uniform selections each; mean z ± s.e.; "
                  f"chosen on the tuning half: {r['chosen_on_tuning']}*", ""]
            L += transfer_table(t, set_name, "1") + [""]
        return "\n".join(L + [_provenance(res, "sampler")])
    if name == "scale":
        rows = res["scale"]
        head = "| | " + " | ".join(f"{r['n']:,} personas" for r in rows) + " |"
        L = [head, "|---|" + "---|" * len(rows)]

        def line(label, fn):
            cells = []
            for r in rows:
                try:
                    cells.append(fn(r))
                except (KeyError, TypeError):
                    cells.append("-")
            L.append(f"| {label} | " + " | ".join(cells) + " |")

        line("write into the store", lambda r: f"{r['write']['rows_per_s']:,.0f} rows/s")
        line("warm load of the vector column: s (column MB; peak extra RSS MB)",
             lambda r: f"{r['warm_load']['seconds']:.2f} ({r['warm_load']['vectors_mb']:.0f}; "
                       f"{r['warm_load']['extra_mb']:.0f})")
        line("the same load in a fresh process: peak extra RSS MB (x the matrix)",
             lambda r: f"{r['warm_load_fresh_process']['peak_extra_mb']:.0f} "
                       f"(x{r['warm_load_fresh_process']['peak_extra_over_matrix']:.2f})")
        for key, label in (("similar", "exact similar, k = 10"), ("distant", "exact distant, k = 10"),
                           ("similar_where", "similar with `where region = 'Africa'`"),
                           ("distant_where", "distant with the same filter")):
            line(f"{label}: ms (numpy product alone; ratio)",
                 lambda r, key=key: f"{r[key]['ours_ms']:.1f} ({r[key]['numpy_ms']:.1f}; "
                                    f"x{r[key]['ratio']:.2f})")
        line("ingest 5,000 into a store that size, excluding embedding",
             lambda r: f"{r['ingest_5000_into_store']['personas_per_s_excluding_embedding']:,.0f} "
                       f"personas/s ({r['ingest_5000_into_store'].get('method', 'exact')})")
        line("blocked near-dup check: recall on 1,000 planted near duplicates",
             lambda r: f"{r['blocked_near_dup']['recall_vs_exact']:.3f}")
        names = sorted({s for r in rows for s in r["strategies"]})
        for n in names:
            line(f"`{n}`, k = 1,000, from the store: s",
                 lambda r, n=n: f"{r['strategies'][n]['store_seconds']:.2f}")
        return "\n".join(L + ["", _provenance(res, "scale")])
    if name == "embedders":
        r = res["embedders"]
        L = ["| backend | personas/s | x torch | cosine to torch, min / mean | top-10 overlap | "
             "default sampler k=100: Vendi z / mean-nearest z |", "|---|---|---|---|---|---|"]
        for row in r["rows"]:
            L.append(f"| {row['backend']} | {row['personas_per_s']:.0f} | {row['speedup_vs_torch']:.2f} | "
                     f"{row['cosine_min']:.4f} / {row['cosine_mean']:.4f} | {row['top10_overlap']:.3f} | "
                     f"{row['default_k100_vendi_z']:+.2f} / {row['default_k100_mean_nearest_z']:+.2f} |")
        return "\n".join(L + ["", f"*{r['personas']} Persona Hub personas, one run.* "
                                   + _provenance(res, "embedders")])
    if name == "latency":
        r = res["latency"]
        L = ["| command | median s | min - max s | peak RSS MB |", "|---|---|---|---|"]
        for row in r["rows"]:
            L.append(f"| `{row['command']}` | {row['median_s']:.2f} | {row['min_s']:.2f} - "
                     f"{row['max_s']:.2f} | {row['peak_rss_mb']:.0f} |")
        return "\n".join(L + ["", f"*{r['store_personas']} personas; each command a fresh process, "
                                   f"median of {r['rows'][0]['runs']} runs after a warm-up.* "
                                   + _provenance(res, "latency")])
    if name == "dedup":
        L = ["| set | personas | near duplicates dropped, embedding only | of them non-Latin | "
             "with the lexical check | kept as embedder collisions |", "|---|---|---|---|---|---|"]
        for set_name, r in res["dedup"].items():
            a, b = r["embedding_only"], r["with_lexical_check"]
            nl = [d for d in a["dropped"] if d["non_latin"]]
            L.append(f"| {set_name} | {r['personas']} | {a['near_duplicates']} | {len(nl)} | "
                     f"{b['near_duplicates']} | {b['embedder_collisions']} |")
        for set_name, r in res["dedup"].items():
            for d in r["embedding_only"]["dropped"]:
                if d["non_latin"]:
                    kept = all(x["line"] != d["line"] for x in r["with_lexical_check"]["dropped"])
                    L.append("")
                    L.append(f"{set_name} line {d['line']} ({'kept now' if kept else 'still dropped'}, "
                             f"cosine {d['similarity']:.3f} to another persona): {d['text']}")
        return "\n".join(L + ["", _provenance(res, "dedup")])
    if name == "herding-scale":
        checks = res["speed"]["checks"]
        L = ["| N | herding s | blocked farthest s (same run) | ratio | extra MB (array MB) | "
             "typicality error, mean / p99 (reference rows) | Vendi z | mean-nearest z | radius / uniform |",
             "|---|---|---|---|---|---|---|---|---|"]
        for key, c in checks.items():
            if not key.startswith("herding_n"):
                continue
            L.append(f"| {key[len('herding_n'):]} | {c['seconds']:.2f} | {c['farthest_seconds']:.2f} | "
                     f"{c['ratio_to_farthest']:.2f} | {c['extra_mb']:.0f} ({c['array_mb']:.0f}) | "
                     f"{100 * c['mu_rel_error_mean']:.1f}% / {100 * c['mu_rel_error_p99']:.1f}% "
                     f"({c['mu_reference_rows']} vs {c['mu_compared_with_rows']}) | {c['vendi_z']:+.1f} | "
                     f"{c['mean_nearest_z']:+.1f} | {c['radius_ratio']:.3f} |")
        L.append("")
        L.append("The spread weight on these pools (z of Vendi / of mean nearest distance): " + "; ".join(
            f"N = {key[len('herding_n'):]}: " + ", ".join(
                f"{b} {v['vendi_z']:+.1f} / {v['mean_nearest_z']:+.1f}"
                for b, v in c.get("other_beta", {}).items())
            for key, c in checks.items() if key.startswith("herding_n")) + ".")
        dens = [(k[len("density_n"):], v) for k, v in checks.items() if k.startswith("density_n")]
        rows = {(r["n"], r["strategy"]): r for r in res["speed"]["rows"]}
        for n, v in dens:
            r = rows.get((int(n), "inverse-density"))
            if r:
                L.append("")
                L.append(f"inverse-density at N = {n}: {r['seconds']:.1f} s; its density estimate ranks "
                         f"{v['queries']} query personas with Spearman {v['spearman']:.3f} against exact "
                         f"10-NN distances over all N.")
        return "\n".join(L + ["", _provenance(res, "speed")])
    if name == "synth":
        t, rt = res["synth"]["throughput"], res["synth"]["round_trip"]
        if "runs" in t:  # the mock in its own process, median of repeated runs
            rates = ", ".join(f"{r['completions_per_s']:.0f}" for r in t["runs"])
            return (f"Measured against the package's mock server (`python -m "
                    f"persona_index.synthesis.mock`, its own process on 127.0.0.1, answering "
                    f"every request after {1000 * t['server_latency_s']:.0f} ms): "
                    f"{t['requests']:,} requests at concurrency {t['concurrency']}, "
                    f"{t['repeats']} runs ({rates} completions/s): median "
                    f"**{t['completions_per_s']:.0f} completions/s, {t['ratio_to_ideal']:.3f} of "
                    f"the ceiling** of {t['ideal_per_s']:.0f}/s (concurrency / latency), about "
                    f"{t['overhead_per_request_ms']:.0f} ms per request of client-side overhead. "
                    f"A bare httpx loop (no prompts, rows or file) on the same server in the "
                    f"same run: {t['bare_httpx_per_s']:.0f}/s. One request at a time with no "
                    f"server delay: {rt['ms_per_request_client_and_server']:.1f} ms end to end; "
                    f"{t['failed']} failed."
                    + (f" The machine's load average (1 min) was "
                       f"{t['load_average_1_5_15_min']['before'][0]:.1f} before the runs."
                       if "load_average_1_5_15_min" in t else "")
                    + "\n\n" + _provenance(res, "synth"))
        return (f"Measured against the local test server (a real HTTP server on 127.0.0.1 that "
                f"answers every request after {1000 * t['server_latency_s']:.0f} ms): "
                f"{t['requests']:,} requests at concurrency {t['concurrency']} ran at "
                f"{t['completions_per_s']:.0f} completions/s (the ceiling is "
                f"{t['ideal_per_s']:.0f}/s), that is about {t['overhead_per_request_ms']:.0f} ms "
                "per request of client-side overhead (JSON, the event loop, and the test server "
                "itself, which shares the process); one request at a time with no server delay "
                f"takes {rt['ms_per_request_client_and_server']:.1f} ms end to end, "
                f"{t['failed']} failed.\n\n" + _provenance(res, "synth"))
    if name == "pool":
        r = res["pool"]
        txt = (f"Measured (`generate --count {r['n']:,} --seed {r['seed']}`, the default model): "
               f"{100 * r['share_nearest_above_0_9']:.1f}% of the personas have a nearest other "
               f"persona above 0.9 cosine ({100 * r['share_nearest_above_0_95']:.1f}% above 0.95; "
               f"the aim was under 5%), and {r['distinct_texts']:,} of the {r['n']:,} texts are "
               "distinct.")
        if "real_vendi" in r:
            txt += (f" The pool is still far less diverse than real personas: its Vendi score "
                    f"is {r['generated_vendi_mean']:.1f} ± {r['generated_vendi_sd']:.1f} (s.d., "
                    f"{r['subsets']} random {r['real_size']:,}-persona subsets), against "
                    f"{r['real_vendi']:.1f} for the {r['real_size']:,} real Persona Hub personas "
                    "in `../shared` (same model, same size).")
        return txt + "\n\n" + _provenance(res, "pool")
    if name == "population":
        r = res["population"]
        w, fl, t = r["weights"], r["noise_floor"], r["targets"]
        L = [f"Total variation distance of `generate --count {r['n']:,} --seed {r['seed']}` to the "
             "population targets, among the personas that name a country or an age (0 = the "
             "targets exactly):", "",
             "| `--weights` | country | age band | personas naming a country / an age | "
             f"mean ± s.d. over seeds 0-{w['population']['over_seeds']['country']['seeds'] - 1}: "
             "country / age band |", "|---|---|---|---|---|"]
        for name_ in ("uniform", "population"):
            e, o = w[name_]["tv_to_population"], w[name_]["over_seeds"]
            L.append(f"| `{name_}` | {e['country']:.3f} | {e['age_band']:.3f} | "
                     f"{w[name_]['named']['country']:,} / {w[name_]['named']['age_band']:,} | "
                     f"{o['country']['mean']:.3f} ± {o['country']['sd']:.3f} / "
                     f"{o['age_band']['mean']:.3f} ± {o['age_band']['sd']:.3f} |")
        L.append(f"| sampling noise alone (exact draws of the same sizes from the targets) | "
                 f"{fl['country']['mean']:.3f} | {fl['age_band']['mean']:.3f} | | 95th percentile "
                 f"of {fl['country']['draws']} draws: {fl['country']['p95']:.3f} / "
                 f"{fl['age_band']['p95']:.3f} |")
        cs, ag = t["country_source"], t["age_source"]
        shares = ", ".join(f"{b} {100 * v:.1f}%" for b, v in t["age_band_shares"].items())
        L += ["", f"Targets: the {t['countries']} countries in proportion to their {cs['year']} "
              f"population (World Bank `SP.POP.TOTL`, from `datasets/population` "
              f"`{cs['file']}` at {cs['commit'][:7]}; CC BY 4.0), which puts "
              + ", ".join(f"{c} at {100 * v:.1f}%" for c, v in t["top_countries"][:2])
              + f" (the pool's countries hold {100 * t['pool_share_of_world_population']:.1f}% of "
              f"the world's people; none is missing from the source); the {t['age_bands']} age "
              f"bands in proportion to the world's adults in {ag['year']} (UN World Population "
              f"Prospects 2024, medium variant, from `PPgp/wpp2024` at {ag['commit'][:7]}; "
              f"CC BY 3.0 IGO): {shares}, where 18-24 takes two fifths of the 15-19 group.",
              "", _provenance(res, "population")]
        return "\n".join(L)
    if name == "demo":
        r = res["demo"]
        L = [f"On a fresh clone (2 cores): `make setup` (the install) took {r['install_seconds']:.0f} s "
             f"and the job (`make demo`) {r['job_seconds']:.0f} s, against a goal of "
             f"{r['goal_job_seconds']} s; the ONNX cache was {r['onnx_cache']}.", "",
             "| step | s |", "|---|---|"]
        L += [f"| {s['step']} | {s['seconds']:.1f} |" for s in r["steps"]]
        return "\n".join(L + ["", _provenance(res, "demo")])
    if name == "gpu":
        from .gpu import markdown as gpu_markdown

        return "\n".join(gpu_markdown(res["gpu"]) + ["", _provenance(res, "gpu")])
    if name == "minhash":
        from .minhash import markdown as minhash_markdown

        return "\n".join(minhash_markdown(res["minhash"]) + ["", _provenance(res, "minhash")])
    if name == "balanced":
        from .balanced import markdown as balanced_markdown

        return "\n".join(balanced_markdown(res["balanced"]) + ["", _provenance(res, "balanced")])
    if name == "faults":
        from .faults import fault_table

        f = res["faults"]
        head = (f"*{len(f['rows'])} faults injected, {sum(r['whole'] for r in f['rows'])} left the "
                f"store whole with nothing lost ({f['seconds']:.0f} s).*")
        return "\n".join([head, ""] + fault_table(f) + ["", _provenance(res, "faults")])
    if name in ("scale-default", "scale-default-quiet"):
        from .scale import default_markdown

        return "\n".join(default_markdown(res["default"]) + ["", _provenance(res, "default")])
    if name == "scale-ray-default":
        from .scale import ray_default_markdown

        return "\n".join(ray_default_markdown(res["ray_default"]) + ["", _provenance(res, "ray-default")])
    if name == "scale-shared-sets":
        from .scale import shared_sets_markdown

        return "\n".join(shared_sets_markdown(res) + ["", _provenance(res, "sampler")])
    if name == "default-now":
        from .default_shared import default_now_markdown

        return "\n".join(default_now_markdown(res["default_shared"])
                         + ["", _provenance(res, "default-shared")])
    if name == "scale-default-shared":
        from .default_shared import default_shared_markdown

        return "\n".join(default_shared_markdown(res["default_shared"])
                         + ["", _provenance(res, "default-shared")])
    if name == "scale-plan":
        from .scale import plan_markdown

        return "\n".join(plan_markdown(res) + ["", _provenance(res, "ray-default")])
    if name == "scale7":
        from .scale import scale7_markdown

        return "\n".join(scale7_markdown(res["scale7"]) + ["", _provenance(res, "scale7")])
    if name == "scale7-ingest":
        from .scale_ingest import scale7_ingest_markdown

        return "\n".join(scale7_ingest_markdown(res["scale7_ingest"])
                         + ["", _provenance(res, "scale7-ingest")])
    if name == "curation":
        from .curation import markdown as curation_markdown

        return "\n".join(curation_markdown(res["curation"]) + ["", _provenance(res, "curation")])
    if name == "newuser-coverage":
        from .newuser import markdown as newuser_markdown

        return "\n".join(newuser_markdown(res["newuser"]) + ["", _provenance(res, "newuser")])
    if name == "newuser-map":
        m = res["newuser"]["map"]
        return "\n".join([f"![{m['title']}]({m['docs_file']})", "",
                          f"*Left: the batch of {m['n']} (herding, seed 0) on the pool of "
                          f"{m['pool']:,}: k-center radius {m['batch']['kcenter_radius']:.3f}, "
                          f"Vendi {m['batch']['vendi']:.1f}, cell coverage "
                          f"{m['batch']['cell_coverage']:.2f}; right: a uniform batch of the same "
                          f"size: {m['uniform']['kcenter_radius']:.3f}, "
                          f"{m['uniform']['vendi']:.1f}, {m['uniform']['cell_coverage']:.2f}.*",
                          "", _provenance(res, "newuser")])
    if name == "arms":
        from .arms import markdown as arms_markdown

        return "\n".join(arms_markdown(res["arms"]) + ["", _provenance(res, "arms")])
    raise KeyError(f"no renderer for generated section {name!r}")


def rewrite(readme: Path = ROOT / "README.md", check: bool = False) -> list[str]:
    text = readme.read_text(encoding="utf-8")
    cache: dict = {}
    stale = []

    def sub(m):
        path = m.group("path")
        if path not in cache:
            cache[path] = json.loads((ROOT / path).read_text(encoding="utf-8"))
        body = render(m.group("name"), cache[path]) + "\n"
        if body != m.group("body"):
            stale.append(m.group("name"))
        return m.group(1) + body + m.group(5)

    new = BLOCK.sub(sub, text)
    if not check and new != text:
        readme.write_text(new, encoding="utf-8")
    return stale


def pages() -> list[Path]:
    """Every page that may hold generated sections: the README and docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def rewrite_all(check: bool = False) -> list[str]:
    """:func:`rewrite` over :func:`pages`; stale sections as ``PAGE:NAME``."""
    return [f"{p.relative_to(ROOT)}:{name}" for p in pages() for name in rewrite(p, check=check)]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = rewrite_all(check=check)
    if check and stale:
        print("generated sections differ from their results: " + ", ".join(stale))
        return 1
    print(("stale: " if check else "rewrote: ") + (", ".join(stale) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
