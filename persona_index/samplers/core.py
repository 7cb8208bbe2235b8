"""core-farthest: farthest-point traversal over the dense core of the pool.

Farthest-point alone buys diversity by picking outliers, which makes a batch
less representative than a uniform one; representative methods (k-medoids,
facility location) do the reverse. Restricting the traversal to the personas
whose neighbourhoods are densest (dropping the ``trim`` share with the
largest k-NN distance, as estimated by :func:`density.knn_distance`) keeps
the spread and loses the outliers. On the Persona Hub persona -> output pairs
it was the setting chosen on a tuning half in the first transfer study, but
on the reporting half it did not beat uniform selection on both output
diversity and output representativeness (see the README's benchmark section).
"""

from __future__ import annotations

import numpy as np

from ..errors import SamplingError
from .density import knn_distance
from .farthest import farthest_point


def dense_core(X: np.ndarray, trim: float, *, n_neighbors: int = 10, reference: int | None = None,
               rng=None) -> np.ndarray:
    """Indices of the ``1 - trim`` share of rows with the smallest k-NN distance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> dense_core(X, 0.2, n_neighbors=3)  # the outliers are the trimmed 20%
    array([0, 1, 2, 3, 4, 5, 6, 7])
    >>> len(dense_core(X, 0.0))
    10
    """
    if not 0.0 <= trim < 1.0:
        raise SamplingError(f"trim must be in [0, 1), got {trim!r}")
    n = len(X)
    if trim == 0.0:
        return np.arange(n)
    r = knn_distance(X, n_neighbors, reference=reference, rng=rng)
    keep = max(1, int(round(n * (1.0 - trim))))
    return np.sort(np.argsort(r, kind="stable")[:keep])


def core_farthest(X, k, *, rng, prior=None, attributes=None, trim=0.5, n_neighbors=10,
                  reference=None):
    """Farthest-point traversal over :func:`dense_core` (see the module docstring).

    Examples
    --------
    Plain farthest-point picks an outlier; over the dense core it spreads
    within the cluster:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> from persona_index.samplers.farthest import farthest
    >>> bool((farthest(X, 2, rng=np.random.default_rng(0)) >= 8).any())
    True
    >>> idx = core_farthest(X, 2, rng=np.random.default_rng(0), trim=0.2, n_neighbors=3)
    >>> bool((idx < 8).all()), len(set(idx.tolist()))
    (True, 2)
    """
    core = dense_core(X, trim, n_neighbors=n_neighbors, reference=reference, rng=rng)
    if len(core) < k:  # a small pool: widen the core to what k needs
        r = knn_distance(X, n_neighbors, reference=reference, rng=rng)
        core = np.sort(np.argsort(r, kind="stable")[:k])
    return core[farthest_point(X[core], k, prior=prior, rng=rng)]
