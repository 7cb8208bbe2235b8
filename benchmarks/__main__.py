"""python -m benchmarks [--quick] [--data PATH] [--out DIR] [--sections ...]

Every figure comes from one command; results land as JSON, a markdown report
and PNG plots under a results folder named by date.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "personahub" / "tools-dev.jsonl"
CHAT_DATA = DEFAULT_DATA.parents[1] / "persona-chat" / "chat-dev.jsonl"
SECTIONS = ("sampler", "dedup", "latency", "embedders", "coverage", "speed", "store", "scale", "synth", "ray", "demo", "pool", "population",
            "gpu", "minhash", "balanced", "faults", "default", "ray-default", "scale7",
            "curation", "newuser")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, under 3 minutes on 2 cores")
    ap.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
                    help="persona jsonl (with outputs for the transfer study)")
    ap.add_argument("--out", help="results folder (default benchmarks/results/<date>[-quick])")
    ap.add_argument("--sections", nargs="+", choices=SECTIONS, default=None)
    ap.add_argument("--render", metavar="DIR", help="only rewrite report.md and the plots of "
                                                   "DIR/results.json")
    args = ap.parse_args(argv)
    if args.render:
        from . import report as R

        d = Path(args.render)
        res = json.loads((d / "results.json").read_text(encoding="utf-8"))
        for name, cov in res.get("coverage", {}).items():
            R.plot_coverage(cov, f"{name}, N={cov['pool']}", d / f"coverage_{name}.png")
        if "speed" in res:
            R.plot_speed(res["speed"], d / "speed.png")
        R.write_report(res, d)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from persona_index._lazy import quiet_libraries

    quiet_libraries()
    from persona_index.generate import generate

    from . import coverage as C
    from . import report as R
    from . import speed as S
    from .common import cached_embeddings, environment, load_pairs, stable_half

    quick = args.quick
    sections = args.sections or (("coverage", "speed") if quick else SECTIONS)
    date = time.strftime("%Y-%m-%d")
    out = Path(args.out or Path(__file__).parent / "results" / (date + ("-quick" if quick else "")))
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    res = {"quick": quick, "date": date, "command": "python -m benchmarks" + (" --quick" if quick else ""),
           "environment": environment(), "notes": []}
    from persona_index.samplers.registry import strategy_names

    strategies = strategy_names()

    if "sampler" in sections and args.data:
        from . import sampler as SA

        sets = {"tools": (args.data, (25, 100, 250), 600, (25, 60))}
        if CHAT_DATA.exists():
            sets["chat"] = (str(CHAT_DATA), (10, 50, 100), 300, (15, 30))
        res["sampler"] = {"persona_space": {}, "default_check": {}}
        tsets = {}
        for name, (path, ks, size, tks) in sets.items():
            personas, outputs = load_pairs(path)
            XP = cached_embeddings(personas, f"{name}-personas")
            XO = cached_embeddings(outputs, f"{name}-outputs")
            ps = SA.persona_space(XP, ks, seeds=3 if quick else 20,
                                  uniform_draws=20 if quick else 100, label=name)
            res["sampler"]["persona_space"][name] = ps
            res["sampler"]["default_check"][name] = SA.default_check(ps)
            tsets[name] = (XP, XO, np.array([stable_half(p) for p in personas]), size, tks)
        res["sampler"]["transfer"] = SA.run_transfer(tsets, quick=quick)

    if "curation" in sections and args.data:
        from .curation import run_curation

        csets = {}
        for name, path, size, ks in (("tools", args.data, 600, (50, 120)),
                                     ("chat", str(CHAT_DATA), 300, (30, 60))):
            if not Path(path).exists():
                continue
            personas, outputs = load_pairs(path)
            csets[name] = (cached_embeddings(personas, f"{name}-personas"),
                           cached_embeddings(outputs, f"{name}-outputs"),
                           np.array([stable_half(p) for p in personas]), size, ks, outputs)
        res["curation"] = run_curation(csets, quick=quick)

    if "dedup" in sections and args.data:
        from .dedup import run_dedup

        dsets = {}
        for name, path in (("tools", args.data), ("chat", str(CHAT_DATA))):
            if not Path(path).exists():
                continue
            personas, _ = load_pairs(path)
            texts = [p.strip() for p in personas]
            dsets[name] = (texts, cached_embeddings(texts, f"{name}-personas-stripped"))
        res["dedup"] = run_dedup(dsets)

    if "minhash" in sections:
        from .minhash import run_minhash

        msets = {}
        for name, path in (("tools", args.data), ("chat", str(CHAT_DATA))):
            if not path or not Path(path).exists():
                continue
            personas, _ = load_pairs(path)
            texts = [p.strip() for p in personas]
            msets[name] = (texts, cached_embeddings(texts, f"{name}-personas-stripped"))
        res["minhash"] = run_minhash(msets, n_generated=10_000 if quick else 100_000,
                                     subset=2_000 if quick else 10_000)

    if "embedders" in sections and args.data:
        from .embedders import run_embedders

        personas, _ = load_pairs(args.data)
        res["embedders"] = run_embedders(personas)

    if "latency" in sections and args.data:
        from .latency import run_latency

        personas, _ = load_pairs(args.data)
        res["latency"] = run_latency(personas, cached_embeddings(personas, "tools-personas"))

    if "coverage" in sections:
        res["coverage"] = {}
        n_gen = 10_000 if quick else 100_000
        recs = list(generate(n_gen, seed=0))
        t = time.perf_counter()
        Xg = cached_embeddings([r["persona"] for r in recs], "generated")
        print(f"generated pool: {n_gen} embedded in {time.perf_counter() - t:.1f}s", flush=True)
        attrs = {"region": np.array([r["region"] for r in recs], dtype=object),
                 "age_band": np.array([r["age_band"] for r in recs], dtype=object)}
        ks = (10, 50, 250) if quick else (10, 30, 100, 300, 1000)
        seeds = 3 if quick else 5
        res["coverage"]["generated"] = C.run_coverage(Xg, ks, strategies, seeds, attrs, "generated")
        from persona_index.samplers.base import sample

        R.plot_coverage(res["coverage"]["generated"], f"generated pool, N={n_gen}",
                        out / "coverage_generated.png")
        R.plot_map(Xg, {s: sample(Xg, 100, s, seed=0) for s in ("uniform", "herding", "farthest")},
                   f"generated pool, N={n_gen}", out / "map_generated.png")
        if args.data:
            personas, _ = load_pairs(args.data)
            Xp = cached_embeddings(personas, "personahub-personas")
            ks_p = (10, 100, 250) if quick else (10, 30, 100, 250, 1000)
            res["coverage"]["personahub"] = C.run_coverage(
                Xp, ks_p, [s for s in strategies if s != "stratified"], 3 if quick else 20, None,
                "personahub")
            R.plot_coverage(res["coverage"]["personahub"], f"Persona Hub sample, N={len(Xp)}",
                            out / "coverage_personahub.png")
            R.plot_map(Xp, {s: sample(Xp, 100, s, seed=0) for s in ("uniform", "herding", "farthest")},
                       f"Persona Hub sample, N={len(Xp)}", out / "map_personahub.png")
        else:
            res["notes"].append("no --data: the Persona Hub coverage and transfer sections were skipped")

    if "speed" in sections:
        ns = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
        k = 100 if quick else 1000
        res["speed"] = S.run_speed(ns, k, strategies, naive_max_n=max(ns))
        R.plot_speed(res["speed"], out / "speed.png")

    if "store" in sections:
        from . import store as ST

        res["store"] = {}
        if args.data:
            res["store"]["ingest"] = ST.ingest_vs_encode(args.data)
            print("store: ingest done", flush=True)
        n_q = 10_000 if quick else 100_000
        recs = list(generate(n_q, seed=0))
        Xq = cached_embeddings([r["persona"] for r in recs], "generated")
        res["store"]["queries"] = ST.query_latency(n_q, Xq, recs, ann=not quick)

    if "synth" in sections:
        from .synth import run_synth

        res["synth"] = run_synth(320 if quick else 1024)  # whole rounds of 32: 160/s is reachable

    if "ray" in sections:
        from .ray_bench import run_ray

        res["ray"] = run_ray(2_000 if quick else 20_000, 100_000 if quick else 1_000_000)

    if "pool" in sections:
        from .pool import run_pool

        res["pool"] = run_pool(args.data)

    if "population" in sections:
        from .population import run_population

        res["population"] = run_population()

    if "balanced" in sections:
        from .balanced import run_balanced

        res["balanced"] = run_balanced()

    if "demo" in sections:
        from .demo import run_demo

        res["demo"] = run_demo()

    if "gpu" in sections:  # runs on a CPU too (small sizes); see benchmarks/gpu.py
        from .gpu import run_gpu

        res["gpu"] = run_gpu(args.data, quick=quick)
        (out / "gpu.json").write_text(json.dumps({**res["gpu"], "environment": res["environment"]},
                                                 indent=1, default=str), encoding="utf-8")

    if "faults" in sections:  # needs no data; the disk-full rows need root (unshare -m)
        from .faults import run_faults

        res["faults"] = run_faults()

    if "default" in sections:
        from .scale import run_default_grid

        res["default"] = run_default_grid((10_000,) if quick else (10_000, 100_000, 1_000_000),
                                          generated=2_000 if quick else 10_000)

    if "ray-default" in sections:
        from .ray_bench import run_ray_default

        res["ray_default"] = run_ray_default(100_000 if quick else 1_000_000)

    if "scale7" in sections:
        from .scale import run_scale7

        ns = tuple(int(float(v)) for v in os.environ.get("SCALE7_NS", "").split(",") if v) or \
            ((100_000,) if quick else (1_000_000, 10_000_000))
        res["scale7"] = run_scale7(ns)
        prev7 = out / "results.json"  # rows of other sizes from an earlier run are kept
        if prev7.exists():
            old7 = json.loads(prev7.read_text(encoding="utf-8")).get("scale7", {}).get("rows", [])
            res["scale7"]["rows"] = sorted([r for r in old7 if r["n"] not in ns]
                                           + res["scale7"]["rows"], key=lambda r: r["n"])

    if "newuser" in sections:
        from .newuser import run_newuser

        # the "before" code: $PERSONA_INDEX_BENCH_BASE, else the merge base with main (on a branch)
        res["newuser"] = run_newuser(args.data, out, reps=3 if quick else 5,
                                     base=os.environ.get("PERSONA_INDEX_BENCH_BASE"))

    if "scale" in sections:
        from .scale import run_scale

        res["scale"] = run_scale((100_000,) if quick else (100_000, 1_000_000))

    res["total_seconds"] = time.perf_counter() - t_start
    cmd = "python -m benchmarks" + (" --quick" if quick else "") + (
        " --sections " + " ".join(sections) if args.sections else "")
    res["provenance"] = {sec: {"commit": res["environment"]["commit"], "command": cmd,
                               "date": date, "environment": res["environment"]}
                         for sec in sections}
    prev = out / "results.json"
    if args.sections and prev.exists():  # a partial rerun updates its sections only
        old = json.loads(prev.read_text(encoding="utf-8"))
        old.setdefault("reruns", []).append({"sections": list(sections),
                                             "seconds": res["total_seconds"], "date": date})
        for key, val in res.items():
            if key not in ("quick", "date", "command", "notes", "total_seconds", "environment",
                           "provenance"):
                old[key] = val
        old.setdefault("provenance", {})
        for sec in sections:
            old["provenance"][sec] = res["provenance"][sec]
        res = old
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str), encoding="utf-8")
    R.write_report(res, out)
    print(f"\nwrote {out}/report.md ({res['total_seconds']:.0f}s)")
    if "coverage" in res:
        for name, cov in res["coverage"].items():
            print(f"winners per metric [{name}]:")
            for m, per in C.winners(cov).items():
                print(f"  {m}: " + ", ".join(f"k={k} {s}" for k, s in per.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
