"""facility: greedy facility location, the representative end of the frontier.

Maximises ``sum_i max_{j in S} sim(i, j)`` over clients i: each pick is the
persona that most raises how well the whole pool is represented (a k-medoids
flavour; (1 - 1/e)-approximate by submodularity). For large pools the
clients and the candidates are seeded random subsamples of at most
``sample_size`` rows each, so one step costs ``sample_size**2`` rather than
``N**2``.
"""

from __future__ import annotations

import heapq

import numpy as np


SAMPLE = 4096


def facility(X, k, *, rng, prior=None, attributes=None, sample_size=SAMPLE):
    """Greedy facility location (see the module docstring); ``rng`` draws the
    subsamples of pools over ``sample_size`` rows.

    Examples
    --------
    The single most representative persona sits in the cluster; three picks
    also represent each outlier by itself:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> int(facility(X, 1, rng=np.random.default_rng(0))[0]) < 8
    True
    >>> sorted(facility(X, 3, rng=np.random.default_rng(0)).tolist())[1:]
    [8, 9]
    """
    n = len(X)
    cand = np.arange(n) if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
    if len(cand) < k:  # need at least k candidates
        extra = np.setdiff1d(np.arange(n), cand)
        cand = np.sort(np.concatenate([cand, rng.choice(extra, k - len(cand), replace=False)]))
    clients = np.arange(n) if n <= sample_size else np.sort(rng.choice(n, sample_size, replace=False))
    S = X[cand] @ X[clients].T  # (candidates, clients)
    cur = np.full(len(clients), -1.0, dtype=np.float32)
    if prior is not None:
        cur = np.maximum(cur, (prior @ X[clients].T).max(axis=0))
    # lazy greedy: a candidate's gain only shrinks as picks are made
    # (submodularity), so a stale gain is an upper bound; re-evaluate only the
    # current leader until it stays in the lead. Ties go to the lower index.
    gains = np.maximum(S - cur, 0).sum(axis=1, dtype=np.float64)
    heap = [(-g, i) for i, g in enumerate(gains.tolist())]
    heapq.heapify(heap)
    picks = []
    while len(picks) < k:
        neg, c = heapq.heappop(heap)
        fresh = float(np.maximum(S[c] - cur, 0).sum(dtype=np.float64))
        if not heap or fresh >= -heap[0][0] - 1e-12:
            picks.append(c)
            np.maximum(cur, S[c], out=cur)
        else:
            heapq.heappush(heap, (-fresh, c))
    return cand[np.asarray(picks, dtype=np.int64)]
