"""Shared benchmark plumbing: environment record, timing with peak RSS, data."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("PERSONA_INDEX_BENCH_CACHE", Path.home() / ".cache" / "persona-index-bench"))


def environment() -> dict:
    vers = {}
    for pkg in ("persona-index", "numpy", "scipy", "lancedb", "pylance", "pyarrow", "torch",
                "sentence-transformers", "httpx"):
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            vers[pkg] = None
    try:
        from threadpoolctl import threadpool_info

        blas = [{k: i.get(k) for k in ("internal_api", "num_threads", "architecture")}
                for i in threadpool_info()]
    except ImportError:
        blas = None
    return {"commit": _git_commit(), "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "versions": vers, "blas": blas,
            "mem_total_gib": _mem_total_gib()}


def _git_commit() -> str | None:
    """HEAD of the checkout, with "+dirty" when tracked files differ from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _mem_total_gib():
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def measure():
    """Wall time and extra memory (peak RSS during the block minus RSS before),
    RSS sampled every 2 ms by a thread."""
    res = {}
    before = rss_bytes()
    peak = [before]
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        yield res
    finally:
        res["seconds"] = time.perf_counter() - t0
        stop.set()
        t.join()
        peak[0] = max(peak[0], rss_bytes())
        res["extra_mb"] = (peak[0] - before) / 2**20


def clustered_vectors(n: int, d: int = 384, clusters: int = 1000, seed: int = 0,
                      spread: float = 0.8) -> np.ndarray:
    """Synthetic clustered unit vectors, generated in float32, in chunks."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    sizes = rng.zipf(1.6, clusters).astype(np.float64)
    p = sizes / sizes.sum()
    X = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for s in range(0, n, step):
        e = min(n, s + step)
        lab = rng.choice(clusters, size=e - s, p=p)
        block = centers[lab] + np.float32(spread / np.sqrt(d)) * rng.standard_normal((e - s, d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[s:e] = block
    return X


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode())
    return h.hexdigest()[:16]


def cached_embeddings(texts: list[str], tag: str) -> np.ndarray:
    """Embed with the default model, cached on disk by content (benchmarks only)."""
    from persona_index.embed import get_embedder

    e = get_embedder()
    key = _key(e.name, len(texts), hashlib.sha256("\x1f".join(texts).encode()).hexdigest())
    path = CACHE / f"{tag}-{key}.npy"
    if path.exists():
        return np.load(path)
    X = e.encode(texts, progress=False)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X


def load_pairs(path: str) -> tuple[list[str], list[str]]:
    personas, outputs = [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                personas.append(r["persona"])
                outputs.append(r.get("output", ""))
    return personas, outputs


def stable_half(text: str) -> int:
    """0 = tuning half, 1 = reporting half, by a stable hash of the persona text."""
    return hashlib.sha256(text.encode("utf-8")).digest()[0] & 1


def median_ms(fn, reps: int = 20) -> float:
    """Median wall time of ``fn`` in ms over ``reps`` warm calls."""
    import statistics

    fn()  # warm
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def latency_vs_numpy(idx, q: np.ndarray, where: str, k: int = 10) -> dict:
    """similar/distant through the store against a bare numpy product with the
    same filter applied as a mask, median of 20 warm calls each."""
    X = idx.snapshot().vectors
    mask = idx.snapshot().positions(where)

    def numpy_top(sign, use_mask):
        sims = X @ q
        if use_mask:
            sims = sims[mask]
        key = -sign * sims
        top = np.argpartition(key, k - 1)[:k]
        return top[np.argsort(key[top])]

    out = {}
    for name, sign in (("similar", 1), ("distant", -1)):
        for use in (False, True):
            w = where if use else None
            ours = median_ms(lambda: getattr(idx, name)(vector=q, k=k, where=w))
            base = median_ms(lambda: numpy_top(sign, use))
            out[f"{name}{'_where' if use else ''}"] = {"ours_ms": ours, "numpy_ms": base,
                                                       "ratio": ours / base}
    return out
