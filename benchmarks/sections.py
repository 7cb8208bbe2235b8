"""The benchmark sections: ``SECTIONS = {name: runner}``, in the order a full run takes them.

Each runner takes the :class:`Run` (arguments, results dict, output folder) and writes
its figures into ``run.res``; a section registered with ``data=True`` needs ``--data``
and is skipped without it. ``python -m benchmarks --sections NAME ...`` runs the named
ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "personahub" / "tools-dev.jsonl"
CHAT_DATA = DEFAULT_DATA.parents[1] / "persona-chat" / "chat-dev.jsonl"


@dataclass
class Run:
    """What a section reads (the command's arguments) and writes (``res``, files in ``out``)."""

    data: str | None
    quick: bool
    out: Path
    res: dict = field(default_factory=dict)

    @property
    def strategies(self) -> list[str]:
        from persona_index.samplers.registry import strategy_names

        return strategy_names()


@dataclass(frozen=True)
class Section:
    run: Callable[[Run], None]
    data: bool = False  # skipped when no --data was given


SECTIONS: dict[str, Section] = {}


def section(name: str, data: bool = False):
    """Register ``fn`` as the runner of section ``name`` (registration order = run order)."""

    def deco(fn):
        SECTIONS[name] = Section(fn, data)
        return fn

    return deco


def _pairs_sets(run: Run, sizes: dict) -> dict:
    """name -> (path, extra) for the shared sets present on this machine."""
    paths = {"tools": run.data, "chat": str(CHAT_DATA)}
    return {name: (paths[name], extra) for name, extra in sizes.items()
            if paths[name] and Path(paths[name]).exists()}


@section("sampler", data=True)
def _sampler(run: Run) -> None:
    from . import sampler as SA
    from .common import cached_embeddings, load_pairs, stable_half

    sets = _pairs_sets(run, {"tools": ((25, 100, 250), 600, (25, 60)),
                             "chat": ((10, 50, 100), 300, (15, 30))})
    out = run.res["sampler"] = {"persona_space": {}, "default_check": {}}
    tsets = {}
    for name, (path, (ks, size, tks)) in sets.items():
        personas, outputs = load_pairs(path)
        XP = cached_embeddings(personas, f"{name}-personas")
        XO = cached_embeddings(outputs, f"{name}-outputs")
        ps = SA.persona_space(XP, ks, seeds=3 if run.quick else 20,
                              uniform_draws=20 if run.quick else 100, label=name)
        out["persona_space"][name] = ps
        out["default_check"][name] = SA.default_check(ps)
        tsets[name] = (XP, XO, np.array([stable_half(p) for p in personas]), size, tks)
    out["transfer"] = SA.run_transfer(tsets, quick=run.quick)


@section("curation", data=True)
def _curation(run: Run) -> None:
    from .common import cached_embeddings, load_pairs, stable_half
    from .curation import run_curation

    csets = {}
    for name, (path, (size, ks)) in _pairs_sets(run, {"tools": (600, (50, 120)),
                                                      "chat": (300, (30, 60))}).items():
        personas, outputs = load_pairs(path)
        csets[name] = (cached_embeddings(personas, f"{name}-personas"),
                       cached_embeddings(outputs, f"{name}-outputs"),
                       np.array([stable_half(p) for p in personas]), size, ks, outputs)
    run.res["curation"] = run_curation(csets, quick=run.quick)


def _stripped_sets(run: Run) -> dict:
    from .common import cached_embeddings, load_pairs

    sets = {}
    for name, (path, _) in _pairs_sets(run, {"tools": None, "chat": None}).items():
        personas, _ = load_pairs(path)
        texts = [p.strip() for p in personas]
        sets[name] = (texts, cached_embeddings(texts, f"{name}-personas-stripped"))
    return sets


@section("dedup", data=True)
def _dedup(run: Run) -> None:
    from .dedup import run_dedup

    run.res["dedup"] = run_dedup(_stripped_sets(run))


@section("minhash")
def _minhash(run: Run) -> None:
    from .minhash import run_minhash

    run.res["minhash"] = run_minhash(_stripped_sets(run),
                                     n_generated=10_000 if run.quick else 100_000,
                                     subset=2_000 if run.quick else 10_000)


@section("embedders", data=True)
def _embedders(run: Run) -> None:
    from .common import load_pairs
    from .embedders import run_embedders

    personas, _ = load_pairs(run.data)
    run.res["embedders"] = run_embedders(personas)


@section("latency", data=True)
def _latency(run: Run) -> None:
    from .common import cached_embeddings, load_pairs
    from .latency import run_latency

    personas, _ = load_pairs(run.data)
    run.res["latency"] = run_latency(personas, cached_embeddings(personas, "tools-personas"))


@section("coverage")
def _coverage(run: Run) -> None:
    import time

    from persona_index.generate import generate
    from persona_index.samplers.base import sample

    from . import coverage as C
    from . import report as R
    from .common import cached_embeddings, load_pairs

    quick, out = run.quick, run.out
    res = run.res["coverage"] = {}
    n_gen = 10_000 if quick else 100_000
    recs = list(generate(n_gen, seed=0))
    t = time.perf_counter()
    Xg = cached_embeddings([r["persona"] for r in recs], "generated")
    print(f"generated pool: {n_gen} embedded in {time.perf_counter() - t:.1f}s", flush=True)
    attrs = {"region": np.array([r["region"] for r in recs], dtype=object),
             "age_band": np.array([r["age_band"] for r in recs], dtype=object)}
    ks = (10, 50, 250) if quick else (10, 30, 100, 300, 1000)
    res["generated"] = C.run_coverage(Xg, ks, run.strategies, 3 if quick else 5, attrs, "generated")
    R.plot_coverage(res["generated"], f"generated pool, N={n_gen}", out / "coverage_generated.png")
    R.plot_map(Xg, {s: sample(Xg, 100, s, seed=0) for s in ("uniform", "herding", "farthest")},
               f"generated pool, N={n_gen}", out / "map_generated.png")
    if not run.data:
        run.res["notes"].append("no --data: the Persona Hub coverage and transfer sections were skipped")
        return
    personas, _ = load_pairs(run.data)
    Xp = cached_embeddings(personas, "personahub-personas")
    ks_p = (10, 100, 250) if quick else (10, 30, 100, 250, 1000)
    res["personahub"] = C.run_coverage(Xp, ks_p, [s for s in run.strategies if s != "stratified"],
                                       3 if quick else 20, None, "personahub")
    R.plot_coverage(res["personahub"], f"Persona Hub sample, N={len(Xp)}",
                    out / "coverage_personahub.png")
    R.plot_map(Xp, {s: sample(Xp, 100, s, seed=0) for s in ("uniform", "herding", "farthest")},
               f"Persona Hub sample, N={len(Xp)}", out / "map_personahub.png")


@section("speed")
def _speed(run: Run) -> None:
    from . import report as R
    from . import speed as S

    ns = (10_000, 100_000) if run.quick else (10_000, 100_000, 1_000_000)
    run.res["speed"] = S.run_speed(ns, 100 if run.quick else 1000, run.strategies,
                                   naive_max_n=max(ns))
    R.plot_speed(run.res["speed"], run.out / "speed.png")


@section("store")
def _store(run: Run) -> None:
    from persona_index.generate import generate

    from . import store as ST
    from .common import cached_embeddings

    res = run.res["store"] = {}
    if run.data:
        res["ingest"] = ST.ingest_vs_encode(run.data)
        print("store: ingest done", flush=True)
    n_q = 10_000 if run.quick else 100_000
    recs = list(generate(n_q, seed=0))
    Xq = cached_embeddings([r["persona"] for r in recs], "generated")
    res["queries"] = ST.query_latency(n_q, Xq, recs, ann=not run.quick)


@section("synth")
def _synth(run: Run) -> None:
    from .synth import run_synth

    run.res["synth"] = run_synth(320 if run.quick else 1024)  # whole rounds of 32: 160/s is reachable


@section("ray")
def _ray(run: Run) -> None:
    from .ray_bench import run_ray

    run.res["ray"] = run_ray(2_000 if run.quick else 20_000, 100_000 if run.quick else 1_000_000)


@section("pool")
def _pool(run: Run) -> None:
    from .pool import run_pool

    run.res["pool"] = run_pool(run.data)


@section("population")
def _population(run: Run) -> None:
    from .population import run_population

    run.res["population"] = run_population()


@section("balanced")
def _balanced(run: Run) -> None:
    from .balanced import run_balanced

    run.res["balanced"] = run_balanced()


@section("demo")
def _demo(run: Run) -> None:
    from .demo import run_demo

    run.res["demo"] = run_demo()


@section("gpu")
def _gpu(run: Run) -> None:
    """Runs on a CPU too (small sizes); see benchmarks/gpu.py."""
    from .gpu import run_gpu

    run.res["gpu"] = run_gpu(run.data, quick=run.quick)
    (run.out / "gpu.json").write_text(json.dumps({**run.res["gpu"], "environment": run.res["environment"]},
                                                 indent=1, default=str), encoding="utf-8")


@section("faults")
def _faults(run: Run) -> None:
    """Needs no data; the disk-full rows need root (unshare -m)."""
    from .faults import run_faults

    run.res["faults"] = run_faults()


@section("default")
def _default(run: Run) -> None:
    from .scale import run_default_grid

    run.res["default"] = run_default_grid((10_000,) if run.quick else (10_000, 100_000, 1_000_000),
                                          generated=(2_000,) if run.quick else (10_000, 100_000))


@section("ray-default")
def _ray_default(run: Run) -> None:
    from .ray_bench import run_ray_default

    run.res["ray_default"] = run_ray_default(100_000 if run.quick else 1_000_000)


@section("default-shared", data=True)
def _default_shared(run: Run) -> None:
    """The default against the rule it replaced on the shared sets (persona space, transfer)."""
    from .default_shared import run_default_shared

    sets = _pairs_sets(run, {"tools": ((25, 100, 250), 600, (25, 60)),
                             "chat": ((10, 50, 100), 300, (15, 30))})
    run.res["default_shared"] = run_default_shared(
        {name: (path, *extra) for name, (path, extra) in sets.items()},
        subpools=4 if run.quick else 16)


def save_partial(run: Run, name: str, section: dict) -> None:
    """A long section's figures so far, into ``out/results.json`` (its other
    sections kept), marked partial: a stopped run keeps what it measured. The
    run's end writes the section again, without the mark."""
    prev = run.out / "results.json"
    old = json.loads(prev.read_text(encoding="utf-8")) if prev.exists() else {
        k: v for k, v in run.res.items() if k in ("quick", "date", "command", "environment")}
    old[name] = section
    env = run.res["environment"]
    old.setdefault("provenance", {})[name] = {
        "commit": env["commit"], "partial": True, "date": run.res["date"],
        "command": f"python -m benchmarks --sections {name}", "environment": env}
    tmp = prev.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(old, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, prev)


@section("scale7")
def _scale7(run: Run) -> None:
    """Sizes from $SCALE7_NS (e.g. ``1e6,1e7``); rows of other sizes from an earlier run are kept."""
    from .scale import run_scale7

    ns = tuple(int(float(v)) for v in os.environ.get("SCALE7_NS", "").split(",") if v) or \
        ((100_000,) if run.quick else (1_000_000, 10_000_000))
    res = run.res["scale7"] = run_scale7(ns, on_phase=lambda sec: save_partial(run, "scale7", sec))
    prev = run.out / "results.json"
    if prev.exists():
        old = json.loads(prev.read_text(encoding="utf-8")).get("scale7", {}).get("rows", [])
        res["rows"] = sorted([r for r in old if r["n"] not in ns] + res["rows"], key=lambda r: r["n"])


@section("scale7-ingest")
def _scale7_ingest(run: Run) -> None:
    """Sizes from $SCALE7_INGEST_NS (e.g. ``1e5,1e6``)."""
    from .scale_ingest import run_scale7_ingest

    ns = tuple(int(float(v)) for v in os.environ.get("SCALE7_INGEST_NS", "").split(",") if v) \
        or ((20_000,) if run.quick else (100_000, 1_000_000))
    run.res["scale7_ingest"] = run_scale7_ingest(ns)


@section("newuser")
def _newuser(run: Run) -> None:
    """The "before" code: $PERSONA_INDEX_BENCH_BASE, else the merge base with main (on a branch)."""
    from .newuser import run_newuser

    run.res["newuser"] = run_newuser(run.data, run.out, reps=3 if run.quick else 5,
                                     base=os.environ.get("PERSONA_INDEX_BENCH_BASE"))


@section("scale")
def _scale(run: Run) -> None:
    from .scale import run_scale

    run.res["scale"] = run_scale((100_000,) if run.quick else (100_000, 1_000_000))


@section("arms")
def _arms(run: Run) -> None:
    """synthesize --control --oversample, then outputs-report, on the local mock (CLI)."""
    from .arms import run_arms

    run.res["arms"] = run_arms(run.data, quick=run.quick)
