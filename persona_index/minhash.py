"""Lexical near-duplicates: MinHash over word 1-grams, with LSH (the ``minhash`` extra).

Persona Hub dedups in two stages: MinHash on 1-grams (128 permutations,
Jaccard 0.9), then embeddings. This module is the first stage; the ingest runs
it before embedding (:func:`persona_index.ingest.ingest_file` with
``minhash=True``). Sketches and the LSH index come from ``rensa`` (MinHash in
Rust): on 100,000 generated personas it sketched in 0.2 s where datasketch's
``MinHash.bulk`` took 2.5 s, on the same 2 cores.

A text's shingles are the distinct words (``\\w+`` runs) of its normalised
text (NFKC, collapsed whitespace, case-folded), so punctuation, case, word
order and repeated words do not count. A script written without spaces
(Chinese, Thai) gives one word per run of letters: such texts match only when
nearly identical. A text with no word at all gets no sketch and is never a
MinHash duplicate.

The LSH index has ``bands`` bands of ``num_perm // bands`` rows; by default the
fewest bands that still make a pair at the threshold a candidate with
probability at least 0.99 (16 bands of 8 for 128 permutations at 0.9).
Candidates are then checked against the threshold with the estimated Jaccard
(the share of equal sketch values), so the bands trade memory and speed, not
the threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._lazy import attempt_import
from .errors import IngestOptionError
from .text import normalize_text

DEFAULT_THRESHOLD = 0.9
DEFAULT_NUM_PERM = 128
#: the permutations are seeded with a constant, so a text's sketch is the same
#: in every process and every run
SEED = 0
#: the default bands put a pair at the threshold among the candidates with at
#: least this probability
BAND_RECALL = 0.99
_WORD = re.compile(r"\w+")


def word_shingles(text: str) -> list[str]:
    """The distinct words of the normalised text, sorted (word 1-grams).

    Examples
    --------
    >>> word_shingles("A nurse, a NURSE;  and a baker.")
    ['a', 'and', 'baker', 'nurse']
    >>> word_shingles("...!")
    []
    """
    return sorted(set(_WORD.findall(normalize_text(text))))


def candidate_probability(jaccard: float, num_perm: int, bands: int) -> float:
    """Probability that a pair of Jaccard ``jaccard`` shares at least one LSH band.

    Examples
    --------
    >>> round(candidate_probability(0.9, 128, 16), 5), round(candidate_probability(0.5, 128, 16), 3)
    (0.99988, 0.061)
    """
    rows = num_perm // bands
    return 1.0 - (1.0 - jaccard ** rows) ** bands


def default_bands(num_perm: int, threshold: float, recall: float = BAND_RECALL) -> int:
    """The fewest bands (a divisor of ``num_perm``) that make a pair at
    ``threshold`` a candidate with probability ``recall`` (else the most
    likely banding).

    Examples
    --------
    >>> default_bands(128, 0.9), default_bands(128, 0.8), default_bands(256, 0.9)
    (16, 32, 32)
    """
    divisors = [b for b in range(1, num_perm + 1) if num_perm % b == 0]
    for b in divisors:
        if candidate_probability(threshold, num_perm, b) >= recall:
            return b
    return max(divisors, key=lambda b: candidate_probability(threshold, num_perm, b))


@dataclass(frozen=True)
class MinHashParams:
    """The settings of the MinHash stage. Build it with :func:`minhash_params`.

    Examples
    --------
    >>> minhash_params(True)
    MinHashParams(threshold=0.9, num_perm=128, bands=16)
    >>> minhash_params(True).to_dict()["rows_per_band"]
    8
    """

    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    bands: int = 16

    def to_dict(self) -> dict:
        return {"threshold": self.threshold, "num_perm": self.num_perm, "bands": self.bands,
                "rows_per_band": self.num_perm // self.bands, "shingles": "word 1-grams",
                "seed": SEED}


def minhash_params(value) -> MinHashParams | None:
    """Read the ``minhash`` option: None or False (off), True (Persona Hub's
    defaults: word 1-grams, 128 permutations, threshold 0.9), a dict with any of
    ``threshold``, ``num_perm``, ``bands``, or a :class:`MinHashParams`.

    Examples
    --------
    >>> minhash_params(None) is None, minhash_params(False) is None
    (True, True)
    >>> minhash_params({"threshold": 0.8, "num_perm": 64})
    MinHashParams(threshold=0.8, num_perm=64, bands=16)
    >>> minhash_params({"threshold": 1.5})
    Traceback (most recent call last):
    ...
    persona_index.errors.IngestOptionError: minhash threshold must be in (0, 1], got 1.5
    >>> minhash_params({"num_perm": 128, "bands": 12})
    Traceback (most recent call last):
    ...
    persona_index.errors.IngestOptionError: minhash bands must divide num_perm (128), got 12
    """
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    elif isinstance(value, MinHashParams):
        value = {"threshold": value.threshold, "num_perm": value.num_perm, "bands": value.bands}
    elif not isinstance(value, dict):
        raise IngestOptionError(f"minhash must be True, False, a dict or MinHashParams, "
                                f"got {type(value).__name__}")
    unknown = sorted(set(value) - {"threshold", "num_perm", "bands"})
    if unknown:
        raise IngestOptionError(f"unknown minhash setting(s) {unknown}; known: threshold, "
                                "num_perm, bands")
    threshold = value.get("threshold", DEFAULT_THRESHOLD)
    num_perm = value.get("num_perm", DEFAULT_NUM_PERM)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0.0 < threshold <= 1.0:
        raise IngestOptionError(f"minhash threshold must be in (0, 1], got {threshold!r}")
    if isinstance(num_perm, bool) or not isinstance(num_perm, (int, np.integer)) \
            or not 1 <= num_perm <= 4096:
        raise IngestOptionError(f"minhash num_perm must be an integer from 1 to 4096, "
                                f"got {num_perm!r}")
    num_perm = int(num_perm)
    bands = value.get("bands")
    if bands is None:
        bands = default_bands(num_perm, float(threshold))
    elif isinstance(bands, bool) or not isinstance(bands, (int, np.integer)) or bands < 1 \
            or num_perm % bands:
        raise IngestOptionError(f"minhash bands must divide num_perm ({num_perm}), got {bands!r}")
    return MinHashParams(float(threshold), num_perm, int(bands))


class MinHashIndex:
    """MinHash sketches under integer keys (0, 1, ... in insertion order) and
    an LSH index over them.

    Memory: one sketch (about 0.7 KB at 128 permutations) and the LSH entries
    (about 1.7 KB at 16 bands) per key, measured with rensa 0.5; see the
    ``minhash`` benchmark for the figure per stored persona.

    Examples
    --------
    >>> mh = MinHashIndex(minhash_params(True))
    >>> words = ("a retired train conductor from rural Poland who collects old railway "
    ...          "timetables, restores steam engines on weekends, writes a blog about "
    ...          "forgotten branch lines for fellow enthusiasts and teaches local school "
    ...          "children the history of the regional rail network")  # 37 distinct words
    >>> mh.add(mh.sketch([words, "a baker in Lyon"]))
    [0, 1]
    >>> key, jac = mh.best(mh.sketch([words.replace("old", "rare")])[0])  # one word changed
    >>> key, round(jac, 3)  # the true Jaccard is 36 / 38 = 0.947
    (0, 0.93)
    >>> mh.best(mh.sketch(["a welder in Chile"])[0])[0]
    -1
    """

    def __init__(self, params: MinHashParams):
        self._rensa = attempt_import("rensa", "minhash")
        self.params = params
        self.lsh = self._rensa.RMinHashLSH(params.threshold, params.num_perm, params.bands)
        self.sketches: list = []  # key -> sketch (None: no words, or removed)

    def __len__(self) -> int:
        return len(self.sketches)

    def sketch(self, texts: Sequence[str]) -> list:
        """One sketch per text (None for a text with no word)."""
        shingles = [word_shingles(t) for t in texts]
        full = [s for s in shingles if s]
        made = iter(self._rensa.RMinHash.from_token_sets(full, self.params.num_perm, SEED)
                    if full else [])
        return [next(made) if s else None for s in shingles]

    def add(self, sketches: Sequence) -> list[int]:
        """Insert sketches without checking them; their keys (a None gets a key too)."""
        start = len(self.sketches)
        self.sketches.extend(sketches)
        pairs = [(start + i, m) for i, m in enumerate(sketches) if m is not None]
        if pairs:
            self.lsh.insert_pairs(pairs)
        return list(range(start, len(self.sketches)))

    def best(self, sketch) -> tuple[int, float]:
        """The key of the most similar indexed sketch at or above the threshold
        and its estimated Jaccard, or ``(-1, best estimate below it)``."""
        if sketch is None:
            return -1, 0.0
        key, jac = -1, 0.0
        for c in sorted(self.lsh.query(sketch)):  # ties go to the earliest key
            other = self.sketches[c]
            if other is not None:
                j = sketch.jaccard(other)
                if j > jac or key < 0:
                    key, jac = c, j
        return (key, jac) if key >= 0 and jac >= self.params.threshold else (-1, jac)

    def remove(self, key: int) -> None:
        """Forget a key (its sketch is freed; the key is not reused)."""
        if self.sketches[key] is not None:
            self.lsh.remove(key)
            self.sketches[key] = None


def find_duplicates(texts: Sequence[str], minhash=True) -> tuple[np.ndarray, np.ndarray]:
    """Keep-first MinHash dedup of a list of texts.

    Returns ``(match, jaccard)``, two arrays of length ``len(texts)``:
    ``match[i]`` is the index of the earlier kept text that text ``i``
    duplicates (estimated Jaccard ``jaccard[i]`` at or above the threshold),
    or -1 when ``i`` is kept. ``minhash``: the settings, as for
    :func:`minhash_params`. Deterministic (no seed to give).

    Examples
    --------
    >>> texts = ["a nurse in Lagos who runs a night clinic for street children",
    ...          "A nurse in Lagos who runs a night clinic for street children!",
    ...          "a welder in Chile"]
    >>> match, jac = find_duplicates(texts)
    >>> match.tolist(), jac.round(2).tolist()
    ([-1, 0, -1], [0.0, 1.0, 0.0])
    """
    params = minhash_params(minhash)
    if params is None:
        raise IngestOptionError("find_duplicates needs MinHash settings, got minhash=False")
    mh = MinHashIndex(params)
    match = np.full(len(texts), -1, dtype=np.int64)
    jaccard = np.zeros(len(texts), dtype=np.float64)
    for i, m in enumerate(mh.sketch(texts)):
        key, jac = mh.best(m)
        if key >= 0:
            match[i], jaccard[i] = key, jac
            mh.add([None])  # keeps keys equal to positions
        else:
            mh.add([m])
    return match, jaccard
