"""stratified: balance attribute strata (one attribute or several crossed).

Allocation: ``proportional`` (each stratum its share of the pool), ``equal``
(the same count per stratum) or a ``target`` distribution over the values of
one or more attributes. Quotas are rounded by largest remainder (so each is
within one of its exact share); a stratum short of its quota gives what it
has and the shortfall goes to the others in proportion to their quotas, with
a warning. Within a stratum: ``uniform`` or ``farthest``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import SamplingError, StrategyParameterError
from .base import register, warn
from .farthest import farthest_point

NONE_LABEL = "(none)"


def strata_codes(attributes: Mapping[str, np.ndarray], by: list[str]):
    """Integer stratum code per row and the label tuple of each code.

    Examples
    --------
    >>> attrs = {"region": ["Asia", "Africa", "Asia", None],
    ...          "age": ["old", "young", "young", "old"]}
    >>> codes, labels = strata_codes(attrs, ["region", "age"])
    >>> codes
    array([2, 1, 3, 0])
    >>> labels
    [('(none)', 'old'), ('Africa', 'young'), ('Asia', 'old'), ('Asia', 'young')]
    """
    codes = np.zeros(len(next(iter(attributes.values()))), dtype=np.int64)
    labels_per = []
    for name in by:
        col = np.array([NONE_LABEL if v is None else str(v) for v in attributes[name]], dtype=object)
        uniq, inv = np.unique(col.astype(str), return_inverse=True)
        codes = codes * len(uniq) + inv
        labels_per.append(uniq)
    uniq_codes, inv = np.unique(codes, return_inverse=True)
    labels = []
    for c in uniq_codes:
        parts = []
        for uniq in reversed(labels_per):
            parts.append(str(uniq[c % len(uniq)]))
            c //= len(uniq)
        labels.append(tuple(reversed(parts)))
    return inv, labels


def largest_remainder(weights: np.ndarray, k: int, rng) -> np.ndarray:
    """Integer quotas summing to k, each within one of ``k * w / sum(w)``;
    remainder ties broken at random (seeded).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> largest_remainder([2, 1], 4, rng)  # exact shares 2.67 and 1.33
    array([3, 1])
    >>> q = largest_remainder([1, 1, 1], 4, rng)  # one stratum, at random, gets 2
    >>> sorted(q.tolist()), int(q.sum())
    ([1, 1, 2], 4)
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    exact = k * w / w.sum()
    q = np.floor(exact).astype(np.int64)
    rest = k - int(q.sum())
    if rest:
        frac = exact - q
        order = np.lexsort((rng.random(len(w)), -frac))
        q[order[:rest]] += 1
    return q


def allocate(sizes: np.ndarray, weights: np.ndarray, k: int, rng) -> np.ndarray:
    """Quotas from ``weights``, capped by ``sizes``; shortfalls redistributed.

    Examples
    --------
    Equal weights ask 3 + 3, but the first stratum has one member:

    >>> import warnings
    >>> rng = np.random.default_rng(0)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     quota = allocate(np.array([1, 10]), np.array([1.0, 1.0]), 6, rng)
    >>> quota
    array([1, 5])
    >>> str(caught[0].message)
    '1 stratum/strata short of their quota (short by 2); redistributed to the others'
    """
    quota = largest_remainder(weights, k, rng)
    short = quota > sizes
    if short.any():
        warn(f"{int(short.sum())} stratum/strata short of their quota "
             f"(short by {int((quota - sizes)[short].sum())}); redistributed to the others")
    quota = np.minimum(quota, sizes)
    while quota.sum() < k:
        room = sizes - quota
        open_ = room > 0
        w = np.where(open_, np.maximum(weights, 0), 0.0)
        if w.sum() <= 0:  # only zero-weight strata have room left
            w = open_.astype(float)
        extra = np.minimum(largest_remainder(w, k - int(quota.sum()), rng), room)
        if extra.sum() == 0:
            extra[np.flatnonzero(open_)[0]] = 1
        quota += extra
    return quota


def parse_target(spec: str) -> tuple[str, dict[str, float]]:
    """``"region=Africa:0.3,Asia:0.3"`` -> ("region", {"Africa": 0.3, "Asia": 0.3}).

    Examples
    --------
    >>> parse_target("region=Africa:0.3,Asia:0.3")
    ('region', {'Africa': 0.3, 'Asia': 0.3})
    >>> parse_target("region=Africa")
    Traceback (most recent call last):
    ...
    persona_index.errors.SamplingError: target 'region=Africa': 'Africa' must be VALUE:WEIGHT
    """
    if "=" not in spec:
        raise SamplingError(f"target {spec!r} must look like ATTR=VALUE:WEIGHT,VALUE:WEIGHT")
    name, rest = spec.split("=", 1)
    out = {}
    for part in rest.split(","):
        if ":" not in part:
            raise SamplingError(f"target {spec!r}: {part!r} must be VALUE:WEIGHT")
        v, w = part.rsplit(":", 1)
        try:
            out[v.strip()] = float(w)
        except ValueError:
            raise SamplingError(f"target {spec!r}: weight {w!r} is not a number") from None
        if not np.isfinite(out[v.strip()]) or out[v.strip()] < 0:
            raise StrategyParameterError(
                f"target {spec!r}: weight for {v.strip()!r} must be a finite number >= 0, got {w!r}")
    return name.strip(), out


def target_weights(labels, by, sizes, target: Mapping[str, Mapping[str, float]]):
    """Weight of each stratum under a target over some of the ``by`` attributes.

    Values named in a target get their weight; values not named share what is
    left (1 - the named total) in proportion to their pool size. Attributes
    without a target keep pool proportions. Targets on several attributes
    multiply (treated as independent).

    Examples
    --------
    Africa gets its 0.5; Asia and Europe share the other half by pool size:

    >>> labels = [("Africa",), ("Asia",), ("Europe",)]
    >>> w = target_weights(labels, ["region"], [10, 10, 20], {"region": {"Africa": 0.5}})
    >>> w.round(3)
    array([0.5  , 0.167, 0.333])
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    w = sizes.copy()
    for name, dist in target.items():
        if name not in by:
            raise SamplingError(f"target on {name!r}, which is not among the strata {by}")
        j = by.index(name)
        vals = np.array([lab[j] for lab in labels], dtype=object)
        unknown = set(dist) - set(vals)
        if unknown:
            warn(f"target names value(s) {sorted(unknown)} of {name!r} that the pool lacks")
        total = sum(dist.values())
        if total > 1 + 1e-9:
            dist = {v: x / total for v, x in dist.items()}
            total = 1.0
        left = max(0.0, 1.0 - total)
        factor = np.empty(len(labels))
        uvals = np.unique(vals.astype(str))
        mass = {v: sizes[vals == v].sum() for v in uvals}
        rest_mass = sum(m for v, m in mass.items() if v not in dist)
        for v in uvals:
            if v in dist:
                share = dist[v]
            else:
                share = left * mass[v] / rest_mass if rest_mass else 0.0
            # spread the value's share over its strata in proportion to size
            factor[vals == v] = share / mass[v] if mass[v] else 0.0
        w = w * factor
    return w


@register("stratified", "balance attribute strata: proportional, equal, or a target distribution")
def stratified(X, k, *, rng, prior=None, attributes=None, by=None, allocation="equal",
               target=None, method="uniform"):
    """Quotas per stratum of ``by`` (default: every attribute), then a draw
    inside each stratum (see the module docstring).

    Examples
    --------
    >>> X = np.eye(10, dtype=np.float32)
    >>> region = np.array(["Asia"] * 8 + ["Africa"] * 2, dtype=object)
    >>> idx = stratified(X, 4, rng=np.random.default_rng(0), attributes={"region": region})
    >>> sorted(region[idx])  # equal allocation
    ['Africa', 'Africa', 'Asia', 'Asia']
    >>> idx = stratified(X, 5, rng=np.random.default_rng(0), attributes={"region": region},
    ...                  allocation="proportional")
    >>> sorted(region[idx])
    ['Africa', 'Asia', 'Asia', 'Asia', 'Asia']
    """
    if not attributes:
        raise SamplingError("stratified sampling needs attributes (e.g. by=['region'])")
    by = list(by) if by else list(attributes)
    missing = [b for b in by if b not in attributes]
    if missing:
        raise SamplingError(f"unknown attribute(s) {missing}; available: {sorted(attributes)}")
    if method not in ("uniform", "farthest"):
        raise SamplingError(f"method must be 'uniform' or 'farthest', got {method!r}")
    inv, labels = strata_codes(attributes, by)
    sizes = np.bincount(inv, minlength=len(labels))
    if target:
        weights = target_weights(labels, by, sizes, target)
    elif allocation == "proportional":
        weights = sizes.astype(float)
    elif allocation == "equal":
        weights = np.ones(len(labels))
    else:
        raise SamplingError(f"allocation must be proportional, equal or a target, got {allocation!r}")
    quota = allocate(sizes, weights, k, rng)
    order = np.argsort(inv, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for s in np.flatnonzero(quota):
        members = order[bounds[s]:bounds[s + 1]]
        q = int(quota[s])
        if method == "farthest" and q > 1:
            local = farthest_point(X[members], q, prior=prior, rng=rng)
        else:
            local = rng.choice(len(members), size=q, replace=False)
        out.append(members[local])
    idx = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return idx[rng.permutation(len(idx))]
