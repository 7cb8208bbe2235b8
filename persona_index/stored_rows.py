"""The default's draw from a large pool without the warm matrix.

The default (herding) reads only its seeded candidate and reference rows,
``max(16384, 16 k) + 4,096`` of them whatever the pool's size
(:func:`persona_index.samplers.herding.herding_rows`). So when the warm matrix
is not in memory yet, :func:`persona_index.sampling.draw` hands herding a
:class:`StoredRows` in its place: the pool's rows, read from the table version
when herding indexes them (:meth:`persona_index.snapshot.Snapshot.vectors_at`),
in the warm dtype, so the batch is the one the warm matrix gives, row for row
(tests/test_stored_rows.py). At 10^7 personas a draw then reads about 20,000
vectors instead of loading 7 GB. ``uniform`` gets one too: it reads no vector.
"""

from __future__ import annotations

import os

import numpy as np


class StoredRows:
    """Rows ``pool`` of a snapshot's matrix, read on indexing.

    Only what herding's numpy kernel uses: ``len``, ``shape``, ``size``,
    ``dtype`` and indexing by an array of row numbers.
    """

    def __init__(self, snap, pool: np.ndarray):
        self.snap, self.pool = snap, np.asarray(pool, dtype=np.int64)
        self.shape = (len(self.pool), snap.dim)
        self.size = self.shape[0] * self.shape[1]
        self.dtype = np.dtype(snap.warm_dtype)
        self.reads = 0  # rows read so far

    def __len__(self) -> int:
        return len(self.pool)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        self.reads += len(rows)
        return self.snap.vectors_at(self.pool[rows])

    def __reduce__(self):
        # to another process (a Ray task of the gather rounds): where the table
        # version is, and the pool, not the snapshot and what it holds in memory
        ds = self.snap.dataset
        uri = ds.uri if "://" in ds.uri else os.path.abspath(ds.uri)  # tasks keep their own cwd
        return (_OpenedRows, (uri, int(ds.version), self.shape[1], self.dtype.name, self.pool))


class _OpenedRows(StoredRows):
    """:class:`StoredRows` in another process: it opens the same table version
    (a local path must be one that process sees: on a Ray cluster of several
    machines, object storage or a shared filesystem) and reads as the
    snapshot would."""

    def __init__(self, uri: str, version: int, dim: int, dtype: str, pool: np.ndarray):
        self.uri, self.version, self.pool, self._ds = uri, version, pool, None
        self.shape, self.size = (len(pool), dim), len(pool) * dim
        self.dtype, self.reads = np.dtype(dtype), 0

    def __getitem__(self, rows) -> np.ndarray:
        import lance

        from .warm import take_vectors

        if self._ds is None:
            self._ds = lance.dataset(self.uri, version=self.version)
        rows = np.asarray(rows, dtype=np.int64)
        self.reads += len(rows)
        return take_vectors(self._ds, self.pool[rows], self.shape[1]).astype(self.dtype,
                                                                            copy=False)

    def __reduce__(self):
        return (_OpenedRows, (self.uri, self.version, self.shape[1], self.dtype.name, self.pool))


def reads_rows_only(snap, strategy: str, params: dict, n: int, pool_size: int) -> bool:
    """Whether a draw of ``n`` can hand the strategy :class:`StoredRows`:
    ``uniform`` always (it reads no vector); the default on numpy kernels, locally or in Ray's gather rounds (whose tasks
    then read their rows from the table version), the warm matrix not loaded,
    and a pool larger than both the candidate subsample and the reference (so
    herding reads a strict subset of the rows, never all of them).

    Examples
    --------
    >>> class Snap:  # what the check reads of a snapshot
    ...     vectors_loaded, dim = False, 384
    >>> reads_rows_only(Snap(), "herding", {}, 100, 10**6)
    True
    >>> reads_rows_only(Snap(), "herding", {}, 100, 16_000)  # every row is a candidate
    False
    >>> reads_rows_only(Snap(), "farthest", {}, 100, 10**6)
    False
    >>> reads_rows_only(Snap(), "uniform", {}, 100, 500)  # uniform reads no vectors
    True
    """
    from .kernels import resolve_device
    from .samplers.herding import CANDIDATES_PER_PICK, REFERENCE, candidate_count

    if n < 1 or snap.vectors_loaded:
        return False
    if strategy == "uniform":
        return True  # it reads no vector at all, only the pool's size
    if strategy != "herding":
        return False
    if params.get("engine", "local") == "ray" and params.get("rounds", "gather") != "gather":
        return False  # the coreset rounds read every row
    if resolve_device(params.get("device", "auto"), pool_size * snap.dim) != "numpy":
        return False
    candidates = candidate_count(n, params.get("candidates"),
                                 params.get("candidates_per_pick") or CANDIDATES_PER_PICK)
    return candidates < pool_size and int(params.get("reference") or REFERENCE) < pool_size


def sample_stored(X: StoredRows, n: int, strategy: str, *, seed, prior, params: dict) -> np.ndarray:
    """:func:`persona_index.samplers.base.sample` for :class:`StoredRows`
    (which it cannot take: it reads the whole matrix to check it): the same
    seed normalisation, prior and call, parameters already validated."""
    from .samplers.base import check_unit_matrix, get_strategy

    rng = np.random.default_rng(seed)
    if prior is not None:
        prior = check_unit_matrix(prior)
        prior = prior if len(prior) else None
    idx = np.asarray(get_strategy(strategy)(X, int(n), rng=rng, prior=prior, attributes=None,
                                            **params), dtype=np.int64)
    if len(idx) != n or len(np.unique(idx)) != n:  # a bug, never a user error
        raise AssertionError(f"{strategy!r} returned {len(idx)} indices for k={n}")
    return idx
