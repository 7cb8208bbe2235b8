"""Precomputed vectors in an input field (``ingest --vectors-field F``,
``IngestOptions(vectors_field=F)``): each row carries its persona's vector,
so the write pass embeds nothing.

The vectors must come from the store's model: nothing can check that, but
their length can. The length asked for is the store's ``dim`` when the store
exists, else the embedder's (the default model's 384, known without loading
it); the store records the embedder's name as its model, as any ingest does,
so that text queries embed with the model the vectors came from.

Every row's vector is checked in the validation pass, before anything is
written: a null, a value that is no list, a wrong length, an entry that is no
number (a boolean, a string, a null) or not finite, or a vector of zeros stops
the ingest with :class:`~persona_index.errors.InputFileError` naming the file,
the line and the field. The write pass scales each row to unit length (the
store ranks by cosine; a model's output may be unnormalised).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from .errors import InputFileError


_PLAIN = {float, int}


def vector_problem(v, dim: int) -> str | None:
    """Why ``v`` is not a usable ``dim``-long vector, or None.

    Examples
    --------
    >>> vector_problem([0.6, 0.8], 2) is None
    True
    >>> [vector_problem(v, 2) for v in (None, "0.6,0.8", [1.0], [True, 1.0], [1.0, None])]
    ['is null', 'is str, not a list of numbers', 'has 1 number(s), want 2', 'entry 0 is True, not a number', 'entry 1 is None, not a number']
    >>> vector_problem([0.0, float("nan")], 2), vector_problem([0, 0], 2)
    ('entry 1 is nan, not a finite number', 'is all zeros (no direction)')
    """
    if v is None:
        return "is null"
    if isinstance(v, np.ndarray) and v.ndim == 1 and v.dtype.kind in "fiu":  # a parquet row
        if len(v) != dim:
            return f"has {len(v)} number(s), want {dim}"
        if not np.isfinite(v).all():
            j = int(np.flatnonzero(~np.isfinite(v))[0])
            return f"entry {j} is {float(v[j])!r}, not a finite number"
        return None if v.any() else "is all zeros (no direction)"
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if not isinstance(v, (list, tuple)):
        return f"is {type(v).__name__}, not a list of numbers"
    if len(v) != dim:
        return f"has {len(v)} number(s), want {dim}"
    if set(map(type, v)) <= _PLAIN:  # the common case, checked in C (an ABC check per entry is slow)
        a = np.asarray(v, dtype=np.float64)
        if np.isfinite(a).all():
            return None if a.any() else "is all zeros (no direction)"
    for j, x in enumerate(v):
        if isinstance(x, bool) or not isinstance(x, Real):
            return f"entry {j} is {x!r}, not a number"
        if not math.isfinite(x):
            return f"entry {j} is {x!r}, not a finite number"
    if not any(v):
        return "is all zeros (no direction)"
    return None


def expected_dim(index) -> int:
    """The vector length ``index`` takes: the store's, else its embedder's."""
    if index.exists:
        return int(index.meta["dim"])
    return int(index.embedder.dim)


def check_row(rec: dict, field: str, dim: int, path: str, line) -> None:
    """Raise :class:`InputFileError` (``path:line``, naming ``field``) unless
    ``rec[field]`` is a usable vector.

    Examples
    --------
    >>> check_row({"v": [1.0, 0.0]}, "v", 2, "p.jsonl", 3) is None
    True
    >>> check_row({"text": "a nurse"}, "v", 2, "p.jsonl", 3)
    Traceback (most recent call last):
    ...
    persona_index.errors.InputFileError: p.jsonl:3: no vectors field 'v' (vectors_field='v')
    >>> check_row({"v": [1.0]}, "v", 2, "p.jsonl", 4)
    Traceback (most recent call last):
    ...
    persona_index.errors.InputFileError: p.jsonl:4: field 'v': has 1 number(s), want 2 (the store's vectors are 2-long)
    """
    if field not in rec:
        raise InputFileError(path, line, f"no vectors field {field!r} (vectors_field={field!r})")
    why = vector_problem(rec[field], dim)
    if why:
        hint = f" (the store's vectors are {dim}-long)" if why.startswith("has ") else ""
        raise InputFileError(path, line, f"field {field!r}: {why}{hint}")


def unit_rows(recs, field: str) -> np.ndarray:
    """The checked vectors of ``recs`` as an ``(n, dim)`` float32 array of
    unit rows (each scaled by its float64 norm).

    Examples
    --------
    >>> unit_rows([{"v": [3, 4]}, {"v": [0.0, 2.0]}], "v").tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 1.0]]
    """
    X = np.asarray([r[field] for r in recs], dtype=np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)
