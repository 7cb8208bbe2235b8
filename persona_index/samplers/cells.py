"""cells: strata from the embedding itself, for pools without attributes.

k-means on the vectors (or a seeded subsample of them) defines ``n_cells``
cells. Its seeds are a farthest-point traversal rather than k-means++: D^2
sampling puts most seeds into the big clusters and leaves small, distant
groups without a cell of their own, which defeats the purpose here. The batch
is then drawn evenly across cells, the batch is drawn evenly across cells in a seeded
random order, one persona per cell per round, uniformly within a cell. Cells
already hit by earlier batches (``prior``) come last.

These are not the cells of the cell-coverage metric (a PCA grid with its own
seed and resolution), so the strategy does not grade itself.
"""

from __future__ import annotations

import numpy as np

from .farthest import farthest_point

FIT_SAMPLE = 20000
#: cells when n_cells is not given: one per pick, at most this many (k-means
#: cost grows with cells x fit rows; a larger batch takes several per cell)
MAX_DEFAULT_CELLS = 4096


def fit_cells(X: np.ndarray, n_cells: int, rng, iters: int = 10, fit_sample: int = FIT_SAMPLE):
    """Centroids (unit-normalised) from k-means on a subsample of X.

    Examples
    --------
    Three clusters of unequal size (10, 5, 2) get a centroid each:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], [10, 5, 2])
    >>> X = np.eye(3)[labels] + 0.05 * rng.standard_normal((17, 3))
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> cent = fit_cells(X, 3, np.random.default_rng(0))
    >>> cent.shape, np.linalg.norm(cent, axis=1).round(3).tolist()
    ((3, 3), [1.0, 1.0, 1.0])
    >>> cell = assign(X, cent)
    >>> [len(set(cell[labels == c].tolist())) for c in range(3)], len(set(cell.tolist()))
    ([1, 1, 1], 3)
    """
    import warnings

    from scipy.cluster.vq import kmeans2

    n = len(X)
    fit = X if n <= fit_sample else X[np.sort(rng.choice(n, fit_sample, replace=False))]
    n_cells = min(n_cells, len(fit))
    seeds = farthest_point(fit, n_cells, rng=rng)
    with warnings.catch_warnings():  # an emptied cluster keeps its seed: fine here
        warnings.simplefilter("ignore")
        cent, _ = kmeans2(fit.astype(np.float64), fit[seeds].astype(np.float64), iter=iters,
                          minit="matrix")
    cent = cent.astype(np.float32)
    norms = np.linalg.norm(cent, axis=1, keepdims=True)
    return cent / np.where(norms > 0, norms, 1)


def assign(X: np.ndarray, centroids: np.ndarray, block: int = 65536) -> np.ndarray:
    """Index of each row's most similar centroid (chunked by ``block`` rows).

    Examples
    --------
    >>> I = np.eye(3, dtype=np.float32)
    >>> assign(I, I[[2, 0, 1]])
    array([1, 2, 0])
    """
    out = np.empty(len(X), dtype=np.int64)
    CT = np.ascontiguousarray(centroids.T)
    for s in range(0, len(X), block):
        out[s:s + block] = (X[s:s + block] @ CT).argmax(axis=1)
    return out


def cells(X, k, *, rng, prior=None, attributes=None, n_cells=None):
    """``k`` rows drawn evenly across k-means cells (see the module docstring).

    Examples
    --------
    Three picks from clusters of 10, 5 and 2 personas take one from each:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], [10, 5, 2])
    >>> X = np.eye(3)[labels] + 0.05 * rng.standard_normal((17, 3))
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> idx = cells(X, 3, rng=np.random.default_rng(0))
    >>> sorted(labels[idx].tolist())
    [0, 1, 2]
    """
    n = len(X)
    centroids = fit_cells(X, n_cells or min(k, MAX_DEFAULT_CELLS), rng)
    lab = assign(X, centroids)
    C = len(centroids)
    cell_order = rng.permutation(C)
    if prior is not None:
        hit = np.zeros(C, dtype=bool)
        hit[assign(prior, centroids)] = True
        cell_order = np.concatenate([cell_order[~hit[cell_order]], cell_order[hit[cell_order]]])
    # shuffle members, then rank each member within its cell: round r takes rank r
    perm = rng.permutation(n)
    lab_p = lab[perm]
    order = np.argsort(lab_p, kind="stable")
    sizes = np.bincount(lab_p, minlength=C)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, sizes)
    cell_pos = np.empty(C, dtype=np.int64)
    cell_pos[cell_order] = np.arange(C)
    key = rank * C + cell_pos[lab_p]
    take = np.argpartition(key, k - 1)[:k] if k < n else np.arange(n)
    return perm[take]
