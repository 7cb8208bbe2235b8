"""The generated pool against real personas: near-duplicate share and Vendi.

``generate(10_000, seed=0)`` embedded with the default model: the share of
personas whose nearest other persona is above 0.9 (and 0.95) cosine, how many
texts are distinct, and the Vendi score of random subsets of the real Persona
Hub sample's size, next to the Vendi score of the real sample itself.
"""

from __future__ import annotations

import numpy as np

from .common import cached_embeddings, load_pairs


def run_pool(data: str | None, n: int = 10_000, subsets: int = 5) -> dict:
    from persona_index.generate import generate
    from persona_index.metrics import vendi_score

    texts = [r["persona"] for r in generate(n, seed=0)]
    X = cached_embeddings(texts, "generated")
    best = np.full(len(X), -1.0, dtype=np.float32)
    for s in range(0, len(X), 2048):
        sims = X[s:s + 2048] @ X.T
        sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -1.0  # not itself
        best[s:s + 2048] = sims.max(axis=1)
    out = {"n": n, "seed": 0, "distinct_texts": len(set(texts)),
           "share_nearest_above_0_9": float((best > 0.9).mean()),
           "share_nearest_above_0_95": float((best > 0.95).mean())}
    if data:
        real_texts, _ = load_pairs(data)
        R = cached_embeddings(real_texts, "tools")
        rng = np.random.default_rng(0)
        v = [vendi_score(X[rng.choice(len(X), len(R), replace=False)]) for _ in range(subsets)]
        out.update({"real_size": len(R), "real_vendi": vendi_score(R),
                    "generated_vendi_mean": float(np.mean(v)),
                    "generated_vendi_sd": float(np.std(v, ddof=1)), "subsets": subsets})
    return out
