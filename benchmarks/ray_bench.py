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
