"""Store figures: ingest against bare encoding, query latency against numpy,
LanceDB's own flat search, the CLI end to end, and an optional ANN index."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import latency_vs_numpy, measure, median_ms


def ingest_vs_encode(path: str) -> dict:
    """Ingest the file into a fresh store; bare ``SentenceTransformer.encode`` of
    the same texts in the same process. Import and model load timed apart."""
    import json

    t = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import lancedb  # noqa: F401
    import_s = time.perf_counter() - t
    from persona_index import PersonaIndex
    from persona_index.embed import get_embedder
    from persona_index.ingest import ingest_file

    e = get_embedder()
    t = time.perf_counter()
    e.model
    load_s = time.perf_counter() - t
    texts = [json.loads(l)["persona"].strip() for l in open(path, encoding="utf-8") if l.strip()]
    tmp = Path(tempfile.mkdtemp())
    try:
        e.model.encode(texts[:64])  # warm both paths equally
        t = time.perf_counter()
        e.model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True,
                       show_progress_bar=False)
        bare_s = time.perf_counter() - t
        idx = PersonaIndex(tmp / "s.lance", e)
        rep = tmp / "report.jsonl"
        s = ingest_file(idx, path, licence="CC-BY-NC-SA-4.0", report=str(rep))
        again = ingest_file(idx, path)
        examples = [json.loads(l) for l in open(rep)][:2]
        for ex in examples:
            got = idx.get([ex["matched_id"]])
            ex["matched_text"] = got[0]["text"] if got else None
            ex["text"] = texts[ex["line"] - 1] if ex.get("line") else None
        return {"file": path, "rows": len(texts), "added": s.added,
                "exact_duplicates": s.exact_duplicates, "near_duplicates": s.near_duplicates,
                "rejected": s.rejected, "examples": examples,
                "import_seconds": import_s, "model_load_seconds": load_s,
                "ingest_seconds": s.seconds, "ingest_embed_seconds": s.embed_seconds,
                "bare_encode_seconds": bare_s,
                "ingest_personas_per_s": len(texts) / s.seconds,
                "bare_personas_per_s": len(texts) / bare_s,
                "overhead_vs_bare": s.seconds / bare_s - 1.0,
                "second_ingest_added": again.added, "second_ingest_seconds": again.seconds}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def query_latency(n: int, vectors: np.ndarray, records: list[dict], ann: bool) -> dict:
    import pyarrow as pa

    from persona_index import PersonaIndex
    from persona_index.embed import get_embedder
    from persona_index.generate import ATTRIBUTES
    from persona_index.ingest import persona_id

    tmp = Path(tempfile.mkdtemp())
    try:
        idx = PersonaIndex(tmp / "q.lance", get_embedder())
        dim = vectors.shape[1]
        for s in range(0, n, 50_000):
            rec = records[s:s + 50_000]
            cols = {"id": [persona_id(r["persona"]) for r in rec],
                    "text": [r["persona"] for r in rec],
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(vectors[s:s + 50_000].reshape(-1), pa.float32()), dim),
                    "source": ["generated"] * len(rec), "source_line": list(range(s + 1, s + len(rec) + 1)),
                    "licence": ["generated"] * len(rec)}
            for a in ATTRIBUTES:
                cols[a] = pa.array([r[a] for r in rec], pa.string())
            idx.write(pa.table(cols), attributes=list(ATTRIBUTES))
        where = "region = 'Africa'"
        rng = np.random.default_rng(0)
        q = vectors[rng.integers(n)]
        with measure() as warm:
            m = idx.snapshot()
            m.vectors  # the warm load
        X = m.vectors
        res = {"n": n, "warm_load_seconds": warm["seconds"], "warm_index_mb": m.nbytes / 2**20,
               "where": where, "filtered_rows": int(len(idx.snapshot().positions(where)))}
        res.update(latency_vs_numpy(idx, q, where))
        tbl = idx.table
        res["lancedb_flat_ms"] = median_ms(
            lambda: tbl.search(q, vector_column_name="vector").metric("cosine").limit(10).to_arrow(), reps=10)
        res["lancedb_flat_where_ms"] = median_ms(
            lambda: tbl.search(q, vector_column_name="vector").metric("cosine").where(where, prefilter=True)
            .limit(10).to_arrow(), reps=10)
        res["numpy_vs_lancedb_flat"] = res["lancedb_flat_ms"] / res["similar"]["numpy_ms"]
        # one CLI similar call end to end (process start, imports, model load, query)
        exe = str(Path(sys.executable).with_name("persona-index"))
        t = time.perf_counter()
        subprocess.run([exe, "--db", str(tmp / "q.lance"), "similar", "a beekeeper in Chile", "-k",
                        "10", "--json"], check=True, capture_output=True)
        res["cli_similar_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        res["cli_help_seconds"] = time.perf_counter() - t
        if ann:
            t = time.perf_counter()
            idx.create_ann_index("IVF_HNSW_SQ")
            res["ann_build_seconds"] = time.perf_counter() - t
            qs = vectors[rng.choice(n, 100, replace=False)]
            hits, ts = 0, []
            for v in qs:
                exact = set(np.argpartition(-(X @ v), 10)[:10].tolist())
                exact_ids = set(m.ids.take(list(exact)).to_pylist())
                t = time.perf_counter()
                got = tbl.search(v, vector_column_name="vector").metric("cosine").limit(10).to_list()
                ts.append(time.perf_counter() - t)
                hits += len(exact_ids & {r["id"] for r in got})
            res["ann"] = {"index": "IVF_HNSW_SQ", "recall_at_10": hits / 1000,
                          "median_ms": statistics.median(ts) * 1000}
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
