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
    ("herding beta=0.5 (default)", "herding", {}),
    ("herding beta=0.6", "herding", {"beta": 0.6}),
    ("herding beta=0.75", "herding", {"beta": 0.75}),
    ("herding beta=1.0", "herding", {"beta": 1.0}),
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


def run_default_grid(ns=(10_000, 100_000, 1_000_000), ks=(100, 1000), generated: int = 10_000) -> dict:
    """Every rule at every (N, k) on the clustered pools (``clustered_vectors(n,
    seed=n)``, as the speed section), and on an embedded generated pool of
    ``generated`` personas (the default model; vectors cached)."""
    cells = []
    for n in ns:
        X = clustered_vectors(n, seed=n)
        for k in ks:
            cells.append({"pool": "clustered", **default_cell(X, k)})
        del X
        gc.collect()
    if generated:
        from persona_index.generate import generate

        from .common import cached_embeddings

        recs = list(generate(generated, seed=0))
        Xg = cached_embeddings([r["persona"] for r in recs], "generated")
        for k in ks:
            cells.append({"pool": "generated (embedded)", **default_cell(Xg, k)})
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


WARM_CHILD = """
import json, os, statistics, sys, time
import numpy as np
from persona_index import PersonaIndex
from persona_index.samplers.herding import herding_select

def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

path, dtype, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.environ["PERSONA_INDEX_WARM_DTYPE"] = dtype
idx = PersonaIndex(path)
snap = idx.snapshot()
n = snap.count()
base = kb("VmRSS")
t = time.perf_counter()
X = snap.vectors
load = time.perf_counter() - t
out = {"n": n, "dtype": dtype, "load_seconds": load, "matrix_mb": X.nbytes / 2**20,
       "rss_after_load_mb": kb("VmRSS") / 1024, "baseline_mb": base / 1024}
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
t = time.perf_counter()
herding_select(X, k, rng=0)
out["herding_seconds"] = time.perf_counter() - t
out["herding_k"] = k
out["peak_rss_mb"] = kb("VmHWM") / 1024
print(json.dumps(out))
"""


def _warm_child(path, dtype: str, k: int) -> dict:
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", WARM_CHILD, str(path), dtype, str(k)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"dtype": dtype, "error": r.stderr.strip().splitlines()[-1:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_scale7(ns=(1_000_000, 10_000_000), k: int = 1000, batch: int = 100_000,
               float32_max: int = 2_000_000) -> dict:
    """Precomputed vectors through ``PersonaIndex.add(records, vectors=)`` in
    ``batch``-row calls (write rate), then, each in a fresh process: the warm
    load (seconds, peak RSS) in float16, and in float32 up to ``float32_max``
    rows; similar / distant latency (median of 5 stored-vector queries, k = 10;
    float16 re-ranks exactly); and the default's time for ``k`` picks."""
    import time

    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder

    out = []
    regions = np.array(["Africa", "Asia", "Europe", "Americas"], dtype=object)
    for n in ns:
        tmp = Path(tempfile.mkdtemp(dir=os.environ.get("PERSONA_INDEX_BENCH_TMP")))
        try:
            idx = PersonaIndex(tmp / "s.lance", HashEmbedder(384))
            t0 = time.perf_counter()
            at = 0
            for X in clustered_chunks(n, seed=7, step=batch):
                m = len(X)
                recs = [{"text": f"synthetic persona {i}", "region": regions[i % 4]}
                        for i in range(at, at + m)]
                idx.add(recs, vectors=X, attributes=["region"])
                at += m
                if at % 1_000_000 == 0:
                    print(f"  scale7 n={n}: {at} written ({time.perf_counter() - t0:.0f}s)",
                          flush=True)
            secs = time.perf_counter() - t0
            disk = sum(f.stat().st_size for f in (tmp / "s.lance").rglob("*") if f.is_file())
            row = {"n": n, "write_seconds": secs, "rows_per_s": n / secs,
                   "store_gb": disk / 2**30, "add_batch": batch, "warm": {}}
            del idx
            gc.collect()
            for dtype in ("float16", "float32"):
                if dtype == "float32" and n > float32_max:
                    continue
                row["warm"][dtype] = _warm_child(tmp / "s.lance", dtype, k)
                print(f"  scale7 n={n} {dtype}: {row['warm'][dtype]}", flush=True)
            w = row["warm"]
            if "float32" in w and "error" not in w["float32"] and "error" not in w["float16"]:
                row["fp16_over_fp32"] = {q: w["float16"][q + "_ms"] / w["float32"][q + "_ms"]
                                         for q in ("similar", "distant")}
            out.append(row)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": out, "k": k}
