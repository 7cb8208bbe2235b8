"""``ingest --vectors-field``: precomputed vectors from a parquet file through
the whole ingest (validation pass, write pass), with and without the
near-duplicate check (issue #25 item 3).

Each run is a fresh process (its own peak RSS) reading a parquet file of
:func:`benchmarks.scale.clustered_chunks` vectors (float32 lists of 384)
written first. The check compares every row of one ingest exactly with the
rows of that ingest before it, so its cost grows with the square of the rows:
it runs at the smaller size only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time
from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.ingest import ingest_file

def kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

import lance, pyarrow.parquet  # noqa: F401  (imports outside the timing)
src, db, near = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
t = time.perf_counter()
s = ingest_file(PersonaIndex(db, HashEmbedder(384)), src, vectors_field="vector",
                near_dedup=near, batch_size=8192)
secs = time.perf_counter() - t
print(json.dumps({"rows": s.read, "added": s.added, "near_duplicates": s.near_duplicates,
                  "seconds": secs, "rows_per_s": s.read / secs, "near_dedup": near,
                  "peak_rss_mb": kb("VmHWM") / 1024}))
"""


def write_parquet(path: Path, n: int, step: int = 100_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .scale import clustered_chunks

    regions = ["Africa", "Asia", "Europe", "Americas"]
    w = None
    at = 0
    for X in clustered_chunks(n, seed=11, step=step):
        m = len(X)
        t = pa.table({"text": [f"synthetic persona {i}" for i in range(at, at + m)],
                      "region": [regions[i % 4] for i in range(at, at + m)],
                      "vector": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)),
                                                                  X.shape[1])})
        w = w or pq.ParquetWriter(path, t.schema)
        w.write_table(t)
        at += m
    w.close()


def run_scale7_ingest(ns=(100_000, 1_000_000), near_max: int = 100_000) -> dict:
    """``ingest_file(..., vectors_field="vector")`` of ``n`` parquet rows into a
    new store, near-dedup off at every size and on up to ``near_max`` rows."""
    root = Path(__file__).resolve().parents[1]
    rows = []
    for n in ns:
        tmp = Path(tempfile.mkdtemp(dir=os.environ.get("PERSONA_INDEX_BENCH_TMP")))
        try:
            src = tmp / "v.parquet"
            write_parquet(src, n)
            for near in ((False, True) if n <= near_max else (False,)):
                r = subprocess.run([sys.executable, "-c", CHILD, str(src), str(tmp / f"s{near}.lance"),
                                    "1" if near else "0"], cwd=root, stdout=subprocess.PIPE,
                                   text=True)
                row = json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else \
                    {"error": f"exit {r.returncode}"}
                rows.append({"n": n, "near_dedup": near, **row,
                             "parquet_gb": src.stat().st_size / 2**30})
                print(f"  scale7-ingest: {rows[-1]}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"rows": rows}


def scale7_ingest_markdown(s: dict) -> list[str]:
    L = ["| rows | near-duplicate check | rows/s | s | peak RSS | parquet file |",
         "|---|---|---|---|---|---|"]
    for r in s["rows"]:
        if "error" in r:
            L.append(f"| {r['n']:,} | {'on' if r['near_dedup'] else 'off'} | {r['error']} | | | |")
            continue
        L.append(f"| {r['n']:,} | {'on' if r['near_dedup'] else 'off'} | {r['rows_per_s']:,.0f} | "
                 f"{r['seconds']:,.0f} | {r['peak_rss_mb'] / 1024:.2f} GiB | "
                 f"{r['parquet_gb']:.2f} GB |")
    return L
