"""Near-duplicate dedup on the shared sets, before and after the lexical
check: which personas the embedding stage alone would drop, and which of
those are in non-Latin scripts (the ones MiniLM cannot represent)."""

from __future__ import annotations

import tempfile

import numpy as np


class _Cached:
    """The default embedder, answering from the benchmark's embedding cache."""

    def __init__(self, texts, vectors):
        from persona_index.embed import get_embedder

        self.inner = get_embedder()
        self.name, self.table = self.inner.name, dict(zip(texts, vectors))

    @property
    def dim(self):
        return self.inner.dim

    def encode(self, texts, **kw):
        missing = [t for t in texts if t not in self.table]
        if missing:
            self.table.update(zip(missing, self.inner.encode(missing)))
        return np.stack([self.table[t] for t in texts])

    def count_over_window(self, texts):
        return 0


def non_latin(text: str) -> bool:
    """Holds a letter beyond the Latin blocks (Greek, Cyrillic, Thai, CJK, ...)."""
    return any(c.isalpha() and ord(c) > 0x24F for c in text)


def run_dedup(sets: dict) -> dict:
    """``sets``: name -> (texts, vectors of the stripped texts)."""
    import json

    from persona_index import PersonaIndex
    from persona_index import dedup as D
    from persona_index import ingest as I

    out = {}
    for name, (texts, vecs) in sets.items():
        emb = _Cached(texts, vecs)
        res = {"personas": len(texts), "lexical_min": D.LEXICAL_MIN}
        for label, lex in (("embedding_only", 0.0), ("with_lexical_check", D.LEXICAL_MIN)):
            saved = D.LEXICAL_MIN  # read by the near-dup check at call time
            D.LEXICAL_MIN = lex
            try:
                with tempfile.TemporaryDirectory() as d:
                    idx = PersonaIndex(f"{d}/p.lance", emb)
                    s = I.ingest_records(idx, [{"persona": t} for t in texts], report=f"{d}/r.jsonl")
                    rep = [json.loads(l) for l in open(f"{d}/r.jsonl", encoding="utf-8")]
            finally:
                D.LEXICAL_MIN = saved
            dropped = [r for r in rep if r["reason"] == "near-duplicate"]
            res[label] = {
                "added": s.added, "near_duplicates": s.near_duplicates,
                "embedder_collisions": s.embedder_collisions,
                "dropped": [{"line": r["line"], "text": texts[r["line"] - 1][:120],
                             "non_latin": non_latin(texts[r["line"] - 1]),
                             "similarity": r["similarity"]} for r in dropped]}
        out[name] = res
        print(f"  dedup[{name}]: {res['embedding_only']['near_duplicates']} -> "
              f"{res['with_lexical_check']['near_duplicates']} near duplicates", flush=True)
    return out
