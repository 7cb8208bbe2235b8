"""farthest: greedy k-center (farthest-point traversal) under cosine distance.

Each pick is the persona least similar to everything chosen so far, a
2-approximation of the optimal k-center radius. The naive loop reads all
N x d floats for every pick; here one pass over X serves many picks:

* a persona's max similarity to the chosen set only ever grows, so values
  from the last full pass are lower bounds for every persona;
* we keep the L personas with the lowest values (the front-runners) exact,
  updating only them after each pick (an L x d product);
* while the best front-runner is strictly below the lowest stale value of
  everyone else, it is provably the exact next pick;
* when that fails, one full pass folds all pending picks in at once, as a
  single (N x d) @ (d x p) matrix product, chunked to bound memory.

It agrees with :func:`naive_farthest` (the reference loop, same tie rule:
lowest index) up to float rounding of the products (ties within ~1e-7).
"""

from __future__ import annotations

import numpy as np

from .base import max_similarity


def naive_farthest(X: np.ndarray, k: int, start: int) -> np.ndarray:
    """Reference greedy k-center: one matrix-vector product per pick.

    Examples
    --------
    From 0 degrees: the opposite point (180), then the one farthest from
    both (100):

    >>> angles = np.deg2rad([0, 20, 100, 180, 250])  # points on a circle
    >>> X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    >>> naive_farthest(X, 3, start=0)
    array([0, 3, 2])
    """
    n = len(X)
    maxsim = np.full(n, -np.inf, dtype=np.float32)
    chosen = [int(start)]
    for _ in range(k - 1):
        c = chosen[-1]
        np.maximum(maxsim, X @ X[c], out=maxsim)
        maxsim[c] = np.inf
        chosen.append(int(np.argmin(maxsim)))
    return np.asarray(chosen, dtype=np.int64)


def _argmin_lowest_index(values: np.ndarray, index: np.ndarray) -> int:
    m = values.min()
    return int(index[values == m].min()), float(m)


def farthest_point(X: np.ndarray, k: int, *, start: int | None = None,
                   prior: np.ndarray | None = None, rng=None, front: int | None = None,
                   block: int = 65536, stats: dict | None = None) -> np.ndarray:
    """Blocked greedy k-center. See the module docstring.

    Parameters
    ----------
    X : (n, d) float32 unit vectors.
    k : picks to make.
    start : first pick when there is no ``prior``; random (from ``rng``) if None.
    prior : (m, d) vectors already chosen (warm start): picks fill their gaps.
    front : number of front-runners kept exact between full passes
        (default: adaptive, starting at ``max(256, 8 k)`` capped at n).
    block : rows per chunk of a full pass (memory: ``block x pending`` floats).
    stats : if a dict, receives ``passes`` and ``front`` for benchmarks.

    Examples
    --------
    >>> angles = np.deg2rad([0, 20, 100, 180, 250])  # points on a circle
    >>> X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    >>> farthest_point(X, 3, start=0)
    array([0, 3, 2])
    >>> farthest_point(X, 2, prior=X[[0, 3]])  # 0 and 180 already drawn
    array([2, 4])

    It agrees with the reference loop on a larger pool:

    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((500, 16)).astype(np.float32)
    >>> Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    >>> np.array_equal(farthest_point(Y, 20, start=7, front=32), naive_farthest(Y, 20, 7))
    True
    """
    n = len(X)
    maxsim = np.full(n, -np.inf, dtype=np.float32)
    chosen: list[int] = []
    pending: list[int] = []
    if prior is not None and len(prior):
        for s in range(0, len(prior), 256):
            max_similarity(X, prior[s:s + 256], out=maxsim, block=block)
    else:
        first = int(rng.integers(n)) if start is None else int(start)
        chosen.append(first)
        pending.append(first)
    L = min(n, front or max(256, 8 * k))
    passes = 0
    while len(chosen) < k:
        if pending:
            max_similarity(X, X[pending], out=maxsim, block=block)
            passes += 1
            pending = []
        maxsim[chosen] = np.inf
        if L >= n:
            F = np.arange(n)
            T = np.inf
        else:
            part = np.argpartition(maxsim, L)
            F, T = part[:L], float(maxsim[part[L]])
        XF = X[F]
        fs = maxsim[F].copy()
        made = 0
        while len(chosen) < k:
            pick, val = _argmin_lowest_index(fs, F)
            if not val < T:  # cannot be sure nobody outside F is better
                break
            chosen.append(pick)
            pending.append(pick)
            made += 1
            np.maximum(fs, XF @ X[pick], out=fs)
            fs[F == pick] = np.inf
        if made < 4 and L < n:  # ties at the threshold, or too few picks per pass
            L = min(n, L * 2)  # widen the front
    if stats is not None:
        stats.update(passes=passes, front=L)
    return np.asarray(chosen[:k], dtype=np.int64)


def farthest(X, k, *, rng, prior=None, attributes=None, start=None, front=None, device="auto"):
    """Greedy k-center via :func:`farthest_point`; ``rng`` picks the start
    when neither ``start`` nor ``prior`` is given. ``device`` picks numpy or
    the torch twin (:mod:`persona_index.kernels`), which makes the same picks.

    Examples
    --------
    >>> angles = np.deg2rad([0, 20, 100, 180, 250])  # points on a circle
    >>> X = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    >>> farthest(X, 3, rng=np.random.default_rng(0), start=0)
    array([0, 3, 2])
    >>> len(set(farthest(X, 5, rng=np.random.default_rng(1)).tolist()))
    5
    """
    from ..kernels import resolve_device

    dev = resolve_device(device, X.size)
    if dev != "numpy":
        from ..kernels import farthest_point_torch

        return farthest_point_torch(X, k, start=start, prior=prior, rng=rng, front=front,
                                    device=dev)
    return farthest_point(X, k, start=start, prior=prior, rng=rng, front=front)
