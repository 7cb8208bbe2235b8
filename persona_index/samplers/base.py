"""The strategy protocol, the name -> strategy registry, and shared checks.

A strategy is a function ``select(X, k, *, rng, prior, attributes, **params)
-> indices`` over an ``(n, d)`` float32 array of unit vectors. ``prior`` holds
the vectors already drawn (an earlier batch of a session): coverage-aware
strategies fill the gaps it left. Strategies import numpy and scipy only,
never the store.
"""

from __future__ import annotations

import warnings
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from ..errors import PersonaIndexWarning, SamplingError
from . import registry


class SamplingWarning(PersonaIndexWarning):
    """A degenerate but valid request (a stratum short of its quota, ...).

    Examples
    --------
    Two per stratum asked of a pool with a single ``b``: the shortfall goes to
    ``a``, with a warning.

    >>> import warnings
    >>> X = np.eye(4, dtype=np.float32)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     idx = sample(X, 4, "stratified", seed=0, attributes={"g": ["a", "a", "a", "b"]})
    >>> [w.category.__name__ for w in caught], sorted(idx.tolist())
    (['SamplingWarning'], [0, 1, 2, 3])
    >>> issubclass(SamplingWarning, UserWarning)
    True
    """


class Strategy(Protocol):
    """What a registered strategy is: ``(X, k, *, rng, prior, attributes,
    **params) -> (k,)`` distinct row indices. Call strategies through
    :func:`sample`, which validates; a strategy assumes valid input.

    Examples
    --------
    >>> fn: Strategy = get_strategy("farthest")
    >>> X = np.eye(3, dtype=np.float32)
    >>> fn(X, 2, rng=np.random.default_rng(0), prior=X[:1], attributes=None, start=None,
    ...    front=None).tolist()  # row 0 already drawn: picks fill the gap it left
    [1, 2]
    """

    def __call__(self, X: np.ndarray, k: int, *, rng: np.random.Generator,
                 prior: np.ndarray | None, attributes: Mapping[str, np.ndarray] | None,
                 **params) -> np.ndarray: ...


def get_strategy(name: str) -> Callable:
    """The strategy function (imports its module on first use).

    Examples
    --------
    >>> fn = get_strategy("inverse-density")
    >>> fn.__module__, fn.__name__
    ('persona_index.samplers.density', 'inverse_density')
    >>> get_strategy("random")
    Traceback (most recent call last):
    ...
    persona_index.errors.UnknownStrategyError: unknown strategy 'random'; valid: herding, blend, cells, core-farthest, facility, farthest, inverse-density, medoids, stratified, uniform
    """
    return registry.get_spec(name).load()


def check_unit_matrix(X, *, keep_float16: bool = False) -> np.ndarray:
    """``X`` as a 2-d float32 array (converted if needed; a float16 array is
    kept as it is when ``keep_float16``); anything else raises
    :class:`~persona_index.errors.SamplingError`. Norms are not checked.

    Examples
    --------
    >>> check_unit_matrix([[1.0, 0.0], [0.0, 1.0]]).dtype
    dtype('float32')
    >>> half = np.eye(2, dtype=np.float16)
    >>> check_unit_matrix(half).dtype, check_unit_matrix(half, keep_float16=True) is half
    (dtype('float32'), True)
    >>> check_unit_matrix(np.ones(3))
    Traceback (most recent call last):
    ...
    persona_index.errors.SamplingError: X must be a 2-d (n, d) array, got shape (3,)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise SamplingError(f"X must be a 2-d (n, d) array, got shape {X.shape}")
    if X.dtype != np.float32 and not (keep_float16 and X.dtype == np.float16):
        X = X.astype(np.float32)
    return X


def sample(X, k: int, strategy: str = registry.DEFAULT_STRATEGY, *, seed=None, prior=None,
           attributes: Mapping[str, Sequence] | None = None,
           prior_attributes: Mapping[str, Sequence] | None = None, check_params: bool = True,
           **params) -> np.ndarray:
    """Select ``k`` distinct rows of ``X`` with a named strategy.

    Parameters
    ----------
    X : (n, d) array of unit vectors (float32; other dtypes are converted, but
        a float16 matrix goes as it is to strategies that read it at their own
        rows: the registry's ``float16`` flag, herding and uniform).
    k : int, 0 <= k <= n.
    strategy : a registered name (see :func:`persona_index.samplers.registry.strategy_names`); default
        ``herding``.
    seed : None, int or numpy Generator. Normalised with
        ``np.random.default_rng`` on every call, so the same int gives the same
        selection every time.
    prior : (m, d) array, optional. Vectors already drawn (earlier batches);
        coverage-aware strategies avoid the regions they cover.
    attributes : mapping of name -> length-n sequence, for stratified sampling.
    prior_attributes : mapping of name -> one value per ``prior`` row
        (stratified: each earlier pick counts in its own stratum).
    check_params : bool, default True. False: ``params`` are what
        :func:`~persona_index.samplers.registry.validate_params` returned (a
        caller that validated them already, as :func:`persona_index.sampling.draw`
        does, checks them once); they are not checked again.
    **params : the strategy's own parameters, checked against the registry
        (:class:`~persona_index.errors.StrategyParameterError` for an unknown
        name or a value out of range).

    Returns
    -------
    (k,) int64 array of distinct row indices.

    Examples
    --------
    >>> X = np.eye(4, dtype=np.float32)
    >>> sorted(sample(X, 2, "uniform", seed=0).tolist()) == sorted(sample(X, 2, "uniform", seed=0).tolist())
    True
    >>> sorted(sample(X, 4, "farthest", seed=0).tolist())  # k = n: every row once
    [0, 1, 2, 3]
    >>> sample(X, 5)
    Traceback (most recent call last):
    ...
    persona_index.errors.SamplingError: k=5 is larger than the pool (4 personas available)
    """
    if check_params:
        params = registry.validate_params(strategy, params)
    fn = get_strategy(strategy)
    X = check_unit_matrix(X, keep_float16=registry.get_spec(strategy).float16)
    n = len(X)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise SamplingError(f"k must be a non-negative integer, got {k!r}")
    if k > n:
        raise SamplingError(f"k={k} is larger than the pool ({n} personas available)")
    rng = np.random.default_rng(seed)
    if prior is not None:
        prior = check_unit_matrix(prior)
        if prior.shape[1:] != X.shape[1:]:
            raise SamplingError(f"prior has shape {prior.shape}, X has {X.shape}")
        if len(prior) == 0:
            prior = None
    attrs = None
    if attributes is not None:
        attrs = {}
        for name, col in attributes.items():
            col = np.asarray(col, dtype=object)
            if len(col) != n:
                raise SamplingError(f"attribute {name!r} has {len(col)} values for {n} rows")
            attrs[name] = col
    if prior_attributes is not None and prior is not None:
        prior_attributes = {name: np.asarray(col, dtype=object)
                            for name, col in prior_attributes.items()}
        bad = [name for name, col in prior_attributes.items() if len(col) != len(prior)]
        if bad:
            raise SamplingError(f"prior_attributes {bad} need one value per prior row "
                                f"({len(prior)})")
        params["prior_attributes"] = prior_attributes
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.asarray(fn(X, int(k), rng=rng, prior=prior, attributes=attrs, **params),
                     dtype=np.int64)
    if len(idx) != k or len(np.unique(idx)) != k:  # a bug, never a user error
        raise AssertionError(f"strategy {strategy!r} returned {len(idx)} indices "
                             f"({len(np.unique(idx))} distinct) for k={k}")
    return idx


def warn(msg: str) -> None:
    """Issue ``msg`` as a :class:`SamplingWarning`, attributed to the caller's
    caller (the code that asked for the sample).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("stratum 'x' short of its quota")
    >>> caught[0].category.__name__, str(caught[0].message)
    ('SamplingWarning', "stratum 'x' short of its quota")
    """
    warnings.warn(msg, SamplingWarning, stacklevel=3)


def weighted_without_replacement(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """k distinct indices, drawn with probability proportional to ``weights``
    (Efraimidis-Spirakis keys: one vectorised pass, no loop per item).

    Examples
    --------
    Zero weights are never drawn while positive ones remain; with ``k >= n``
    every index comes back, the zero-weight ones last:

    >>> rng = np.random.default_rng(0)
    >>> sorted(weighted_without_replacement(rng, np.array([0.0, 1.0, 5.0, 0.0]), 2).tolist())
    [1, 2]
    >>> weighted_without_replacement(rng, np.array([0.0, 2.0, 1.0]), 3).tolist()[-1]
    0
    """
    w = np.asarray(weights, dtype=np.float64)
    u = rng.random(len(w))
    with np.errstate(divide="ignore"):
        keys = np.where(w > 0, np.log(u) / w, -np.inf)
    if k >= len(w):
        return np.argsort(-keys, kind="stable")
    top = np.argpartition(-keys, k - 1)[:k]
    return top[np.argsort(-keys[top], kind="stable")]


def max_similarity(X: np.ndarray, C: np.ndarray, out: np.ndarray | None = None,
                   block: int = 65536) -> np.ndarray:
    """For each row of X, the max cosine similarity to the rows of C (chunked:
    memory bounded by ``block x len(C)``). Updates ``out`` in place if given.

    Examples
    --------
    >>> X = np.eye(3, dtype=np.float32)
    >>> max_similarity(X, X[:1])
    array([1., 0., 0.], dtype=float32)
    >>> max_similarity(X, X[:0])  # nothing chosen yet
    array([-inf, -inf, -inf], dtype=float32)
    """
    n = len(X)
    if out is None:
        out = np.full(n, -np.inf, dtype=np.float32)
    if len(C) == 0:
        return out
    CT = np.ascontiguousarray(C.T)
    for s in range(0, n, block):
        e = min(n, s + block)
        np.maximum(out[s:e], (X[s:e] @ CT).max(axis=1), out=out[s:e])
    return out
