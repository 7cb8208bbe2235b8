"""Coverage metrics: how well a sample covers the pool it came from.

Array in, numbers out; every function takes unit vectors (float32) and
is deterministic (the only randomness, the k-NN coverage reference set and
the PCA fit subsample, uses fixed seeds of its own, independent of any
sampler's seed). Distances are cosine distances, ``1 - x . y``.

* cell coverage: PCA of the pool to ``dims`` components (fitted on at most
  50,000 pool rows, seed 12345), each cut at the pool's quantiles into
  ``bins`` bins: ``bins ** dims`` cells (256 by default) of roughly equal
  pool mass whatever N. Coverage = occupied pool cells the sample hits /
  occupied pool cells; mass coverage = share of pool personas in a hit cell.
* k-NN coverage (Naeem et al. 2020): a reference of pool rows, as many as the
  sample (seed 54321); each reference row gets the ball reaching its k-th
  nearest reference neighbour; coverage = share of balls holding a sample row.
* k-center radius: the largest distance from a pool persona to its nearest
  sampled persona, and the mean of that distance (representativeness).
* Vendi score: exp of the entropy of the eigenvalues of K/n, computed from the
  d x d form X^T X / n (same non-zero spectrum, cheap for large samples).
* mean pairwise cosine distance, from the sum vector (O(n d)).
* attribute balance: per attribute, entropy of the sample's values normalised
  by log(number of values in the pool); and, for a target distribution, the
  total variation and Jensen-Shannon divergence (base 2) from it.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

PCA_SEED = 12345
KNN_SEED = 54321
#: which way each metric of :func:`coverage_report` is better: +1 higher, -1 lower
BETTER = {"cell_coverage": +1, "cell_mass_coverage": +1, "knn_coverage": +1,
          "kcenter_radius": -1, "mean_nearest_distance": -1, "vendi": +1,
          "mean_pairwise_distance": +1}


def _dist_to_nearest(P: np.ndarray, S: np.ndarray, block: int = 16384) -> np.ndarray:
    """Cosine distance from each row of P to its nearest row of S."""
    out = np.empty(len(P), dtype=np.float32)
    ST = np.ascontiguousarray(S.T)
    for s in range(0, len(P), block):
        out[s:s + block] = 1.0 - (P[s:s + block] @ ST).max(axis=1)
    return np.maximum(out, 0.0)


def kcenter_radius(sample: np.ndarray, pool: np.ndarray) -> tuple[float, float]:
    """(max, mean) over the pool of the distance to the nearest sampled persona.

    Examples
    --------
    Sampling one of three orthogonal personas leaves the other two at
    distance 1:

    >>> pool = np.eye(3, dtype=np.float32)
    >>> r_max, r_mean = kcenter_radius(pool[:1], pool)
    >>> r_max, round(r_mean, 3)
    (1.0, 0.667)
    >>> kcenter_radius(pool, pool)
    (0.0, 0.0)
    """
    d = _dist_to_nearest(pool, sample)
    return float(d.max()), float(d.mean())


def vendi_score(X: np.ndarray) -> float:
    """Vendi score with the cosine kernel (rows of X unit vectors).

    The effective number of distinct items: n orthogonal rows score n,
    n copies of one row score 1. Computed from the smaller of the n x n Gram
    matrix and the d x d second-moment matrix (the same non-zero spectrum),
    so small sets (the bootstrap subsamples of ``outputs-report``) cost
    little.

    Examples
    --------
    >>> round(vendi_score(np.eye(3)), 3)
    3.0
    >>> round(vendi_score(np.tile([[1.0, 0.0]], (4, 1))), 3)
    1.0
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n == 0:
        return 0.0
    C = X @ X.T / n if n < X.shape[1] else X.T @ X / n
    lam = np.linalg.eigvalsh(C)
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    return float(np.exp(-(lam * np.log(lam)).sum()))


def mean_pairwise_distance(X: np.ndarray) -> float:
    """Mean cosine distance over distinct pairs (unit rows), in O(n d).

    Examples
    --------
    >>> mean_pairwise_distance(np.eye(3))
    1.0
    >>> mean_pairwise_distance(np.array([[1.0, 0.0], [-1.0, 0.0]]))  # opposite rows
    2.0
    >>> mean_pairwise_distance(np.eye(3)[:1])  # no pairs
    0.0
    """
    n = len(X)
    if n < 2:
        return 0.0
    s = X.astype(np.float64).sum(axis=0)
    norms = (np.asarray(X, dtype=np.float64) ** 2).sum()
    mean_sim = (s @ s - norms) / (n * (n - 1))
    return float(1.0 - mean_sim)


class CellGrid:
    """The PCA grid of the cell-coverage metric, fitted once on a pool.

    Fit it once and pass it as ``grid=`` to score many samples of one pool.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = rng.standard_normal((200, 8)).astype(np.float32)
    >>> pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    >>> grid = CellGrid(pool, dims=2, bins=2)  # 2 ** 2 = 4 cells
    >>> grid.occupied
    array([0, 1, 2, 3])
    >>> grid.coverage(pool)  # (share of cells hit, share of pool mass in them)
    (1.0, 1.0)
    >>> grid.coverage(pool[:1])[0]
    0.25
    """

    def __init__(self, pool: np.ndarray, dims: int = 4, bins: int = 4, fit_rows: int = 50000):
        rng = np.random.default_rng(PCA_SEED)
        fit = pool if len(pool) <= fit_rows else pool[np.sort(rng.choice(len(pool), fit_rows, replace=False))]
        fit = fit.astype(np.float64)
        self.mean = fit.mean(axis=0)
        # the top right-singular vectors of the centred rows, as eigenvectors
        # of their d x d scatter matrix: the same directions as an SVD (cosine
        # 1 - 1e-15 on 5,000 x 384) at a twentieth of the time
        centred = fit - self.mean
        _, vecs = np.linalg.eigh(centred.T @ centred)
        vt = vecs[:, ::-1].T[:min(len(fit), fit.shape[1])]
        self.components = vt[:dims].astype(np.float32)
        # sign convention so the grid is the same on every machine
        signs = np.sign(self.components[np.arange(len(self.components)),
                                        np.abs(self.components).argmax(axis=1)])
        self.components *= signs[:, None]
        self.dims, self.bins = len(self.components), bins
        proj = self.project(fit.astype(np.float32))
        qs = np.linspace(0, 1, bins + 1)[1:-1]
        self.edges = np.quantile(proj, qs, axis=0).T  # (dims, bins-1)
        self.pool_cells = self.cells(pool)
        self.occupied = np.unique(self.pool_cells)

    def project(self, X):
        return (X - self.mean.astype(np.float32)) @ self.components.T

    def cells(self, X, block: int = 65536) -> np.ndarray:
        out = np.empty(len(X), dtype=np.int64)
        for s in range(0, len(X), block):
            p = self.project(X[s:s + block])
            code = np.zeros(len(p), dtype=np.int64)
            for j in range(self.dims):
                code = code * self.bins + np.searchsorted(self.edges[j], p[:, j], side="right")
            out[s:s + block] = code
        return out

    def coverage(self, sample: np.ndarray) -> tuple[float, float]:
        hit = np.unique(self.cells(sample))
        frac = len(np.intersect1d(hit, self.occupied)) / len(self.occupied)
        mass = float(np.isin(self.pool_cells, hit).mean())
        return float(frac), mass


def cell_coverage(sample: np.ndarray, pool: np.ndarray, dims: int = 4, bins: int = 4,
                  grid: CellGrid | None = None) -> float:
    """Fraction of the pool's occupied PCA-grid cells that the sample hits.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = rng.standard_normal((200, 8)).astype(np.float32)
    >>> pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    >>> cell_coverage(pool, pool)
    1.0
    >>> cell_coverage(pool[:1], pool, dims=2, bins=2)  # one persona, one cell of four
    0.25
    """
    return (grid or CellGrid(pool, dims, bins)).coverage(sample)[0]


def knn_coverage(sample: np.ndarray, pool: np.ndarray, k: int = 5,
                 reference: np.ndarray | None = None) -> float:
    """Naeem et al. (2020) coverage with a size-matched reference from the pool.

    Examples
    --------
    A pool clustered around one direction; a sample from the opposite side
    covers none of it:

    >>> rng = np.random.default_rng(0)
    >>> pool = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((20, 3))
    >>> pool = (pool / np.linalg.norm(pool, axis=1, keepdims=True)).astype(np.float32)
    >>> knn_coverage(pool, pool)
    1.0
    >>> knn_coverage(-pool, pool)
    0.0
    """
    if reference is None:
        return _knn_with(_knn_reference(pool, len(sample), k), sample)
    return _knn_with(_knn_balls(reference, k), sample)


def _knn_reference(pool: np.ndarray, n: int, k: int):
    """The size-``n`` reference rows of ``pool`` (seed :data:`KNN_SEED`) and their balls."""
    rng = np.random.default_rng(KNN_SEED)
    rows = pool[rng.choice(len(pool), size=min(n, len(pool)), replace=False)]
    return _knn_balls(rows.astype(np.float32, copy=False), k)


def _knn_balls(reference: np.ndarray, k: int):
    """``(reference, radius)``: each reference row's distance to its k-th
    nearest other reference row (radius None when there are too few rows)."""
    m = len(reference)
    kk = min(k, m - 1)
    if kk < 1:
        return reference, None
    sims = reference @ reference.T
    np.fill_diagonal(sims, -np.inf)
    kth = np.partition(sims, m - kk, axis=1)[:, m - kk]  # k-th largest similarity
    return reference, 1.0 - kth


def _knn_with(balls, sample: np.ndarray) -> float:
    reference, radius = balls
    if radius is None:
        return float("nan")
    nearest = _dist_to_nearest(reference, sample)
    return float((nearest <= radius + 1e-7).mean())


def normalized_entropy(values: Sequence, categories: Sequence | None = None) -> float:
    """Entropy of the value distribution / log(number of categories).

    Examples
    --------
    >>> normalized_entropy(["a", "b", "a", "b"])
    1.0
    >>> round(normalized_entropy(["a", "a", "a", "b"]), 3)
    0.811
    >>> normalized_entropy(["a", "b"], categories=["a", "b", "c", "d"])  # half the categories
    0.5
    """
    vals = np.asarray(["(none)" if v is None else str(v) for v in values], dtype=object)
    cats = np.unique(vals.astype(str)) if categories is None else np.asarray(list(categories))
    if len(cats) <= 1:
        return 1.0
    _, counts = np.unique(vals.astype(str), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(cats)))


def divergence_from_target(values: Sequence, target: Mapping[str, float]) -> dict:
    """Total variation and Jensen-Shannon divergence (bits) of the sample's value
    distribution from a target (values the target does not name count as
    target mass 0, after the named weights are normalised).

    Examples
    --------
    >>> divergence_from_target(["a", "b"], {"a": 1, "b": 1})
    {'tv': 0.0, 'js': 0.0}
    >>> divergence_from_target(["a", "a"], {"b": 1.0})  # disjoint: the maximum
    {'tv': 1.0, 'js': 1.0}
    >>> d = divergence_from_target(["a", "a", "a", "b"], {"a": 0.5, "b": 0.5})
    >>> round(d["tv"], 3), round(d["js"], 3)
    (0.25, 0.049)
    """
    vals = np.asarray(["(none)" if v is None else str(v) for v in values], dtype=object).astype(str)
    keys = sorted(set(vals) | set(target))
    tot = sum(target.values()) or 1.0
    q = np.array([target.get(k, 0.0) / tot for k in keys])
    p = np.array([(vals == k).mean() for k in keys])
    m = (p + q) / 2

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return {"tv": float(0.5 * np.abs(p - q).sum()), "js": 0.5 * kl(p, m) + 0.5 * kl(q, m)}


def coverage_report(sample_idx: Sequence[int], pool: np.ndarray, *,
                    attributes: Mapping[str, Sequence] | None = None,
                    targets: Mapping[str, Mapping[str, float]] | None = None,
                    grid: CellGrid | None = None, knn_k: int = 5) -> dict:
    """Every metric for a sample (indices into ``pool``).

    ``attributes`` (name -> length-n column) adds ``attribute_balance``;
    ``targets`` (name -> value -> weight, over those attributes) adds
    ``target_divergence``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = rng.standard_normal((200, 8)).astype(np.float32)
    >>> pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    >>> groups = ["a", "b", "c", "d"] * 50
    >>> rep = coverage_report(range(0, 200, 10), pool, attributes={"group": groups},
    ...                       targets={"group": {"a": 1, "b": 1}})
    >>> rep["n"], rep["pool"], round(rep["knn_coverage"], 3)
    (20, 200, 0.95)
    >>> rep["attribute_balance"]  # rows 0, 10, 20, ...: only groups a and c
    {'group': 0.5}
    >>> rep["target_divergence"]
    {'group': {'tv': 0.5, 'js': 0.5}}
    >>> full = coverage_report(range(200), pool)
    >>> full["cell_coverage"], round(full["kcenter_radius"], 4)
    (1.0, 0.0)
    """
    return coverage_reports([sample_idx], pool, attributes=attributes, targets=targets,
                            grid=grid, knn_k=knn_k)[0]


#: the most float32 cells one block of the pool-by-samples product may hold (64 MiB)
PRODUCT_BLOCK_CELLS = 1 << 24


def _nearest_per_batch(pool: np.ndarray, samples: Sequence[np.ndarray], progress=None):
    """Per batch, the cosine distance from each pool row to its nearest row
    of that batch: one product of the pool with every batch side by side,
    in blocks of pool rows so that a block holds at most
    :data:`PRODUCT_BLOCK_CELLS` similarities."""
    from .threads import blas_limit

    S = np.ascontiguousarray(np.concatenate(samples).T)
    bounds = np.cumsum([0] + [len(s) for s in samples])
    out = np.empty((len(samples), len(pool)), dtype=np.float32)
    block = max(1, PRODUCT_BLOCK_CELLS // max(1, S.shape[1]))
    with blas_limit(float(len(pool)) * S.shape[0] * S.shape[1]):
        for s in range(0, len(pool), block):
            sims = pool[s:s + block].astype(np.float32, copy=False) @ S
            for j in range(len(samples)):
                out[j, s:s + block] = 1.0 - sims[:, bounds[j]:bounds[j + 1]].max(axis=1)
            if progress is not None:
                progress(min(block, len(pool) - s))
    return np.maximum(out, 0.0)


def coverage_reports(batches: Sequence[Sequence[int]], pool: np.ndarray, *,
                     attributes: Mapping[str, Sequence] | None = None,
                     targets: Mapping[str, Mapping[str, float]] | None = None,
                     grid: CellGrid | None = None, knn_k: int = 5, progress=None) -> list[dict]:
    """:func:`coverage_report` of several batches of one pool: the PCA grid
    is fitted once, the k-center distances come from one blocked product of
    the pool with all batches (bounded memory), the k-NN reference balls once
    per batch size. ``progress``, if given, is called with a number of pool
    rows done (the product's blocks).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = rng.standard_normal((300, 8)).astype(np.float32)
    >>> pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    >>> a, b = coverage_reports([range(0, 300, 10), range(30)], pool)
    >>> a == coverage_report(range(0, 300, 10), pool), b == coverage_report(range(30), pool)
    (True, True)
    """
    from .threads import blas_limit

    idxs = [np.asarray(b, dtype=np.int64) for b in batches]
    if grid is None:
        with blas_limit(float(min(len(pool), 50000)) * pool.shape[1] ** 2):
            grid = CellGrid(pool)
    # a float16 pool (the half-size warm matrix) is converted a block or a
    # batch at a time, never whole: numpy has no float16 BLAS path
    samples = [pool[i].astype(np.float32, copy=False) for i in idxs]
    nearest = _nearest_per_batch(pool, samples, progress)
    cols = {name: np.asarray(col, dtype=object) for name, col in (attributes or {}).items()}
    cats = {name: np.unique(np.asarray(["(none)" if v is None else str(v) for v in col]))
            for name, col in cols.items()}
    refs: dict = {}
    reports = []
    for idx, S, d in zip(idxs, samples, nearest):
        n = len(idx)
        if n not in refs:  # the reference and its balls depend on the batch size only
            refs[n] = _knn_reference(pool, n, knn_k)
        cov, mass = grid.coverage(S)
        out = {
            "n": int(n),
            "pool": int(len(pool)),
            "cell_coverage": cov,
            "cell_mass_coverage": mass,
            "knn_coverage": _knn_with(refs[n], S),
            "kcenter_radius": float(d.max()),
            "mean_nearest_distance": float(d.mean()),
            "vendi": vendi_score(S),
            "mean_pairwise_distance": mean_pairwise_distance(S),
        }
        if attributes:
            out["attribute_balance"] = {name: normalized_entropy(col[idx], cats[name])
                                        for name, col in cols.items()}
        if targets:
            out["target_divergence"] = {name: divergence_from_target(cols[name][idx], t)
                                        for name, t in targets.items()}
        reports.append(out)
    return reports
