"""inverse-density: rare personas drawn more often.

Density is estimated from k-nearest-neighbour cosine distances: ``r(x)``, the
mean distance to the ``n_neighbors`` nearest others, exactly when the pool
has at most ``reference`` rows (default 4,096, fewer above 122k personas so
that the estimate stays a few seconds at 10^6), else against a seeded random
reference subsample of that size (a monotone proxy: a sparse region is sparse in the
subsample too). Weights are ``r(x) ** alpha`` (density ** -alpha with
density = 1 / r); ``alpha = 0`` is uniform; the default, 3, makes a persona whose neighbours
are twice as far away eight times as likely. Drawn without replacement.
"""

from __future__ import annotations

import numpy as np

from .base import weighted_without_replacement

REFERENCE = 4096
#: kernel-evaluation budget of the estimate: the automatic reference keeps
#: n x reference under it (4,096 rows up to 122k personas, 512 at 10^6)
BUDGET = 5e8


def reference_rows(n: int, reference: int | None, rng=None) -> np.ndarray:
    """The sorted rows k-NN distances are measured against: all ``n`` when
    they fit in :func:`reference_size`, else a draw of that many (``rng``,
    default seed 0). :func:`knn_distance` draws them once and hands them to
    the numpy or the torch kernel, so both measure against the same rows.

    Examples
    --------
    >>> reference_rows(5, 10).tolist()  # all of them fit
    [0, 1, 2, 3, 4]
    >>> r = reference_rows(100, 8)  # a seeded draw of 8, sorted, distinct
    >>> len(r), bool((np.diff(r) > 0).all()), np.array_equal(r, reference_rows(100, 8))
    (8, True, True)
    """
    reference = reference_size(n, reference)
    if n <= reference:
        return np.arange(n)
    return np.sort((rng or np.random.default_rng(0)).choice(n, reference, replace=False))


def reference_size(n: int, reference: int | None) -> int:
    """``reference`` if given, else 4,096 lowered to keep ``n x reference``
    under 5e8, never below 512.

    Examples
    --------
    >>> reference_size(100_000, None), reference_size(1_000_000, None), reference_size(10, 64)
    (4096, 512, 64)
    """
    if reference is not None:
        return int(reference)
    return max(512, min(REFERENCE, int(BUDGET // max(n, 1))))


def knn_distance(X, n_neighbors: int = 10, *, reference: int | None = None,
                 rng=None, block: int = 8192, device: str = "numpy") -> np.ndarray:
    """Mean cosine distance of each row to its ``n_neighbors`` nearest others.

    Exact when ``len(X) <= reference``; otherwise against a random subsample of
    ``reference`` rows (``rng`` chooses it; by default see :func:`reference_size`).
    The rows are drawn once, here (:func:`reference_rows`); then the numpy
    kernel or its torch twin (:func:`persona_index.kernels.knn_distance_torch`,
    ``device`` ``"torch-cpu"`` or ``"cuda"``) measures against them.
    Memory: ``block x reference``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> r = knn_distance(X, 3)
    >>> sorted(np.argsort(r)[-2:].tolist())  # the two most isolated rows
    [8, 9]
    >>> bool(r[:8].max() < 0.05 < 0.9 < r[8:].min())
    True
    >>> knn_distance(X[:1])  # one persona: no neighbours
    array([1.], dtype=float32)
    """
    ref_idx = reference_rows(len(X), reference, rng)
    if device != "numpy":
        from ..kernels import knn_distance_torch

        return knn_distance_torch(X, ref_idx, n_neighbors, device=device)
    return _knn_distance(X, ref_idx, n_neighbors, block)


def _knn_distance(X: np.ndarray, ref_idx: np.ndarray, n_neighbors: int, block: int) -> np.ndarray:
    """The numpy kernel of :func:`knn_distance`, on reference rows already drawn."""
    n = len(X)
    kk = min(n_neighbors, len(ref_idx) - 1)
    if kk < 1:  # a single persona: no neighbours, no density to speak of
        return np.ones(n, dtype=np.float32)
    R = np.ascontiguousarray(X[ref_idx].T)
    out = np.empty(n, dtype=np.float32)
    pos_in_ref = np.full(n, -1, dtype=np.int64)
    pos_in_ref[ref_idx] = np.arange(len(ref_idx))
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = X[s:e] @ R
        rows = np.arange(e - s)
        self_col = pos_in_ref[s:e]
        has = self_col >= 0
        sims[rows[has], self_col[has]] = -np.inf  # a point is not its own neighbour
        top = np.partition(sims, sims.shape[1] - kk, axis=1)[:, -kk:]
        out[s:e] = 1.0 - top.mean(axis=1)
    return out


def inverse_density(X, k, *, rng, prior=None, attributes=None, alpha=3.0, n_neighbors=10,
                    reference=None, device="auto"):
    """Draw ``k`` rows with weights ``knn_distance ** alpha`` (see the module docstring);
    ``device`` picks numpy or the torch twin of the k-NN distances
    (:mod:`persona_index.kernels`).

    Examples
    --------
    With a steep ``alpha`` the two isolated personas are all but certain:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> sorted(inverse_density(X, 2, rng=np.random.default_rng(0), alpha=20,
    ...                        n_neighbors=3).tolist())
    [8, 9]
    """
    from ..kernels import resolve_device

    r = knn_distance(X, n_neighbors, reference=reference, rng=rng,
                     device=resolve_device(device, X.size))
    r = np.maximum(r, 1e-6)
    w = r.astype(np.float64) ** float(alpha)
    return weighted_without_replacement(rng, w, k)
