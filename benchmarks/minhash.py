"""The MinHash stage of the ingest (``minhash=True``: word 1-grams, 128
permutations, Jaccard 0.9): what it drops that the embedding stage (MiniLM,
cosine >= 0.95) would have kept, and the time and memory it adds.

Each set is ingested twice into fresh stores, with the embedding stage only
and with MinHash before it, and the reports are compared row by row. The
vectors come from the benchmark's embedding cache, so the ingest timings
leave out the model's own time (which MinHash does not change, except that
the rows it drops are never embedded).
"""

from __future__ import annotations

import json
import tempfile
import time

import numpy as np


def _ingest(records, embedder, minhash, **kw):
    from persona_index import PersonaIndex
    from persona_index import ingest as I

    with tempfile.TemporaryDirectory() as d:
        idx = PersonaIndex(f"{d}/p.lance", embedder)
        t = time.perf_counter()
        s = I.ingest_records(idx, records, minhash=minhash, report=f"{d}/r.jsonl", **kw)
        seconds = time.perf_counter() - t
        rep = [json.loads(line) for line in open(f"{d}/r.jsonl", encoding="utf-8")]
    return s, rep, seconds


def compare(texts: list[str], vectors: np.ndarray, *, repeats: int = 3, records=None,
            attrs=None, examples: int = 5) -> dict:
    """Ingest ``texts`` (with their cached MiniLM ``vectors``) without and with
    MinHash, ``repeats`` times each, alternating; compare the dropped rows."""
    from persona_index.ingest import persona_id
    from persona_index.minhash import DEFAULT_THRESHOLD

    from .dedup import _Cached

    emb = _Cached(texts, vectors)
    records = records if records is not None else [{"persona": t} for t in texts]
    runs, stage = {False: [], True: []}, []
    out = {}
    for _ in range(repeats):
        for mh in (False, True):
            s, rep, seconds = _ingest(records, emb, mh, attrs=attrs)
            runs[mh].append(seconds)
            stage += [s.minhash_seconds] if mh else []
            out[mh] = (s, rep)
    (s0, rep0), (s1, rep1) = out[False], out[True]
    near0 = {r["line"] for r in rep0 if r["reason"] == "near-duplicate"}
    mh1 = [r for r in rep1 if r["reason"] == "minhash-duplicate"]
    beyond = [r for r in mh1 if r["line"] not in near0]
    by_id = {persona_id(t): i for i, t in enumerate(texts)}
    X = np.asarray(vectors)

    def pair(r):
        i, j = r["line"] - 1, by_id[r["matched_id"]]
        return {"line": r["line"], "matched_line": j + 1, "jaccard": r["jaccard"],
                "exact_jaccard": round(exact_jaccard(texts[i], texts[j]), 4),
                "cosine": round(float(X[i] @ X[j]), 4), "text": texts[i][:160],
                "matched_text": texts[j][:160]}

    pairs = [pair(r) for r in beyond]
    below = [p for p in (pair(r) for r in mh1) if p["exact_jaccard"] < DEFAULT_THRESHOLD]

    t0, t1 = min(runs[False]), min(runs[True])
    res = {
        "rows": len(texts),
        "exact_duplicates": s1.exact_duplicates,
        "embedding_only": {"near_duplicates": s0.near_duplicates, "added": s0.added},
        "with_minhash": {"minhash_duplicates": s1.minhash_duplicates,
                         "near_duplicates_after": s1.near_duplicates, "added": s1.added},
        "minhash_also_caught_by_embedding": len(mh1) - len(beyond),
        "minhash_not_caught_by_embedding": len(beyond),
        "embedding_catches_minhash_missed": len(near0 - {r["line"] for r in mh1}),
        "beyond_cosine_max": max((p["cosine"] for p in pairs), default=None),
        # the estimate's noise: drops whose exact word Jaccard is under the threshold
        "minhash_exact_below_threshold": len(below),
        "beyond_exact_below_threshold": sum(p["exact_jaccard"] < DEFAULT_THRESHOLD for p in pairs),
        "beyond_exact_min": min((p["exact_jaccard"] for p in pairs), default=None),
        "examples_beyond": pairs[:examples],
        "seconds_without": t0, "seconds_with": t1, "seconds_added": t1 - t0,
        "ratio": t1 / t0, "minhash_seconds": min(stage), "repeats": repeats,
        "seconds_runs": {"without": runs[False], "with": runs[True]},
        "timing": "fastest of the repeats (alternating; the machine is shared); embedding "
                  "served from the cache (no model time)",
    }
    return res


def exact_jaccard(a: str, b: str) -> float:
    """Jaccard of the two texts' word sets (what MinHash estimates)."""
    from persona_index.minhash import word_shingles

    A, B = set(word_shingles(a)), set(word_shingles(b))
    return len(A & B) / len(A | B) if A | B else 1.0


_STORE_COST = """
import json, sys
from benchmarks.common import measure, rss_bytes
from persona_index import PersonaIndex
from persona_index.dedup import LexicalIndex
from persona_index.minhash import minhash_params
import rensa  # imported before the measurement
idx = PersonaIndex(sys.argv[1])
idx.snapshot().dataset
before = rss_bytes()
with measure() as m:
    lex = LexicalIndex(idx.snapshot(), minhash_params(True))
kept = rss_bytes() - before
print(json.dumps({"stored": len(lex.ids), "seconds": m["seconds"], "peak_extra_mb": m["extra_mb"],
                  "retained_mb": kept / 2**20, "bytes_per_persona": kept / len(lex.ids)}))
"""


def store_cost(records) -> dict:
    """Seconds and memory to sketch a store of ``len(records)`` personas at the
    start of an ingest (the store's id and text columns streamed once), in a
    fresh process so that freed memory of this one does not hide it."""
    import subprocess
    import sys
    from pathlib import Path

    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder
    from persona_index.ingest import ingest_records

    with tempfile.TemporaryDirectory() as d:
        idx = PersonaIndex(f"{d}/p.lance", HashEmbedder(64))
        ingest_records(idx, records, near_dedup=False)
        out = subprocess.run([sys.executable, "-c", _STORE_COST, f"{d}/p.lance"],
                             cwd=Path(__file__).resolve().parents[1], capture_output=True,
                             text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_minhash(sets: dict, n_generated: int = 100_000, subset: int = 10_000,
                repeats: int = 3) -> dict:
    """``sets``: name -> (texts, cached vectors). Then the generated pool:
    ``n_generated`` personas (seed 0) ingested with the hash embedder (64-d)
    without and with MinHash, the store-side cost at that size, and the
    embedding comparison on its first ``subset`` personas with MiniLM."""
    from persona_index.embed import HashEmbedder
    from persona_index.generate import ATTRIBUTES, generate

    from .common import cached_embeddings

    out = {"settings": None, "sets": {}}
    for name, (texts, vecs) in sets.items():
        out["sets"][name] = r = compare(texts, vecs)
        print(f"  minhash[{name}]: {r['with_minhash']['minhash_duplicates']} dropped, "
              f"{r['minhash_not_caught_by_embedding']} beyond the embedding stage; "
              f"x{r['ratio']:.2f} time", flush=True)
    recs = list(generate(n_generated, seed=0))
    texts = [r["persona"] for r in recs]
    sub = texts[:subset]
    r = compare(sub, cached_embeddings(sub, "generated"), repeats=1, records=recs[:subset],
                attrs=list(ATTRIBUTES))
    r["subset_of"] = n_generated
    out["sets"]["generated"] = r
    print(f"  minhash[generated {subset}]: {r['with_minhash']['minhash_duplicates']} dropped, "
          f"{r['minhash_not_caught_by_embedding']} beyond the embedding stage", flush=True)
    emb = HashEmbedder(64)
    full, times, stage = {}, {False: [], True: []}, []
    for _ in range(repeats):
        for mh in (False, True):
            s, rep, seconds = _ingest(recs, emb, mh, attrs=list(ATTRIBUTES))
            full[mh] = s
            times[mh].append(seconds)
            stage += [s.minhash_seconds] if mh else []
    s0, s1 = full[False], full[True]
    t0, t1 = min(times[False]), min(times[True])
    out["generated"] = {
        "rows": n_generated, "embedder": emb.name, "exact_duplicates": s1.exact_duplicates,
        "minhash_duplicates": s1.minhash_duplicates, "added_without": s0.added,
        "added_with": s1.added, "seconds_without": t0, "seconds_with": t1,
        "seconds_added": t1 - t0, "ratio": t1 / t0, "minhash_seconds": min(stage),
        "minhash_per_1000_s": 1000 * min(stage) / n_generated,
        "repeats": repeats, "seconds_runs": {"without": times[False], "with": times[True]},
        "timing": "fastest of the repeats (alternating; the machine is shared); the hash "
                  "embedder (64-d) stands in for the model",
        "embedding_comparison": f"on the first {subset:,} (see sets)",
    }
    out["settings"] = s1.minhash
    print(f"  minhash[generated {n_generated}]: {s1.minhash_duplicates} dropped; "
          f"{t0:.1f} s -> {t1:.1f} s", flush=True)
    out["store"] = store_cost(recs)
    print(f"  minhash store sketch: {out['store']['bytes_per_persona']:.0f} B/persona, "
          f"{out['store']['seconds']:.1f} s for {out['store']['stored']:,}", flush=True)
    return out


def markdown(r: dict) -> list[str]:
    """The README's and the report's view of :func:`run_minhash`'s results."""
    st = r["settings"]
    L = ["| set | personas | dropped by MinHash | of them, kept by the embedding stage alone "
         "(max cosine) | of them, exact word Jaccard under the threshold | embedding-stage drops "
         "MinHash missed | ingest s without / with MinHash (x) | MinHash stage s |",
         "|---|---|---|---|---|---|---|---|"]
    for name, s in r["sets"].items():
        label = f"{name}, the first {s['rows']:,} of {s['subset_of']:,}" if "subset_of" in s else name
        cmax = "" if s["beyond_cosine_max"] is None else f" ({s['beyond_cosine_max']:.3f})"
        L.append(f"| {label} | {s['rows']:,} | {s['with_minhash']['minhash_duplicates']} | "
                 f"{s['minhash_not_caught_by_embedding']}{cmax} | "
                 f"{s['minhash_exact_below_threshold']} | {s['embedding_catches_minhash_missed']} | "
                 f"{s['seconds_without']:.2f} / {s['seconds_with']:.2f} (x{s['ratio']:.2f}) | "
                 f"{s['minhash_seconds']:.2f} |")
    g, c = r["generated"], r["store"]
    L += ["", f"{g['rows']:,} generated personas (seed 0), with the {g['embedder']} hash embedder "
          f"standing in for the model: after {g['exact_duplicates']} exact duplicates, MinHash "
          f"dropped {g['minhash_duplicates']}; its stage took {g['minhash_seconds']:.1f} s "
          f"({1000 * g['minhash_per_1000_s']:.0f} ms per 1,000 personas), and the ingest "
          f"{g['seconds_without']:.1f} s without it, {g['seconds_with']:.1f} s with it "
          f"(x{g['ratio']:.2f}; fastest of {g['repeats']} runs each). Sketching a store of "
          f"{c['stored']:,} personas at the start of an ingest took {c['seconds']:.1f} s and kept "
          f"{c['retained_mb']:.0f} MB ({c['bytes_per_persona']:,.0f} bytes per stored persona).",
          "", f"Settings: word 1-grams, {st['num_perm']} permutations, estimated Jaccard >= "
          f"{st['threshold']}, {st['bands']} LSH bands of {st['rows_per_band']}. Ingest times "
          "leave out the model: the MiniLM vectors come from the benchmark's cache (the "
          "generated 100k: the hash embedder)."]
    for name, s in r["sets"].items():
        if s["examples_beyond"]:
            e = s["examples_beyond"][0]
            L += ["", f"{name}, line {e['line']} dropped as a copy of line {e['matched_line']} "
                  f"(estimated Jaccard {e['jaccard']:.3f}, exact {e['exact_jaccard']:.3f}, "
                  f"cosine {e['cosine']:.3f}): \"{e['text'][:110]}\" / "
                  f"\"{e['matched_text'][:110]}\""]
    return L
