"""blend: a diversity/representativeness blend.

Each pick maximises ``(1 - lam) * g + lam * d``, where ``g`` is the pick's
gain in soft facility location (how much better the pool is represented,
with the kernel ``exp((cos - 1) / tau)``, normalised by the best gain of the
step) and ``d`` its distance to the nearest persona already chosen
(normalised likewise: the farthest-point criterion). ``lam = 0`` is soft
facility location (representative), ``lam = 1`` is farthest-point
(diverse). Candidates and clients are seeded subsamples of at most
``sample_size`` rows for large pools; ties break by a seeded jitter.
"""

from __future__ import annotations

import numpy as np

from ..errors import SamplingError

SAMPLE = 4096


def blend(X, k, *, rng, prior=None, attributes=None, lam=0.45, tau=0.3, sample_size=SAMPLE):
    """Blended greedy selection (see the module docstring).

    Examples
    --------
    ``lam=0`` starts from the most representative persona; ``lam=1``, pure
    farthest-point, reaches both outliers within three picks:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> int(blend(X, 1, rng=np.random.default_rng(0), lam=0.0)[0]) < 8
    True
    >>> {8, 9} <= set(blend(X, 3, rng=np.random.default_rng(0), lam=1.0).tolist())
    True
    >>> blend(X, 2, rng=np.random.default_rng(0), lam=1.5)
    Traceback (most recent call last):
    ...
    persona_index.errors.SamplingError: lam must be in [0, 1], got 1.5
    """
    if not 0.0 <= lam <= 1.0:
        raise SamplingError(f"lam must be in [0, 1], got {lam!r}")
    if tau <= 0:
        raise SamplingError(f"tau must be positive, got {tau!r}")
    n = len(X)
    cand = np.arange(n) if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
    if len(cand) < k:
        extra = np.setdiff1d(np.arange(n), cand)
        cand = np.sort(np.concatenate([cand, rng.choice(extra, k - len(cand), replace=False)]))
    clients = cand if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
    Xc = X[cand]
    S = np.exp((Xc @ X[clients].T - 1.0) / tau)  # (candidates, clients), in (0, 1]
    cur = np.zeros(len(clients), dtype=S.dtype)
    mind = np.full(len(cand), 2.0, dtype=np.float32)
    if prior is not None:
        cur = np.maximum(cur, np.exp((prior @ X[clients].T - 1.0) / tau).max(axis=0))
        mind = np.minimum(mind, 1.0 - (Xc @ prior.T).max(axis=1))
    jitter = rng.random(len(cand)) * 1e-9
    chosen = np.zeros(len(cand), dtype=bool)
    picks = []
    # each candidate's gain, kept up to date incrementally: a pick changes only
    # the clients it now serves best, so only those columns are re-read
    g = np.maximum(S - cur, 0).sum(axis=1, dtype=np.float64)
    for _ in range(k):
        gmax, dmax = g[~chosen].max(), mind[~chosen].max()
        score = (1 - lam) * g / (gmax if gmax > 0 else 1) + lam * mind / (dmax if dmax > 0 else 1)
        score = score + jitter
        score[chosen] = -np.inf
        c = int(np.argmax(score))
        chosen[c] = True
        picks.append(c)
        new = np.maximum(cur, S[c])
        ch = np.flatnonzero(new > cur)
        if len(ch):
            Sc = S[:, ch]
            g -= (np.maximum(Sc - cur[ch], 0) - np.maximum(Sc - new[ch], 0)).sum(
                axis=1, dtype=np.float64)
            np.maximum(g, 0, out=g)
        cur = new
        np.minimum(mind, 1.0 - Xc @ Xc[c], out=mind)
    return cand[np.asarray(picks, dtype=np.int64)]
