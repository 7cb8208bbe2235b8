"""medoids: density-weighted facility location with a spread term.

The curation default (``curate`` keeps K of M x K generated outputs). Its two
targets are what the ``curation`` benchmark scores against uniform
selections from the whole pool: *representativeness* (the mean cosine
distance from every output to its nearest kept one: the k-medoids objective)
and *diversity* (Vendi).

Each pick maximises ``z(g) + spread * z(d) + bonus``:

* ``g`` is the pick's gain in weighted facility location,
  ``sum_c w_c max_{s in S} cos(c, s)`` over the rows as clients, with
  ``w_c = mu_c ** gamma``, ``mu_c`` the row's mean kernel value
  ``exp((cos - 1) / tau)`` over the rows (its typicality, as in herding).
  The rows ``curate`` sees were drawn to cover persona space, so they
  over-represent sparse regions of the pool; weighting typical rows up
  corrects for that (``gamma = 0``: plain facility location);
* ``d`` is its distance to the nearest row already chosen (farthest-point);
* both are z-scored over the rows not yet chosen; the first pick takes the
  largest gain; ``bonus`` is an optional per-row term (``curate`` puts
  ``w * z(score)`` there).

Gains are updated incrementally (a pick changes only the clients it now
serves best), so a step costs O(n x changed clients). Pools above
``sample_size`` rows use a seeded subsample as candidates and clients; below
it nothing is random and ties break by the lowest index. Best-swap
refinement (PAM) was tried on the tuning half and dropped: it fits the
clients at hand and lowered representativeness of the pool at small k.
"""

from __future__ import annotations

import numpy as np


SAMPLE = 2048


def _z(v: np.ndarray, free: np.ndarray) -> np.ndarray:
    f = v[free]
    sd = f.std()
    return (v - f.mean()) / (sd if sd > 0 else 1.0)


def typicality(S: np.ndarray, tau: float) -> np.ndarray:
    """Each row's mean kernel value ``exp((S - 1) / tau)`` over the columns.

    Examples
    --------
    >>> typicality(np.eye(2), 1.0).round(3)  # itself (1) and one orthogonal row (e^-1)
    array([0.684, 0.684])
    """
    return np.exp((np.asarray(S, dtype=np.float64) - 1.0) / tau).mean(axis=1)


def weighted_facility(S: np.ndarray, k: int, *, weights: np.ndarray | None = None,
                      spread: float = 0.75, bonus: np.ndarray | None = None,
                      X: np.ndarray | None = None) -> np.ndarray:
    """Greedy weighted facility location with a spread term (see the module
    docstring). ``S`` is the (clients, candidates) similarity matrix; when it
    is not square (clients a subsample), ``X`` holds the candidates' vectors
    for the spread term. Assumes ``1 <= k <= S.shape[1]``.

    Examples
    --------
    Three tight clusters of 6, 3 and 2 rows: three picks, one per cluster,
    the largest cluster first:

    >>> rng = np.random.default_rng(1)
    >>> lab = np.repeat([0, 1, 2], [6, 3, 2])
    >>> X = np.eye(4)[lab] + 0.05 * rng.standard_normal((11, 4))
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> lab[weighted_facility(X @ X.T, 3)].tolist()
    [0, 1, 2]
    """
    S = np.asarray(S, dtype=np.float32)
    c, n = S.shape
    w = np.ones(c, dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
    cur = np.full(c, float(S.min()), dtype=np.float32)  # each client's best similarity so far
    gain = (np.maximum(S - cur[:, None], 0.0) * w[:, None]).sum(axis=0, dtype=np.float64)
    dmin = np.full(n, np.inf)
    free = np.ones(n, dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    for t in range(k):
        score = _z(gain, free)
        if t:
            score += spread * _z(dmin, free)
        if bonus is not None:
            score += bonus
        score[~free] = -np.inf
        p = int(np.argmax(score))
        picks[t] = p
        free[p] = False
        new = np.maximum(cur, S[:, p])
        ch = np.flatnonzero(new > cur)
        if len(ch):  # only the clients p now serves best change anyone's gain
            D = S[ch]
            D -= cur[ch, None]
            np.clip(D, 0.0, (new - cur)[ch, None], out=D)  # max(S-cur,0) - max(S-new,0)
            gain -= (w[ch] @ D).astype(np.float64)
            np.maximum(gain, 0.0, out=gain)
        cur = new
        sim_p = S[:, p] if X is None else X @ X[p]
        np.minimum(dmin, 1.0 - sim_p, out=dmin)
    return picks


def medoids(X, k, *, rng, prior=None, attributes=None, spread=0.75, gamma=0.5, tau=0.2,
            sample_size=SAMPLE):
    """Density-weighted facility location with a spread term (see the module
    docstring); ``prior`` is ignored (each batch stands alone).

    Examples
    --------
    A cluster of eight and two outliers: the first pick represents the
    cluster; then each outlier, which nothing chosen represents, comes next;
    the fourth pick is back in the cluster:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> medoids(X, 4, rng=np.random.default_rng(0)).tolist()
    [0, 8, 9, 2]
    """
    return medoids_select(X, k, rng=rng, spread=spread, gamma=gamma, tau=tau,
                          sample_size=sample_size)


def medoids_select(X, k, *, rng, spread=0.75, gamma=0.5, tau=0.2, sample_size=SAMPLE,
                   bonus=None):
    """:func:`medoids` with ``bonus``, a per-row term added to each pick's
    criterion (``curate``'s score). Assumes valid input.

    Examples
    --------
    A large enough bonus on one row makes it the first pick:

    >>> X = np.eye(4, dtype=np.float32)
    >>> int(medoids_select(X, 1, rng=None, bonus=np.array([0, 0, 5.0, 0]))[0])
    2
    """
    rng = np.random.default_rng(rng)
    n = len(X)
    same = n <= sample_size  # candidates and clients are the same rows
    if same:
        cand = clients = np.arange(n)
    else:  # large pools: seeded subsamples (candidates: at least k of them)
        m = max(sample_size, k)
        cand = np.arange(n) if m >= n else np.sort(rng.choice(n, m, replace=False))
        clients = np.sort(rng.choice(n, sample_size, replace=False))
    Xc, Xk = X[cand], X[clients]
    S = Xk @ Xc.T  # (clients, candidates)
    w = None
    if gamma:
        w = typicality(S if same else Xk @ Xk.T, tau) ** gamma
        w /= w.mean()
    b = None if bonus is None else np.asarray(bonus, dtype=np.float64)[cand]
    return cand[weighted_facility(S, k, weights=w, spread=spread, bonus=b,
                                  X=None if same else Xc)]
