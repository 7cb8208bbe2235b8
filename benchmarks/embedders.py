"""Bulk embedding backends on the shared Persona Hub personas, in one run:
sentence-transformers (torch fp32, the default), the ONNX export in fp32, and
the ONNX export with int8 dynamic quantisation (onnxruntime.quantization).
Personas/s, cosine to the torch vectors, top-10 neighbour overlap against
the torch vectors, and whether the default sampler still beats uniform on
vectors from the backend (Vendi and mean-nearest z against 100 uniform draws,
measured on the torch vectors)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _top10(X, queries=300):
    S = X[:queries] @ X.T
    np.put_along_axis(S, np.arange(queries)[:, None], -np.inf, axis=1)
    return np.argpartition(-S, 10, axis=1)[:, :10]


def run_embedders(texts) -> dict:
    from persona_index import onnx_embed
    from persona_index.embed import get_embedder
    from persona_index.metrics import kcenter_radius, vendi_score
    from persona_index.samplers.base import sample

    st = get_embedder()
    st.encode(texts[:64])  # load and warm
    folder = onnx_embed.export(None, quiet=True)
    q8 = folder / "model.int8.onnx"
    if not q8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(folder / "model.onnx"), str(q8), weight_type=QuantType.QInt8)
    fp32 = onnx_embed.OnnxEmbedder(folder, "onnx-fp32", 384)
    int8 = onnx_embed.OnnxEmbedder(folder, "onnx-int8", 384, model_file="model.int8.onnx")
    rows, vecs = [], {}
    for name, e in (("torch fp32 (sentence-transformers)", st), ("onnx fp32", fp32),
                    ("onnx int8", int8)):
        e.encode(texts[:64])
        t = time.perf_counter()
        V = e.encode(texts)
        secs = time.perf_counter() - t
        vecs[name] = V
        rows.append({"backend": name, "personas_per_s": len(texts) / secs, "seconds": secs})
    ref = vecs["torch fp32 (sentence-transformers)"]
    top_ref = _top10(ref)
    rng = np.random.default_rng(5)
    U = [(vendi_score(ref[u]), kcenter_radius(ref[u], ref)[1])
         for u in (rng.choice(len(ref), 100, replace=False) for _ in range(100))]
    mu, sd = np.mean(U, axis=0), np.std(U, axis=0)
    base = rows[0]["personas_per_s"]
    for r in rows:
        V = vecs[r["backend"]]
        cos = (V * ref).sum(axis=1)
        top = _top10(V)
        r["speedup_vs_torch"] = r["personas_per_s"] / base
        r["cosine_min"], r["cosine_mean"] = float(cos.min()), float(cos.mean())
        r["top10_overlap"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top, top_ref)]))
        idx = sample(V, 100, seed=0)  # the default strategy on this backend's vectors
        v, mn = vendi_score(ref[idx]), kcenter_radius(ref[idx], ref)[1]
        r["default_k100_vendi_z"] = float((v - mu[0]) / sd[0])
        r["default_k100_mean_nearest_z"] = float(-(mn - mu[1]) / sd[1])
        print(f"  embedders {r['backend']}: {r['personas_per_s']:.0f}/s x{r['speedup_vs_torch']:.2f}, "
              f"cos min {r['cosine_min']:.4f}, top-10 {r['top10_overlap']:.3f}", flush=True)
    return {"personas": len(texts), "rows": rows}
