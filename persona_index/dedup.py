"""Dedup: the exact, near (embedding) and lexical (MinHash) indexes an ingest checks rows against.

* exact: persona ids are content hashes of the normalised text
  (:func:`persona_index.text.persona_id`); :class:`StoreIndex` holds the ids
  already stored and those this ingest added.
* near: cosine similarity of the embeddings, against the store
  (:class:`StoreIndex`, with :class:`KMeansBlocks` from ``BLOCKING_MIN``
  stored rows on) and within a batch (:func:`near_dups_within`). A pair is
  only a duplicate when the texts also share :data:`LEXICAL_MIN` of their
  character 3-grams (:func:`lexical_similarity`); otherwise it is an
  embedder collision, kept and reported.
* lexical: MinHash over words before embedding (:class:`LexicalIndex`, the
  ``minhash`` extra; :mod:`persona_index.minhash`).

Every index reads the store through the one snapshot the ingest starts from.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np

from .text import normalize_text

#: from this many stored personas on, near-dup checks against the store use
#: k-means blocking (probe the PROBES nearest of ~sqrt(N) cells) instead of a
#: full scan per batch; rows added during the ingest are always scanned exactly
BLOCKING_MIN = 200_000
PROBES = 8


class KMeansBlocks:
    """k-means blocking over a fixed matrix: each row lives in one cell; a query
    is compared with the members of its ``probes`` nearest cells only.

    Examples
    --------
    >>> X = np.eye(32, dtype=np.float32)
    >>> blocks = KMeansBlocks(X)
    >>> q = X[[3, 17]] + 0.01
    >>> q /= np.linalg.norm(q, axis=1, keepdims=True)
    >>> best, arg = blocks.nearest(q)
    >>> arg.tolist(), bool((best > 0.9).all())
    ([3, 17], True)
    """

    def __init__(self, X: np.ndarray, probes: int = PROBES, seed: int = 0):
        from .samplers.cells import assign, fit_cells

        rng = np.random.default_rng(seed)
        self.X = X
        self.centroids = fit_cells(X, max(16, int(np.sqrt(len(X)))), rng)
        lab = assign(X, self.centroids)
        self.order = np.argsort(lab, kind="stable")
        sizes = np.bincount(lab, minlength=len(self.centroids))
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.probes = min(probes, len(self.centroids))

    def nearest(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row of ``q``: the best similarity among the members of its
        probed cells, and that member's row in ``X``."""
        best = np.full(len(q), -np.inf, dtype=np.float32)
        arg = np.full(len(q), -1, dtype=np.int64)
        cs = q @ self.centroids.T
        probe = np.argpartition(-cs, self.probes - 1, axis=1)[:, : self.probes]
        rows = np.repeat(np.arange(len(q)), self.probes)
        cells = probe.reshape(-1)
        o = np.argsort(cells, kind="stable")
        rows, cells = rows[o], cells[o]
        bounds = np.flatnonzero(np.diff(cells)) + 1
        for r, c in zip(np.split(rows, bounds), cells[np.concatenate([[0], bounds])]):
            members = self.order[self.starts[c]:self.starts[c + 1]]
            if len(members) == 0:
                continue
            sims = q[r] @ self.X[members].T
            j = sims.argmax(axis=1)
            v = sims[np.arange(len(r)), j]
            better = v > best[r]
            best[r[better]] = v[better]
            arg[r[better]] = members[j[better]]
        return best, arg


class StoreIndex:
    """The exact (ids) and near (vectors) index of what the store holds, for
    dedup; grows as batches land.

    ``snap``: the snapshot the ingest starts from (None: no store yet).

    It never builds the snapshot's warm query matrix. Below ``blocking_min``
    stored rows the store's vectors are streamed from the snapshot the ingest
    started from on every lookup (memory: one scan batch); from there on they
    are read once into the k-means blocks (memory: the vectors, once).

    Examples
    --------
    >>> known = StoreIndex(None, need_vectors=True)
    >>> known.add(["a", "b"], np.eye(2, dtype=np.float32))
    >>> best, arg = known.nearest(np.array([[0.0, 1.0]], dtype=np.float32))
    >>> known.id_list[arg[0]], float(best[0]), known.where("a"), known.method
    ('b', 1.0, 'input', 'exact')
    """

    def __init__(self, snap, need_vectors: bool, blocking_min: int = BLOCKING_MIN):
        self.ids: set = set()
        self.id_list: list = []
        self.chunks: list[np.ndarray] = []
        self.preexisting = 0
        self._new: set = set()
        self.blocks: KMeansBlocks | None = None
        self._stream = None  # the dataset version whose vectors are streamed
        if snap is not None:
            ds = snap.dataset
            self.id_list = ds.to_table(columns=["id"]).column("id").to_pylist()  # scan order
            self.ids = set(self.id_list)
            self.preexisting = len(self.id_list)
            if need_vectors and self.preexisting:
                if self.preexisting >= blocking_min:
                    from .snapshot import load_matrix

                    self.blocks = KMeansBlocks(load_matrix(ds, snap.dim)[1])
                else:
                    self._stream = (ds, snap.dim)

    @property
    def method(self) -> str:
        if self.blocks is None:
            return "exact"
        return f"blocked ({len(self.blocks.centroids)} k-means cells, {self.blocks.probes} probed)"

    def where(self, pid) -> str:
        """'store' if the id was there before this ingest, else 'input'."""
        if pid in self._new:
            return "input"
        return "store"

    def add(self, ids, vecs):
        self._new.update(ids)
        self.ids.update(ids)
        self.id_list.extend(ids)
        if vecs is not None and len(ids):
            self.chunks.append(vecs)

    def nearest(self, q: np.ndarray, block: int = 16384):
        """For each row of ``q``: best similarity in the store and its position
        in ``id_list`` (blocked for the pre-existing rows of a large store)."""
        if self.blocks is not None:
            best, arg = self.blocks.nearest(q)
            offset = self.preexisting
        else:
            best = np.full(len(q), -np.inf, dtype=np.float32)
            arg = np.full(len(q), -1, dtype=np.int64)
            offset = 0
        chunks = self.chunks
        if self._stream is not None:
            ds, dim = self._stream

            def stored():  # the same scan order as id_list
                for b in ds.to_batches(columns=["vector"], batch_size=block):
                    yield b.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)

            chunks = itertools.chain(stored(), self.chunks)
        for c in chunks:
            for s in range(0, len(c), block):
                sims = q @ c[s:s + block].T
                j = sims.argmax(axis=1)
                v = sims[np.arange(len(q)), j]
                better = v > best
                best[better] = v[better]
                arg[better] = offset + s + j[better]
            offset += len(c)
        return best, arg


class LexicalIndex:
    """MinHash sketches of the stored texts and of the rows this ingest has let
    through, for the MinHash stage.

    The store's ``id`` and ``text`` columns are streamed once, from the
    snapshot the ingest starts from, in batches of ``batch`` rows: memory is
    one batch of texts plus, for each stored persona, its sketch, its LSH
    entries and its id (about 2.5 KB at 128 permutations and 16 bands; the
    ``minhash`` benchmark measures it). ``snap``: that snapshot (None: no
    store yet); ``params``: :class:`persona_index.minhash.MinHashParams`."""

    def __init__(self, snap, params, batch: int = 8192):
        from .minhash import MinHashIndex

        self.mh = MinHashIndex(params)
        self.ids: list = []  # key -> persona id
        self.lines: dict = {}  # key -> input line, for rows of this ingest
        self.preexisting = 0
        if snap is not None:
            for b in snap.dataset.to_batches(columns=["id", "text"], batch_size=batch):
                self.mh.add(self.mh.sketch(b.column("text").to_pylist()))
                self.ids.extend(b.column("id").to_pylist())
            self.preexisting = len(self.ids)

    def check(self, lines, ids, texts, rep) -> tuple[list, list]:
        """Drop the rows whose words match an indexed text or an earlier row
        (keep-first, reported through ``rep.add`` as ``minhash-duplicate``);
        index the others. Returns the positions kept and their keys."""
        kept, keys = [], []
        for i, m in enumerate(self.mh.sketch(texts)):
            key, jac = self.mh.best(m)
            if key >= 0:
                entry = {"line": lines[i], "id": ids[i], "reason": "minhash-duplicate",
                         "matched_id": self.ids[key],
                         "matched_in": "store" if key < self.preexisting else "input"}
                if key in self.lines:
                    entry["matched_line"] = self.lines[key]
                entry["jaccard"] = round(float(jac), 6)
                rep.add(entry)
                continue
            key = self.mh.add([m])[0]
            self.ids.append(ids[i])
            self.lines[key] = lines[i]
            kept.append(i)
            keys.append(key)
        return kept, keys

    def forget(self, keys) -> None:
        """Rows a later stage dropped: they are not in the store, so nothing
        should match them."""
        for k in keys:
            self.mh.remove(k)
            self.lines.pop(k, None)


#: a pair the embedder scores as a near duplicate is only dropped when the texts
#: also share this much (Jaccard of character 3-grams of the normalised text):
#: MiniLM maps whole Thai sentences to one [UNK] token and most Chinese to
#: [UNK]s, so distinct personas in those scripts get the same vector
LEXICAL_MIN = 0.3


def shingles(text: str, n: int = 3) -> set:
    """The character ``n``-grams of the normalised text (the whole text when shorter).

    Examples
    --------
    >>> sorted(shingles("AB cd")), shingles("ab")
    ([' cd', 'ab ', 'b c'], {'ab'})
    """
    t = normalize_text(text)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def lexical_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the character 3-grams of two normalised texts.

    Examples
    --------
    >>> lexical_similarity("a nurse in Lyon", "A nurse in  lyon")
    1.0
    >>> round(lexical_similarity("a nurse in Lyon", "a nurse in Oslo"), 3)
    0.529
    >>> lexical_similarity("abc", "xyz")
    0.0
    """
    A, B = shingles(a), shingles(b)
    return len(A & B) / len(A | B) if A or B else 1.0


def near_dups_within(vecs: np.ndarray, threshold: float, texts=None, collisions=None):
    """Keep-first greedy near-dup removal inside one batch.

    Returns ``(kept_mask, match_index, match_sim)``: a row is dropped when it is
    at least ``threshold`` similar to an earlier *kept* row whose text it also
    resembles (when ``texts`` are given; a pair the embedder cannot tell apart
    but whose texts differ is kept and appended to ``collisions`` as
    ``(i, j, sim)``). Only rows with some earlier row over the threshold enter
    the (short) sequential loop.

    Examples
    --------
    >>> v = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    >>> kept, match, sim = near_dups_within(v, 0.95)
    >>> kept.tolist(), match.tolist(), sim.tolist()
    ([True, False, True], [-1, 0, -1], [0.0, 1.0, 0.0])
    >>> coll = []  # the same vectors, but texts that share nothing: kept
    >>> near_dups_within(v, 0.95, ['a nurse', 'ein Koch', 'x'], coll)[0].tolist(), coll
    ([True, True, True], [(1, 0, 1.0)])
    """
    n = len(vecs)
    kept = np.ones(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    msim = np.zeros(n, dtype=np.float32)
    if n < 2:
        return kept, match, msim
    sims = vecs @ vecs.T
    sims[np.triu_indices(n)] = -np.inf  # only earlier rows count
    for i in np.flatnonzero((sims >= threshold).any(axis=1)):
        js = np.flatnonzero((sims[i] >= threshold) & kept)
        js = js[np.argsort(-sims[i, js], kind="stable")]
        for j in js:
            if texts is None or lexical_similarity(texts[i], texts[j]) >= LEXICAL_MIN:
                kept[i] = False
                match[i], msim[i] = j, sims[i, j]
                break
            if collisions is not None:
                collisions.append((int(i), int(j), float(sims[i, j])))
    return kept, match, msim



def drop_near(known: StoreIndex, vecs: np.ndarray, texts: Sequence[str], lines: Sequence[int],
              ids: Sequence[str], threshold: float, rep,
              texts_of: Callable[[list], dict]) -> tuple[np.ndarray, int]:
    """The near-duplicate check of one batch: against the store and the rows
    this ingest added (``known``), then within the batch (keep-first).

    Returns the rows to keep (a boolean mask) and how many embedder collisions
    were found (kept). Every drop and collision goes to ``rep.add`` as a report
    entry. ``texts_of``: stored id -> text for a list of ids, read only for the
    rows whose vector matched, to compare the texts (see :data:`LEXICAL_MIN`).

    Examples
    --------
    >>> class Rep(list):
    ...     add = list.append
    >>> known = StoreIndex(None, need_vectors=True)
    >>> known.add(["s1"], np.array([[1.0, 0.0]], dtype=np.float32))
    >>> v = np.array([[1, 0], [0, 1], [0, 1]], dtype=np.float32)
    >>> rep = Rep()
    >>> keep, collisions = drop_near(known, v, ["a nurse", "a cook", "a cook!"], [1, 2, 3],
    ...                              ["p1", "p2", "p3"], 0.95, rep, lambda ids: {"s1": "A nurse"})
    >>> keep.tolist(), collisions, [(e["line"], e["matched_id"]) for e in rep]
    ([False, True, False], 0, [(1, 's1'), (3, 'p2')])
    >>> rep = Rep()  # the same vectors for a text that shares nothing: a collision, kept
    >>> drop_near(known, v[:1], ["ein Koch"], [1], ["p4"], 0.95, rep, lambda ids: {"s1": "A nurse"})
    (array([ True]), 1)
    >>> rep[0]["reason"]
    'embedder-collision (kept)'
    """
    best, arg = known.nearest(vecs)
    against = best >= threshold
    collisions = 0
    if against.any():  # the texts must agree too (see LEXICAL_MIN)
        cand = np.flatnonzero(against)
        stored = texts_of([known.id_list[arg[i]] for i in cand])
        for i in cand:
            other = stored.get(known.id_list[arg[i]])
            if other is not None and lexical_similarity(texts[i], other) < LEXICAL_MIN:
                against[i] = False
                collisions += 1
                rep.add(_collision(lines[i], ids[i], known.id_list[arg[i]], best[i]))
    for i in np.flatnonzero(against):
        rep.add({"line": lines[i], "id": ids[i], "reason": "near-duplicate",
                 "matched_id": known.id_list[arg[i]],
                 "matched_in": "store" if arg[i] < known.preexisting else "input",
                 "similarity": round(float(best[i]), 6)})
    keep = ~against
    sub = np.flatnonzero(keep)
    pairs: list = []
    kept_sub, match, msim = near_dups_within(vecs[sub], threshold, [texts[i] for i in sub], pairs)
    for a, b, sim in pairs:
        collisions += 1
        rep.add(_collision(lines[sub[a]], ids[sub[a]], ids[sub[b]], sim))
    for local in np.flatnonzero(~kept_sub):
        i, j = sub[local], sub[match[local]]
        rep.add({"line": lines[i], "id": ids[i], "reason": "near-duplicate",
                 "matched_id": ids[j], "matched_in": "input", "matched_line": lines[j],
                 "similarity": round(float(msim[local]), 6)})
    keep[sub[~kept_sub]] = False
    return keep, collisions


def _collision(line, pid, matched, sim) -> dict:
    """The report entry of a pair the embedder cannot tell apart although the
    texts differ: kept, counted, reported (``reason: embedder-collision``)."""
    return {"line": line, "id": pid, "reason": "embedder-collision (kept)", "matched_id": matched,
            "similarity": round(float(sim), 6)}
