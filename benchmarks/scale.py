"""One machine, 10^5 and 10^6 personas in a real Lance store.

Synthetic vectors are written straight into the store's format (embedding
10^6 texts would take an hour on 2 cores); then: write rate, warm load,
similar/distant latency next to numpy, every strategy's k = 1,000 draw from
the store next to the same strategy on the bare array, the dedup overhead of
ingesting into a store that large, and extra memory for each.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from persona_index.samplers.herding import CONSTANT_RULE

from .common import clustered_vectors, latency_vs_numpy, measure


def build_store(path, X: np.ndarray, batch: int = 100_000):
    import pyarrow as pa

    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder

    idx = PersonaIndex(path, HashEmbedder(X.shape[1]))
    regions = np.array(["Africa", "Asia", "Europe", "North America", "South America", "Oceania",
                        "Middle East"], dtype=object)
    rng = np.random.default_rng(0)
    for s in range(0, len(X), batch):
        e = min(len(X), s + batch)
        n = e - s
        ids = [f"{i:020x}" for i in range(s, e)]
        idx.write(pa.table({
            "id": ids, "text": [f"synthetic persona {i}" for i in range(s, e)],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(X[s:e].reshape(-1), pa.float32()), X.shape[1]),
            "source": ["synthetic"] * n, "source_line": list(range(s + 1, e + 1)),
            "licence": ["synthetic"] * n, "region": regions[rng.integers(len(regions), size=n)],
        }), attributes=["region"])
    return idx


WARM_LOAD_CHILD = """
import json, sys, threading, time
from persona_index import PersonaIndex

def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

snap = PersonaIndex(sys.argv[1]).snapshot()
snap.count()
base = kb("VmRSS")
try:  # reset the high-water mark, so VmHWM is the peak of the load alone
    open("/proc/self/clear_refs", "w").write("5")
except OSError:
    pass
peak, stop = [base], threading.Event()

def poll():
    while not stop.is_set():
        peak[0] = max(peak[0], kb("VmRSS"))
        time.sleep(0.005)

t = threading.Thread(target=poll, daemon=True)
t.start()
t0 = time.perf_counter()
X = snap.vectors
secs = time.perf_counter() - t0
stop.set(); t.join()
peak_kb = max(peak[0], kb("VmHWM") or 0, kb("VmRSS"))
print(json.dumps({"seconds": secs, "baseline_mb": base / 1024, "peak_extra_mb": (peak_kb - base) / 1024,
                  "held_extra_mb": (kb("VmRSS") - base) / 1024, "matrix_mb": X.nbytes / 2**20}))
"""


def warm_load_fresh_process(path) -> dict:
    """The warm load in a process of its own (baseline: imports and an open
    snapshot), so the figure is what a user's `similar` or `sample` pays."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", WARM_LOAD_CHILD, str(path)], capture_output=True,
                         text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["peak_extra_over_matrix"] = r["peak_extra_mb"] / r["matrix_mb"]
    return r


def run_scale(ns, k: int = 1000, strategies=("uniform", "herding", "stratified", "cells", "farthest",
                                              "inverse-density", "core-farthest", "facility")):
    from persona_index import PersonaIndex
    from persona_index.ingest import ingest_records
    from persona_index.samplers.base import sample
    from persona_index.sampling import coverage_of, draw

    out = []
    for n in ns:
        tmp = Path(tempfile.mkdtemp())
        try:
            X = clustered_vectors(n, seed=7)
            row = {"n": n}
            with measure() as m:
                build_store(tmp / "s.lance", X)
            row["write"] = {**m, "rows_per_s": n / m["seconds"]}
            row["warm_load_fresh_process"] = warm_load_fresh_process(tmp / "s.lance")
            idx = PersonaIndex(tmp / "s.lance")
            with measure() as m:
                mat = idx.snapshot()
                mat.vectors  # the warm load
            row["warm_load"] = {**m, "warm_index_mb": mat.nbytes / 2**20,
                                "vectors_mb": mat.vectors.nbytes / 2**20}
            row.update(latency_vs_numpy(idx, X[123], "region = 'Africa'"))
            V = mat.vectors
            strat_rows = {}
            for s in strategies:
                params = {"by": ["region"]} if s == "stratified" else {}
                gc.collect()
                with measure() as m_store:
                    b = draw(idx, k, s, seed=0, params=params, record=False)
                kw = {"attributes": {"region": idx.snapshot().attribute_columns(["region"])["region"]},
                      "by": ["region"]} if s == "stratified" else {}
                gc.collect()
                with measure() as m_arr:
                    sample(V, k, s, seed=0, **kw)
                strat_rows[s] = {"store_seconds": m_store["seconds"], "store_extra_mb": m_store["extra_mb"],
                                 "array_seconds": m_arr["seconds"], "array_extra_mb": m_arr["extra_mb"]}
                print(f"  scale n={n} {s}: store {m_store['seconds']:.2f}s array {m_arr['seconds']:.2f}s",
                      flush=True)
            row["strategies"] = strat_rows
            with measure() as m:
                coverage_of(idx, b.ids)
            row["coverage_seconds"] = m["seconds"]
            row["coverage_extra_mb"] = m["extra_mb"]
            # recall of the blocked near-dup check on planted near duplicates
            from persona_index.dedup import BLOCKING_MIN, KMeansBlocks

            rng = np.random.default_rng(5)
            src = rng.choice(len(V), 1000, replace=False)
            noisy = V[src] + (0.15 / np.sqrt(V.shape[1])) * rng.standard_normal((1000, V.shape[1])).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            with measure() as mb:
                blocks = KMeansBlocks(V)
            with measure() as mq:
                _, arg = blocks.nearest(noisy)
            cos_src = (noisy * V[src]).sum(axis=1)
            exact = np.concatenate([(noisy[s_:s_ + 100] @ V.T).argmax(axis=1) for s_ in range(0, 1000, 100)])
            row["blocked_near_dup"] = {"planted": 1000, "median_cos_to_source": float(np.median(cos_src)),
                                       "recall_vs_exact": float((arg == exact).mean()),
                                       "build_seconds": mb["seconds"], "build_extra_mb": mb["extra_mb"],
                                       "query_1000_seconds": mq["seconds"],
                                       "used_from_rows": BLOCKING_MIN}
            # dedup + write overhead of an ingest into a store of this size (the
            # hash embedder makes embedding free, so this is everything else)
            recs = [{"text": f"new persona {i}"} for i in range(5000)]
            with measure() as m:
                s = ingest_records(idx, recs, near_dedup=True, batch_size=1024)
            row["ingest_5000_into_store"] = {**m, "added": s.added, "method": s.near_dedup_method,
                                             "personas_per_s_excluding_embedding":
                                                 5000 / max(m["seconds"] - s.embed_seconds, 1e-9),
                                             "embed_seconds": s.embed_seconds}
            out.append(row)
            del X, idx, mat, V
            gc.collect()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- the default's Pareto grid (issue 25, step 1) ------------------------------

#: the rules compared: (label, strategy, params). The default is the first.
DEFAULT_RULES = (
    ("herding ramp beta=1.0 (default)", "herding", {}),
    ("herding ramp beta=1.25", "herding", {"beta": 1.25}),
    ("herding constant beta=0.5 (old default)", "herding", dict(CONSTANT_RULE)),
    ("herding constant beta=0.75", "herding", {"beta": 0.75, "ramp": "none"}),
    ("facility 8k clients", "facility", "8k"),
)


def _rule_params(params, k: int) -> dict:
    if params == "8k":  # facility with max(4096, 8 k) candidates and clients
        return {"sample_size": max(4096, 8 * k)}
    return dict(params)


def default_cell(X: np.ndarray, k: int, rules=DEFAULT_RULES, *, eval_rows: int = 20_000,
                 uniform_draws: int = 20, seed: int = 0) -> dict:
    """One (pool, k) cell: each rule's Vendi z and mean-nearest z against
    ``uniform_draws`` uniform batches, its radius over uniform's mean radius
    (both measured on a seeded ``eval_rows`` subsample of the pool), and its
    time next to blocked farthest-point in the same run."""
    import time

    from persona_index.metrics import vendi_score
    from persona_index.samplers.base import sample
    from persona_index.samplers.farthest import farthest_point

    n = len(X)
    rng = np.random.default_rng(3)
    ev = np.sort(rng.choice(n, min(eval_rows, n), replace=False))
    E = X[ev]

    def cover(idx):
        d = 1.0 - (E @ X[idx].T).max(axis=1)
        return vendi_score(X[idx]), float(d.mean()), float(d.max())

    U = np.array([cover(sample(X, k, "uniform", seed=100 + s)) for s in range(uniform_draws)])
    mu, sd = U.mean(axis=0), U.std(axis=0)
    gc.collect()
    t = time.perf_counter()
    farthest_point(X, k, start=12345 % n)
    t_fp = time.perf_counter() - t
    out = {"n": int(n), "k": int(k), "farthest_seconds": t_fp, "uniform_draws": uniform_draws,
           "eval_rows": int(len(ev)), "rules": {}}
    for label, strat, params in rules:
        p = _rule_params(params, k)
        gc.collect()
        t = time.perf_counter()
        idx = sample(X, k, strat, seed=seed, **p)
        secs = time.perf_counter() - t
        v, mn, r = cover(idx)
        e = {"strategy": strat, "params": p, "seconds": secs, "ratio_to_farthest": secs / t_fp,
             "vendi_z": float((v - mu[0]) / sd[0]), "mean_nearest_z": float(-(mn - mu[1]) / sd[1]),
             "radius_ratio": float(r / mu[2])}
        e["met"] = {"vendi": e["vendi_z"] >= 3, "mean_nearest": e["mean_nearest_z"] >= 3,
                    "radius": e["radius_ratio"] <= 1.0,
                    "time": e["ratio_to_farthest"] <= 3 or secs < 1.0}
        e["all_met"] = all(e["met"].values())
        out["rules"][label] = e
        print(f"  default n={n} k={k} {label}: vendi z {e['vendi_z']:+.1f} mean-nearest z "
              f"{e['mean_nearest_z']:+.1f} radius {e['radius_ratio']:.3f} {secs:.2f}s "
              f"({e['ratio_to_farthest']:.2f}x farthest)", flush=True)
    return out


def run_default_grid(ns=(10_000, 100_000, 1_000_000), ks=(100, 1000),
                     generated=(10_000, 100_000)) -> dict:
    """Every rule at every (N, k) on the clustered pools (``clustered_vectors(n,
    seed=n)``, as the speed section), and on embedded generated pools of each
    size in ``generated`` (the default model; vectors cached)."""
    cells = []
    for n in ns:
        X = clustered_vectors(n, seed=n)
        for k in ks:
            cells.append({"pool": "clustered", **default_cell(X, k)})
        del X
        gc.collect()
    for size in generated:
        from persona_index.generate import generate

        from .common import cached_embeddings

        recs = list(generate(size, seed=0))
        Xg = cached_embeddings([r["persona"] for r in recs], "generated")
        for k in ks:
            cells.append({"pool": "generated (embedded)", **default_cell(Xg, k)})
        del Xg
        gc.collect()
    return {"rules": [lab for lab, _, _ in DEFAULT_RULES], "cells": cells}


# -- 10^7 on one machine (issue 25, step 3) -------------------------------------

def clustered_chunks(n: int, d: int = 384, clusters: int = 1000, seed: int = 0,
                     spread: float = 0.8, step: int = 100_000):
    """:func:`benchmarks.common.clustered_vectors`'s distribution, yielded in
    ``step``-row float32 chunks (a 10^7 x 384 pool is 15 GB in float32)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    sizes = rng.zipf(1.6, clusters).astype(np.float64)
    p = sizes / sizes.sum()
    for s in range(0, n, step):
        m = min(n, s + step) - s
        lab = rng.choice(clusters, size=m, p=p)
        block = centers[lab] + np.float32(spread / np.sqrt(d)) * rng.standard_normal((m, d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        yield block


PHASE_CHILD = """
import hashlib, json, os, statistics, sys, time
import numpy as np

def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

def reset_peak():  # VmHWM starts again from the current RSS (Linux >= 4.0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def peak_mb():
    return kb("VmHWM") / 1024

def write(path, n, batch):
    from benchmarks.scale import clustered_chunks
    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder

    regions = np.array(["Africa", "Asia", "Europe", "Americas"], dtype=object)
    idx = PersonaIndex(path, HashEmbedder(384))
    t0, at = time.perf_counter(), 0
    for X in clustered_chunks(n, seed=7, step=batch):
        m = len(X)
        recs = [{"text": f"synthetic persona {i}", "region": regions[i % 4]}
                for i in range(at, at + m)]
        idx.add(recs, vectors=X, attributes=["region"])
        at += m
        if at % 1_000_000 == 0 or at == n:
            print(f"  scale7 n={n}: {at:,} written ({time.perf_counter() - t0:.0f} s, "
                  f"peak RSS {peak_mb():,.0f} MB)", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    return {"write_seconds": secs, "rows_per_s": n / secs, "add_batch": batch,
            "write_peak_rss_mb": peak_mb()}

def warm(path, dtype, k):
    os.environ["PERSONA_INDEX_WARM_DTYPE"] = dtype
    from persona_index import PersonaIndex
    from persona_index.sampling import draw

    idx = PersonaIndex(path)
    snap = idx.snapshot()
    n = snap.count()
    base = kb("VmRSS")
    t = time.perf_counter()
    X = snap.vectors
    out = {"n": n, "dtype": dtype, "load_seconds": time.perf_counter() - t,
           "matrix_mb": X.nbytes / 2**20, "rss_after_load_mb": kb("VmRSS") / 1024,
           "baseline_mb": base / 1024, "load_peak_rss_mb": peak_mb()}
    print(f"  scale7 n={n} {dtype}: loaded {out}", file=sys.stderr, flush=True)
    out["peak_reset"] = reset_peak()
    rng = np.random.default_rng(0)
    qs = [snap.exact_vectors([int(i)])[0] for i in rng.choice(n, 5, replace=False)]
    t = time.perf_counter()
    snap.rank(qs[0], 10)  # the first query (float16: imports torch for its float16 product)
    out["first_query_ms"] = (time.perf_counter() - t) * 1000
    for name, sign in (("similar", 1), ("distant", -1)):
        ts = []
        for q in qs:
            t = time.perf_counter()
            snap.rank(q, 10, sign=sign)
            ts.append(time.perf_counter() - t)
        out[name + "_ms"] = statistics.median(ts) * 1000
        out[name + "_ns_per_row"] = out[name + "_ms"] * 1e6 / n
    out["query_peak_rss_mb"] = peak_mb()
    reset_peak()
    t = time.perf_counter()
    batch = draw(idx, k, seed=0, record=False)  # the default, through the public draw()
    out["draw_seconds"] = time.perf_counter() - t
    out["draw_strategy"] = batch.manifest["strategy"]
    out["draw_k"] = len(batch.ids)
    out["draw_ids_sha"] = hashlib.sha256("\\n".join(batch.ids).encode()).hexdigest()
    out["draw_peak_rss_mb"] = peak_mb()
    out["peak_rss_mb"] = max(out["load_peak_rss_mb"], out["query_peak_rss_mb"],
                             out["draw_peak_rss_mb"])
    return out

def cold(path, dtype, k):  # the default's draw in a fresh process, no warm matrix loaded
    os.environ["PERSONA_INDEX_WARM_DTYPE"] = dtype
    from persona_index import PersonaIndex
    from persona_index.sampling import draw

    idx = PersonaIndex(path)
    t = time.perf_counter()
    batch = draw(idx, k, seed=0, record=False)
    return {"seconds": time.perf_counter() - t, "peak_rss_mb": peak_mb(),
            "matrix_loaded": idx.snapshot().vectors_loaded,
            "ids_sha": hashlib.sha256("\\n".join(batch.ids).encode()).hexdigest()}

phase = sys.argv[1]
if phase == "write":
    res = write(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif phase == "cold":
    res = cold(sys.argv[2], sys.argv[3], int(sys.argv[4]))
else:
    res = warm(sys.argv[2], sys.argv[3], int(sys.argv[4]))
print(json.dumps(res))
"""


def _phase_child(*args) -> dict:
    """One phase of :func:`run_scale7` in a fresh process (its own peak RSS);
    its progress lines go to this process's stderr as they come."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", PHASE_CHILD, *map(str, args)], cwd=root,
                       stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        return {"error": f"exit {r.returncode} (see the run's log)"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def _per_row_ratios(res: dict) -> dict:
    """Each size's float16 latency per row against float32's at the first
    size measured in float32 (the baseline of the same run), in place."""
    rows = res["rows"]
    base = next((r for r in rows if "similar_ns_per_row" in r["warm"].get("float32", {})), None)
    if base:
        res["baseline_n"] = base["n"]
        for r in rows:
            w16 = r["warm"].get("float16", {})
            if "similar_ns_per_row" in w16:
                r["fp16_per_row_over_fp32_at_baseline"] = {
                    q: w16[q + "_ns_per_row"] / base["warm"]["float32"][q + "_ns_per_row"]
                    for q in ("similar", "distant")}
    return res


def run_scale7(ns=(1_000_000, 10_000_000), k: int = 1000, batch: int = 100_000,
               float32_max: int = 2_000_000, on_phase=None) -> dict:
    """Precomputed vectors through ``PersonaIndex.add(records, vectors=)`` in
    ``batch``-row calls (write rate, the writer's peak RSS), then, each in a
    fresh process: the warm load in float16, and in float32 up to
    ``float32_max`` rows (seconds, peak RSS per phase: load, queries, draw);
    similar / distant latency (median of 5 stored-vector queries, k = 10;
    float16 re-ranks exactly); and the default's time for ``k`` picks through
    :func:`persona_index.sampling.draw`. ``on_phase(section)`` is called after
    every phase with the figures so far (a stopped run keeps them)."""
    import sys

    out = []
    res = {"rows": out, "k": k}
    for n in ns:
        tmp = Path(tempfile.mkdtemp(dir=os.environ.get("PERSONA_INDEX_BENCH_TMP")))
        try:
            row = {"n": n, "warm": {}, **_phase_child("write", tmp / "s.lance", n, batch)}
            out.append(row)
            if "error" in row:
                print(f"  scale7 n={n}: write failed: {row['error']}", file=sys.stderr, flush=True)
                continue
            row["store_gb"] = sum(f.stat().st_size for f in (tmp / "s.lance").rglob("*")
                                  if f.is_file()) / 2**30
            if on_phase:
                on_phase(res)
            for dtype in ("float16", "float32"):
                if dtype == "float32" and n > float32_max:
                    continue
                row["warm"][dtype] = {"dtype": dtype, **_phase_child("warm", tmp / "s.lance",
                                                                      dtype, k)}
                print(f"  scale7 n={n} {dtype}: {row['warm'][dtype]}", file=sys.stderr, flush=True)
                w = row["warm"]
                c = _phase_child("cold", tmp / "s.lance", dtype, k)
                c["same_batch_as_warm"] = c.get("ids_sha") == w[dtype].get("draw_ids_sha")
                row.setdefault("cold", {})[dtype] = c
                print(f"  scale7 n={n} {dtype} cold draw: {c}", file=sys.stderr, flush=True)
                if "float32" in w and "error" not in w["float32"] and "error" not in w["float16"]:
                    row["fp16_over_fp32"] = {q: w["float16"][q + "_ms"] / w["float32"][q + "_ms"]
                                             for q in ("similar", "distant")}
                if on_phase:
                    on_phase(_per_row_ratios(res))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _per_row_ratios(res)
    if on_phase:
        on_phase(res)
    return res


# -- markdown for docs/scale.md (benchmarks/readme.py's render() calls these) ----

def default_markdown(d: dict) -> list[str]:
    """The Pareto grid: one row per (pool, N, k, rule)."""
    L = ["| pool | N | k | rule | Vendi z | mean-nearest z | radius / uniform | s | x farthest-point "
         "| all four met |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in d["cells"]:
        for lab, e in c["rules"].items():
            m = e["met"]
            def mark(ok, text):  # a miss in bold
                return text if ok else f"**{text}**"

            vz = mark(m["vendi"], f"{e['vendi_z']:+.1f}")
            mz = mark(m["mean_nearest"], f"{e['mean_nearest_z']:+.1f}")
            rr = mark(m["radius"], f"{e['radius_ratio']:.3f}")
            tr = mark(m["time"], f"{e['ratio_to_farthest']:.2f}")
            L.append(f"| {c['pool']} | {c['n']:,} | {c['k']:,} | {lab} | {vz} | {mz} | {rr} | "
                     f"{e['seconds']:.2f} | {tr} | "
                     f"{'yes' if e['all_met'] else 'no'} |")
    cells = d["cells"]
    L += ["", "Cells where every goal is met, per rule: " + "; ".join(
        f"{lab} {sum(c['rules'][lab]['all_met'] for c in cells)}/{len(cells)}"
        for lab in d["rules"]) + "."]
    return L


RAY_RUNS = ("ray, gather (default)", "ray, coreset")


def ray_default_markdown(r: dict) -> list[str]:
    L = [f"{r['n']:,} clustered personas, {r['partitions']} partitions, {r['workers']} Ray CPUs "
         f"(coreset rounds: {r['oversample']} k picks per partition); z against "
         f"{r['uniform_draws']} uniform draws.", "",
         "| k | run | Vendi z | mean-nearest z | radius / uniform | s |", "|---|---|---|---|---|---|"]
    for k, row in r["ks"].items():
        for lab in ("single", "single, seed 1", *RAY_RUNS):
            e = row[lab]
            L.append(f"| {int(k):,} | {lab} | {e['vendi_z']:+.1f} | {e['mean_nearest_z']:+.1f} | "
                     f"{e['radius_ratio']:.3f} | {e['seconds']:.1f} |")
    L += ["", "| k | run | Vendi z, ray - single | mean-nearest z, ray - single | radius, ray / single - 1 "
          "| within 1.0, 1.0, 2% | the single machine's batch |", "|---|---|---|---|---|---|---|"]
    for k, row in r["ks"].items():
        for lab in RAY_RUNS:
            c = row["vs_single"][lab]
            same = ("yes, row for row" if row["gather_identical_to_single"] else "no") \
                if lab.startswith("ray, gather") else "no (another sampler)"
            L.append(f"| {int(k):,} | {lab} | {c['vendi_z_diff']:+.1f} | {c['mean_nearest_z_diff']:+.1f} | "
                     f"{100 * c['radius_rel']:+.1f}% | {'yes' if c['met'] else 'no'} | {same} |")
    L += ["", "| k | gather: rows read, driver s | coreset: one partition's round, rows, s | "
          "coreset: driver round, union rows, s |", "|---|---|---|---|"]
    for k, row in r["ks"].items():
        L.append(f"| {int(k):,} | {row['gather_rows']:,}, {row['gather_driver_seconds']:.1f} | "
                 f"{row['one_partition_rows']:,}, {row['one_partition_seconds']:.1f} | "
                 f"{row['driver_union_rows']:,}, {row['driver_round_seconds']:.1f} |")
    return L


def scale7_markdown(s: dict) -> list[str]:
    rows = s["rows"]
    L = ["| | " + " | ".join(f"{r['n']:,} personas" for r in rows) + " |",
         "|---|" + "---|" * len(rows)]

    def line(label, fn):
        cells = []
        for r in rows:
            try:
                cells.append(fn(r))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        L.append(f"| {label} | " + " | ".join(cells) + " |")

    w16 = lambda r: r["warm"]["float16"]  # noqa: E731
    w32 = lambda r: r["warm"]["float32"]  # noqa: E731
    gib = lambda mb: f"{mb / 1024:.2f} GiB"  # noqa: E731
    line(f"write, add(records, vectors=) in {rows[0]['add_batch']:,}-row calls",
         lambda r: f"{r['rows_per_s']:,.0f} rows/s ({r['write_seconds']:.0f} s; {r['store_gb']:.1f} GB)")
    line("peak RSS of the writer", lambda r: gib(r["write_peak_rss_mb"]))
    line("warm load, float16: s (matrix MB)", lambda r: f"{w16(r)['load_seconds']:.1f} ({w16(r)['matrix_mb']:,.0f})")
    line("warm load, float32: s (matrix MB)", lambda r: f"{w32(r)['load_seconds']:.1f} ({w32(r)['matrix_mb']:,.0f})")
    for lab, key in (("load", "load_peak_rss_mb"), ("queries", "query_peak_rss_mb"),
                     ("draw", "draw_peak_rss_mb")):
        line(f"peak RSS, float16, {lab}", lambda r, key=key: gib(w16(r)[key]))
        line(f"peak RSS, float32, {lab}", lambda r, key=key: gib(w32(r)[key]))
    base = s.get("baseline_n")
    for q in ("similar", "distant"):
        line(f"{q}, k = 10, float16 + exact re-rank: ms (ns per row)",
             lambda r, q=q: f"{w16(r)[q + '_ms']:.0f} ({w16(r)[q + '_ns_per_row']:.1f})")
        line(f"{q}, float32: ms (ns per row)",
             lambda r, q=q: f"{w32(r)[q + '_ms']:.0f} ({w32(r)[q + '_ns_per_row']:.1f})")
        line(f"{q}: float16 / float32, same size", lambda r, q=q: f"{r['fp16_over_fp32'][q]:.2f}x")
        if base:
            line(f"{q}: float16 per row / float32 per row at {base:,} (goal <= 2x)",
                 lambda r, q=q: f"{r['fp16_per_row_over_fp32_at_baseline'][q]:.2f}x")
    line("first query, float16 (imports torch): ms", lambda r: f"{w16(r)['first_query_ms']:,.0f}")
    line(f"the default, draw(k = {s['k']:,}), float16 matrix: s",
         lambda r: f"{w16(r)['draw_seconds']:.1f}")
    line(f"the default, draw(k = {s['k']:,}), float32 matrix: s",
         lambda r: f"{w32(r)['draw_seconds']:.1f}")
    c16 = lambda r: r["cold"]["float16"]  # noqa: E731
    line(f"the default, draw(k = {s['k']:,}) in a fresh process, no warm matrix (float16): s "
         "(peak RSS)", lambda r: f"{c16(r)['seconds']:.1f} ({gib(c16(r)['peak_rss_mb'])})")
    line("... its batch is the warm draw's",
         lambda r: "yes" if c16(r)["same_batch_as_warm"] and not c16(r)["matrix_loaded"] else "no")
    return L


#: the 10^9 plan's stated assumptions (everything else in it is measured)
PLAN_ASSUMPTIONS = {
    "n": 10**9, "d": 384, "k": 1000,
    "workers": 100, "cores_per_worker": 16,
    "fan_in": 8,                      # partitions' unions merged 8 at a time per driver round
    "pq_bytes": 48,                   # PQ: 48 sub-vectors of 8 bits each
    "read_gb_per_s_per_worker": 1.0,  # object storage to a worker
    "usd_per_core_hour": 0.05,        # a cloud vCPU-hour, order of magnitude
    "pick_record_bytes": 16,          # a pick's row id and mass (int64 each) besides its vector
    "read_latency_s": 0.05,           # one ranged read of a row from object storage
    "reads_in_flight_per_worker": 64,  # concurrent ranged reads per worker
    "row_id_bytes": 8,                # a gathered row's id (int64) besides its vector
}


def plan_markdown(res: dict) -> list[str]:
    """The 10^9 plan: each figure computed from a measured figure (the
    ray-default section: the gather driver round; one partition's coreset round
    and the coreset driver round) and :data:`PLAN_ASSUMPTIONS`."""
    import math

    a = PLAN_ASSUMPTIONS
    r = res["ray_default"]
    row = r["ks"][str(a["k"])]
    n, d, k = a["n"], a["d"], a["k"]
    cores = a["workers"] * a["cores_per_worker"]
    per = {"float32": 4 * d, "float16": 2 * d, "int8 (+ a float32 scale)": d + 4,
           f"PQ, {a['pq_bytes']} sub-vectors x 8 bits": a["pq_bytes"]}
    L = ["| vector format | bytes per vector | 10^9 vectors |", "|---|---|---|"]
    L += [f"| {f} | {b:,} | {n * b / 2**40:.2f} TiB |" if n * b >= 2**40 else
          f"| {f} | {b:,} | {n * b / 2**30:,.0f} GiB |" for f, b in per.items()]
    # the default (gather): it reads the same rows whatever N
    rows, t_g = row["gather_rows"], row["gather_driver_seconds"]
    waves_g = math.ceil(rows / (a["workers"] * a["reads_in_flight_per_worker"]))
    read_g = waves_g * a["read_latency_s"]
    wall_g = read_g + t_g
    L += ["", "**The default (gather rounds).**", "",
          "| step | figure | from |", "|---|---|---|",
          f"| rows read | {rows:,} of 10^9 | the seeded candidate and reference rows at k = {k:,} "
          f"(`herding_rows`: the candidate subsample and 4,096 reference rows, whatever N), counted at 10^6 |",
          f"| bytes moved to the driver | {rows * (4 * d + a['row_id_bytes']) / 2**20:,.1f} MiB | "
          f"{rows:,} x ({4 * d:,} B float32 vector + {a['row_id_bytes']} B id) |",
          f"| reading them | {waves_g} waves x {a['read_latency_s']:g} s = {read_g:.2f} s | assumed "
          f"{a['reads_in_flight_per_worker']} ranged reads in flight per worker, "
          f"{a['read_latency_s']:g} s each, {a['workers']} workers |",
          f"| driver round | {t_g:.1f} s | measured: the kernel on the gathered rows, one process "
          f"on this 2-core machine |",
          f"| wall time | {wall_g:.1f} s | reads + driver round; scheduling not modelled |",
          f"| cost | ${wall_g / 3600 * cores * a['usd_per_core_hour']:,.3f} | {cores:,} cores x the "
          f"wall time x assumed ${a['usd_per_core_hour']}/core-hour |"]
    # the coreset rounds: every row read once, picks merged in a tree
    part_rows, t_part = row["one_partition_rows"], row["one_partition_seconds"]
    union, t_drv = row["driver_union_rows"], row["driver_round_seconds"]
    m = r["oversample"]
    P = math.ceil(n / part_rows)
    waves = math.ceil(P / cores)
    levels = math.ceil(math.log(P) / math.log(a["fan_in"]))
    pick_bytes = 4 * d + a["pick_record_bytes"]
    level1 = P * m * k * pick_bytes
    moved = sum(level1 / a["fan_in"] ** i for i in range(levels))
    read_s = n * 4 * d / (a["workers"] * a["read_gb_per_s_per_worker"] * 1e9)
    wall = read_s + waves * t_part + levels * t_drv
    cost = wall / 3600 * cores * a["usd_per_core_hour"]
    L += ["", "**The coreset rounds (`rounds=\"coreset\"`).**", "",
          "| step | figure | from |", "|---|---|---|",
          f"| partitions | {P:,} of {part_rows:,} rows | the measured partition size; "
          f"{P / a['workers']:,.0f} per worker |",
          f"| one partition's round ({m} k = {m * k:,} picks with masses) | {t_part:.1f} s in one "
          f"process | measured (ray-default section: one process on this 2-core machine; "
          f"counted here as one core) |",
          f"| round 1 wall time | {waves} waves x {t_part:.1f} s = {waves * t_part:,.0f} s | "
          f"{P:,} tasks on {cores:,} cores (assumed: {a['workers']} workers x "
          f"{a['cores_per_worker']} cores) |",
          f"| reading the vectors once (float32) | {read_s:,.0f} s | assumed "
          f"{a['read_gb_per_s_per_worker']:g} GB/s per worker |",
          f"| driver rounds | {levels} (a tree of fan-in {a['fan_in']}), each {t_drv:.1f} s | "
          f"measured: weighted herding of a {union:,}-row union (= {a['fan_in']} x {m} k) |",
          f"| bytes moved to the drivers | {moved / 2**30:,.1f} GiB | {m} k picks per partition "
          f"x ({4 * d:,} B vector + {a['pick_record_bytes']} B id and mass), shrinking "
          f"{a['fan_in']}x per level |",
          f"| wall time | {wall / 60:,.1f} min | read + round 1 + driver rounds; scheduling "
          f"not modelled |",
          f"| cost | ${cost:,.2f} | {cores:,} cores x the wall time x assumed "
          f"${a['usd_per_core_hour']}/core-hour |"]
    return L


def shared_sets_markdown(res: dict, strategies=("herding", "facility")) -> list[str]:
    """The shared sets' persona-space z (sampler section) for the strategies
    the default grid weighs against each other."""
    L = ["| set | k | strategy | Vendi z | mean-nearest z | radius / uniform |", "|---|---|---|---|---|---|"]
    for name, ps in res["sampler"]["persona_space"].items():
        for k in ps["ks"]:
            for s in strategies:
                e = ps["strategies"][s][str(k)]["metrics"]
                L.append(f"| {name} (N = {ps['pool']:,}) | {k} | {s} | {e['vendi']['z']:+.1f} | "
                         f"{e['mean_nearest_distance']['z']:+.1f} | {e['kcenter_radius']['ratio']:.3f} |")
    return L
