"""Scale-out checks on a local two-worker Ray cluster."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .common import clustered_vectors, measure


def run_ray(n_ingest: int = 20_000, n_fp: int = 1_000_000, k: int = 1000, partitions: int = 8) -> dict:
    import ray

    from persona_index import PersonaIndex
    from persona_index.distributed import distributed_farthest, ingest_file_ray
    from persona_index.generate import ATTRIBUTES, generate
    from persona_index.ingest import ingest_file
    from persona_index.metrics import kcenter_radius
    from persona_index.samplers.farthest import farthest_point

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    out = {"workers": 2}
    tmp = Path(tempfile.mkdtemp())
    try:
        f = tmp / "gen.jsonl"
        with open(f, "w") as fh:
            for r in generate(n_ingest, seed=11):
                fh.write(json.dumps(r) + "\n")
        a, b = PersonaIndex(tmp / "a.lance"), PersonaIndex(tmp / "b.lance")
        with measure() as ma:
            sa = ingest_file(a, f, attrs=list(ATTRIBUTES))
        with measure() as mb:
            sb = ingest_file_ray(b, str(f), num_workers=2, attrs=list(ATTRIBUTES))
        ta = a.snapshot().dataset.to_table().sort_by("id")
        tb = b.snapshot().dataset.to_table().sort_by("id")
        same_cols = all(ta.column(c).to_pylist() == tb.column(c).to_pylist()
                        for c in ["id", "text", "source_line", *ATTRIBUTES])
        va = np.stack(ta.column("vector").to_numpy(zero_copy_only=False))
        vb = np.stack(tb.column("vector").to_numpy(zero_copy_only=False))
        out["ingest"] = {"rows": n_ingest, "single_seconds": ma["seconds"], "ray_seconds": mb["seconds"],
                         "added": [sa.added, sb.added],
                         "duplicates": [sa.exact_duplicates + sa.near_duplicates,
                                        sb.exact_duplicates + sb.near_duplicates],
                         "same_ids_attributes_lines": bool(same_cols and ta.num_rows == tb.num_rows),
                         "max_vector_diff": float(np.abs(va - vb).max())}
        print("  ray ingest:", out["ingest"], flush=True)
        X = clustered_vectors(n_fp, seed=3)
        with measure() as me:
            exact = farthest_point(X, k, start=0)
        with measure() as md:
            dist = distributed_farthest(X, k, partitions=partitions, seed=0)
        re_, rd = kcenter_radius(X[exact], X)[0], kcenter_radius(X[dist], X)[0]
        out["farthest"] = {"n": n_fp, "k": k, "partitions": partitions,
                           "exact_seconds": me["seconds"], "distributed_seconds": md["seconds"],
                           "radius_exact": re_, "radius_distributed": rd, "ratio": rd / re_}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        ray.shutdown()
    return out


def run_ray_default(n: int = 1_000_000, ks=(100, 1000), partitions: int = 8, oversample: int = 2,
                    workers: int = 2, uniform_draws: int = 20) -> dict:
    """The default on Ray against the single-machine default on the same
    clustered pool (``clustered_vectors(n, seed=n)``, as the default grid) and
    against the single-machine default with another seed (the spread between
    two single-machine runs): the gather rounds (the Ray default: the
    partitions send the rows the default reads, the driver herds them) and the
    coreset rounds (each partition herds ``oversample * k`` picks with masses,
    the driver herds their union). Also timed in this process: one
    partition's coreset round, the coreset driver round, and the gather
    driver round (the kernel on the gathered rows, what the 10^9 plan needs)."""
    import time

    import ray

    from persona_index.distributed import distributed_default, partition_picks
    from persona_index.metrics import vendi_score
    from persona_index.samplers.herding import gathered, herding_rows, herding_select

    X = clustered_vectors(n, seed=n)
    rng = np.random.default_rng(3)
    ev = np.sort(rng.choice(n, min(20_000, n), replace=False))
    E = X[ev]

    def cover(idx):
        d = 1.0 - (E @ X[idx].T).max(axis=1)
        return vendi_score(X[idx]), float(d.mean()), float(d.max())

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    out = {"n": n, "partitions": partitions, "oversample": oversample, "workers": workers,
           "uniform_draws": uniform_draws, "ks": {}}
    runs = (("single", lambda k: herding_select(X, k, rng=0)),
            ("single, seed 1", lambda k: herding_select(X, k, rng=1)),
            ("ray, gather (default)", lambda k: distributed_default(X, k, partitions=partitions, seed=0,
                                                                    workers=workers)),
            ("ray, coreset", lambda k: distributed_default(X, k, partitions=partitions, seed=0,
                                                           rounds="coreset", oversample=oversample,
                                                           workers=workers)))
    try:
        for k in ks:
            U = np.array([cover(np.random.default_rng(100 + s).choice(n, k, replace=False))
                          for s in range(uniform_draws)])
            mu, sd = U.mean(axis=0), U.std(axis=0)
            row, picks = {}, {}
            for label, fn in runs:
                t = time.perf_counter()
                picks[label] = idx = fn(k)
                secs = time.perf_counter() - t
                v, mn, r = cover(idx)
                row[label] = {"seconds": secs, "vendi_z": float((v - mu[0]) / sd[0]),
                              "mean_nearest_z": float(-(mn - mu[1]) / sd[1]),
                              "radius_ratio": float(r / mu[2])}
                print(f"  ray-default n={n} k={k} {label}: {row[label]}", flush=True)
            row["gather_identical_to_single"] = bool(np.array_equal(picks["ray, gather (default)"],
                                                                    picks["single"]))
            cand, ref = herding_rows(n, k, rng=0)
            row["gather_rows"] = int(len(np.union1d(cand, ref)))
            t = time.perf_counter()
            gathered(X, k, partitions=partitions, rng=0)
            row["gather_driver_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            partition_picks(X[: n // partitions], oversample * k, seed=0)
            row["one_partition_seconds"] = time.perf_counter() - t
            row["one_partition_rows"] = n // partitions
            u = partitions * oversample * k  # the driver's union: timed on a stand-in of that size
            sub = np.sort(np.random.default_rng(9).choice(n, u, replace=False))
            t = time.perf_counter()
            herding_select(X[sub], k, rng=0, weights=np.ones(u), candidates=u)
            row["driver_round_seconds"] = time.perf_counter() - t
            row["driver_union_rows"] = u
            s = row["single"]
            for label in ("ray, gather (default)", "ray, coreset"):
                r_ = row[label]
                c = {"vendi_z_diff": r_["vendi_z"] - s["vendi_z"],
                     "mean_nearest_z_diff": r_["mean_nearest_z"] - s["mean_nearest_z"],
                     "radius_rel": r_["radius_ratio"] / s["radius_ratio"] - 1}
                c["met"] = bool(abs(c["vendi_z_diff"]) <= 1.0 and abs(c["mean_nearest_z_diff"]) <= 1.0
                                and abs(c["radius_rel"]) <= 0.02)
                row.setdefault("vs_single", {})[label] = c
            out["ks"][str(k)] = row
    finally:
        ray.shutdown()
    return out
