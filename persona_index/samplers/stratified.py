"""stratified: balance attribute strata (one attribute or several crossed).

Quotas. ``quotas="raking"`` (the default) fits a real-valued quota to every
non-empty cell (a combination of the ``by`` values that the pool holds) by
iterative proportional fitting: it starts from the ``allocation`` (``equal``:
the same for every cell; ``proportional``: the cell's pool size; with a
``target`` the default is ``proportional``, the pool's own joint, adjusted)
and rescales it, one attribute at a time, until each targeted marginal is met.
Empty cells get nothing, a cell never gets more than it holds (a thin cell is
capped and reported; the others absorb the difference), and ``min_per_cell``
gives every cell at least that many (or all it has). So correlated, empty or
thin cells still meet each marginal as closely as the pool allows. Quotas are
then rounded by largest remainder (each within one of its fitted share,
remainder ties broken by the seeded generator). ``quotas="product"`` is the
rule of manifests written before raking: targets multiplied as if the
attributes were independent, quotas capped and shortfalls redistributed.

Inside a stratum: ``herding`` (the default strategy, run on the stratum's
own rows: its typicality reference and candidates are the stratum's members,
so it matches each stratum's own distribution; the session's earlier picks
in the same stratum are its prior), ``uniform`` or ``farthest``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ..errors import SamplingError, StrategyParameterError
from .base import warn
from .farthest import farthest_point

NONE_LABEL = "(none)"
#: the draw inside a stratum; the first is the default
METHODS = ("herding", "uniform", "farthest")
#: how quotas are made; the first is the default ("product": the rule before raking)
QUOTAS = ("raking", "product")
#: what a manifest written before these parameters existed meant
LEGACY = {"method": "uniform", "quotas": "product"}


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


def labels_of(attributes: Mapping[str, np.ndarray], by: list[str]) -> np.ndarray:
    """Each row's values of ``by`` as strings (None as ``(none)``): (n, len(by)).

    Examples
    --------
    >>> labels_of({"g": ["a", None], "h": [1, 2]}, ["g", "h"]).tolist()
    [['a', '1'], ['(none)', '2']]
    """
    cols = [np.array([NONE_LABEL if v is None else str(v) for v in attributes[b]], dtype=object)
            for b in by]
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0), dtype=object)


def complete_marginal(values: np.ndarray, dist: Mapping[str, float], name: str) -> dict:
    """A target over some values of one attribute, completed over the pool's
    ``values``: named values get their weight (normalised if they sum to more
    than 1), unnamed ones share what is left in proportion to their pool
    counts. A named value with weight > 0 that the pool lacks raises
    :class:`~persona_index.errors.SamplingError` naming it and the pool's values.

    Examples
    --------
    >>> v = np.array(["Africa"] * 10 + ["Asia"] * 10 + ["Europe"] * 20, dtype=object)
    >>> {k: round(x, 3) for k, x in complete_marginal(v, {"Africa": 0.5}, "region").items()}
    {'Africa': 0.5, 'Asia': 0.167, 'Europe': 0.333}
    >>> complete_marginal(v, {"Mars": 0.2}, "region")
    Traceback (most recent call last):
    ...
    persona_index.errors.SamplingError: target value 'Mars' of 'region' is not in the pool; its values: Africa, Asia, Europe
    """
    uvals, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
    mass = dict(zip(uvals.tolist(), counts.tolist()))
    unknown = sorted(str(v) for v, w in dist.items() if w > 0 and str(v) not in mass)
    if unknown:
        raise SamplingError(
            f"target value{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} of "
            f"{name!r} {'are' if len(unknown) > 1 else 'is'} not in the pool; its values: "
            f"{', '.join(uvals.tolist())}")
    named = {str(v): float(w) for v, w in dist.items() if str(v) in mass}
    total = sum(named.values())
    if total > 1 + 1e-9:
        named = {v: w / total for v, w in named.items()}
        total = 1.0
    rest = [v for v in mass if v not in named]
    rest_mass = sum(mass[v] for v in rest)
    left = max(0.0, 1.0 - total)
    out = {v: named.get(v, left * mass[v] / rest_mass if rest_mass and v in rest else 0.0)
           for v in mass}
    s = sum(out.values())
    if s <= 0:
        raise SamplingError(f"target for {name!r} gives every value of the pool weight 0")
    return {v: w / s for v, w in out.items()}


def cap_marginal(want: np.ndarray, cap: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Target counts capped at what each value holds; the excess goes to the
    values with room in proportion to their targets (else to ``fallback``),
    which keeps the total variation to the target as small as the pool allows.

    Examples
    --------
    >>> cap_marginal(np.array([30.0, 20.0, 50.0]), np.array([300, 290, 10]), np.ones(3))
    array([54., 36., 10.])
    """
    T = np.asarray(want, dtype=np.float64).copy()
    cap = np.asarray(cap, dtype=np.float64)
    for _ in range(len(T) + 1):
        over = T > cap + 1e-9
        if not over.any():
            break
        excess = float((T[over] - cap[over]).sum())
        T[over] = cap[over]
        room = cap - T > 1e-9
        w = np.where(room, T, 0.0)
        if w.sum() <= 0:
            w = np.where(room, fallback, 0.0)
        if w.sum() <= 0:
            break
        T += excess * w / w.sum()
    return T


def _ipf(x, codes, targets, fixed, iters, tol):
    """Iterative proportional fitting of the free cells of ``x`` to the
    marginal ``targets`` (cells' value ``codes`` per attribute)."""
    free = ~fixed
    for _ in range(iters):
        worst = 0.0
        for code, T in zip(codes, targets):
            cur = np.bincount(code, weights=np.where(free, x, 0.0), minlength=len(T))
            want = np.maximum(T - np.bincount(code, weights=np.where(fixed, x, 0.0),
                                              minlength=len(T)), 0.0)
            f = np.where(cur > 0, want / np.where(cur > 0, cur, 1.0), 1.0)
            worst = max(worst, float(np.abs(np.where(cur > 0, cur - want, 0.0)).max()))
            x = np.where(free, x * f[code], x)
        if worst <= tol:
            break
    return x


def rake(seed: np.ndarray, codes: list, targets: list, lo: np.ndarray, hi: np.ndarray, *,
         iters: int = 500, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Raking (iterative proportional fitting) of cell weights to marginals,
    within bounds: cells outside ``[lo, hi]`` after a fit are fixed at the
    bound and the free cells refitted to what is left, until none is outside.

    Parameters
    ----------
    seed : (C,) positive starting weights of the cells.
    codes : per attribute, a (C,) array of the cell's value index.
    targets : per attribute, a float array of target counts per value (each
        summing to the same total).
    lo, hi : (C,) bounds.

    Returns
    -------
    (x, wanted): (C,) fitted counts, and for the cells fixed at ``hi`` (thin
    cells) the count the fit wanted there (NaN elsewhere).

    Examples
    --------
    A 2 x 2 table with one empty cell (left out: three cells) still meets
    both marginals (region 6:4, age 5:5):

    >>> codes = [np.array([0, 0, 1]), np.array([0, 1, 0])]  # (A, y), (A, o), (B, y)
    >>> x, wanted = rake(np.ones(3), codes, [np.array([6.0, 4.0]), np.array([5.0, 5.0])],
    ...                  np.zeros(3), np.full(3, 100.0))
    >>> x.round(3).tolist(), int(np.isnan(wanted).sum())
    ([1.0, 5.0, 4.0], 3)
    """
    x = np.asarray(seed, dtype=np.float64).copy()
    fixed = np.zeros(len(x), dtype=bool)
    wanted = np.full(len(x), np.nan)
    for _ in range(len(x) + 1):
        x = _ipf(x, codes, targets, fixed, iters, tol)
        high = ~fixed & (x > hi + 1e-9)
        low = ~fixed & (x < lo - 1e-9)
        if not (high.any() or low.any()):
            break
        wanted[high] = x[high]
        x[high] = hi[high]
        x[low] = lo[low]
        fixed |= high | low
    return x, wanted


def round_quotas(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: int, rng,
                 codes: list = (), targets: list = ()) -> np.ndarray:
    """Integer quotas summing to ``k`` within ``[lo, hi]``: the floor of each
    fitted count, then one more to the cells with the largest remainders
    (ties at random, seeded), each cell at most once, so each quota is within
    one of its fitted count when they sum to k. With marginal ``codes`` and
    target counts, each extra unit goes where the remainder plus the
    shortfall of the cell's values below their targets is largest (so the
    rounding keeps the marginals as well as the cells).

    Examples
    --------
    >>> q = round_quotas(np.array([2.5, 1.5, 1.0]), np.zeros(3), np.array([5, 5, 5]), 5,
    ...                  np.random.default_rng(0))
    >>> int(q.sum()), bool((np.abs(q - [2.5, 1.5, 1.0]) <= 1).all())
    (5, True)
    """
    q = np.clip(np.floor(x + 1e-9), lo, hi).astype(np.int64)
    base = q.copy()
    rest = k - int(q.sum())
    tie = rng.random(len(x))
    counts = [np.bincount(c, weights=q, minlength=len(T)) for c, T in zip(codes, targets)]
    while rest > 0:
        room = (q < hi) & (q <= base)
        if not room.any():
            room = q < hi
        score = x - q
        for c, T, cnt in zip(codes, targets, counts):
            score = score + (T - cnt)[c]
        j = int(np.lexsort((tie, -np.where(room, score, -np.inf)))[0])
        q[j] += 1
        for c, cnt in zip(codes, counts):
            cnt[c[j]] += 1
        rest -= 1
    while rest < 0:  # only when the fitted counts sum above k: take from the smallest remainders
        room = q > lo
        j = int(np.lexsort((tie, np.where(room, x - q, np.inf)))[0])
        q[j] -= 1
        rest += 1
    return q


@dataclass
class Fit:
    """The quotas of a stratified draw: cells, their pool sizes, the fitted
    real-valued quotas and the completed marginal targets.

    ``cells`` are the non-empty cells' label tuples (in the order of
    :func:`strata_codes`), ``inv`` each pool row's cell, ``expected`` the
    fitted quota of each cell (summing to k as the pool allows), ``targets``
    the completed target share of each value per targeted attribute,
    ``thin`` the cells the fit wanted more of than they hold (or fewer than
    ``min_per_cell``), ``empty`` the value combinations the pool lacks.
    """

    by: list
    cells: list
    inv: np.ndarray
    sizes: np.ndarray
    expected: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    targets: dict = field(default_factory=dict)
    thin: list = field(default_factory=list)
    empty: int = 0
    codes: list = field(default_factory=list, repr=False)
    counts: list = field(default_factory=list, repr=False)

    def round(self, k: int, rng) -> np.ndarray:
        """Integer quotas (:func:`round_quotas`) that keep the marginals."""
        return round_quotas(self.expected, self.lo, self.hi, k, rng, self.codes, self.counts)

    def shares(self) -> np.ndarray:
        """The fitted quotas as shares of the batch (the joint target)."""
        s = self.expected.sum()
        return self.expected / s if s > 0 else self.expected


def fit_quotas(attributes: Mapping[str, np.ndarray], by: list[str], k: int, *,
               target: Mapping[str, Mapping[str, float]] | None = None,
               allocation: str | None = None, min_per_cell: int = 0) -> Fit:
    """Raked cell quotas (see the module docstring); no randomness.

    Examples
    --------
    Region and age correlated, one cell empty (no old persona in B); targets
    A:B = 7:3 and y:o = 8:2 are both met:

    >>> region = np.array(["A"] * 60 + ["B"] * 40, dtype=object)
    >>> age = np.array(["y"] * 50 + ["o"] * 10 + ["y"] * 40, dtype=object)
    >>> fit = fit_quotas({"region": region, "age": age}, ["region", "age"], 10,
    ...                  target={"region": {"A": 0.7, "B": 0.3}, "age": {"y": 0.8, "o": 0.2}})
    >>> fit.cells, fit.expected.round(3).tolist(), fit.empty
    ([('A', 'o'), ('A', 'y'), ('B', 'y')], [2.0, 5.0, 3.0], 1)
    """
    by = list(by)
    inv, cells = strata_codes(attributes, by)
    C = len(cells)
    sizes = np.bincount(inv, minlength=C).astype(np.float64)
    target = dict(target or {})
    for name in target:
        if name not in by:
            raise SamplingError(f"target on {name!r}, which is not among the strata {by}")
    if allocation is None:
        allocation = "proportional" if target else "equal"
    if allocation == "proportional":
        seed = sizes.copy()
    elif allocation == "equal":
        seed = np.ones(C)
    else:
        raise SamplingError(f"allocation must be equal or proportional, got {allocation!r}")
    codes, tgts, shares = [np.zeros(C, dtype=np.int64)], [np.array([float(k)])], {}
    eligible = np.ones(C, dtype=bool)
    wish = np.full(C, np.nan)
    cell_vals = np.array(cells, dtype=object).reshape(C, len(by))
    rows = labels_of(attributes, by)
    for name, dist in target.items():
        j = by.index(name)
        share = complete_marginal(rows[:, j], dist, name)
        shares[name] = share
        vals = list(share)
        pos = {v: i for i, v in enumerate(vals)}
        code = np.array([pos[str(v)] for v in cell_vals[:, j]], dtype=np.int64)
        cap = np.bincount(code, weights=sizes, minlength=len(vals))
        want = k * np.array([share[v] for v in vals])
        codes.append(code)
        tgts.append(cap_marginal(want, cap, cap))
        short = want > cap + 1e-9  # the value holds fewer than its target: every cell is thin
        over_cells = short[code]
        wish[over_cells] = np.fmax(wish[over_cells], (want / np.maximum(cap, 1))[code][over_cells]
                                      * sizes[over_cells])
        eligible &= np.array([share[v] for v in vals])[code] > 0
        seed = np.where(eligible, seed, 0.0)
    m = int(min_per_cell or 0)
    lo = np.where(eligible, np.minimum(m, sizes), 0.0)
    if lo.sum() > k:
        raise StrategyParameterError(
            f"min_per_cell={m} asks for {int(lo.sum())} personas over {int(eligible.sum())} "
            f"cells, more than k={k}")
    x, wanted = rake(seed, codes, tgts, lo, sizes)
    wanted = np.fmax(wanted, wish)
    if 0 < x.sum() < k - 1e-6:  # caps the marginals could not all absorb: scale the rest up
        x = cap_marginal(x * (k / x.sum()), sizes, np.where(eligible, sizes, 0.0))
    elif x.sum() > k + 1e-6:  # floors above a value's target: the rest gives way, in proportion
        free = x - lo
        x = lo + free * ((k - lo.sum()) / free.sum())
    thin = [{"cell": dict(zip(by, cells[c])), "size": int(sizes[c]),
             "wanted": round(float(wanted[c]), 3) if np.isfinite(wanted[c]) else float(m)}
            for c in np.flatnonzero(np.isfinite(wanted) | (eligible & (sizes < m)))]
    n_values = np.prod([len(np.unique(rows[:, j].astype(str))) for j in range(len(by))])
    return Fit(by=by, cells=cells, inv=inv, sizes=sizes.astype(np.int64), expected=x, lo=lo,
               hi=sizes, targets=shares, thin=thin, empty=int(n_values) - C, codes=codes[1:],
               counts=tgts[1:])


def _draw_in(X, members, q, method, rng, prior):
    if q >= len(members):
        return members[rng.permutation(len(members))]
    if method == "herding":
        from .herding import CONSTANT_RULE, herding

        local = herding(X[members], q, rng=rng, prior=prior, **CONSTANT_RULE)
    elif method == "farthest" and q > 1:
        local = farthest_point(X[members], q, prior=prior, rng=rng)
    else:
        local = rng.choice(len(members), size=q, replace=False)
    return members[local]


def stratified(X, k, *, rng, prior=None, attributes=None, by=None, allocation=None,
               target=None, method="herding", quotas="raking", min_per_cell=0,
               prior_attributes=None):
    """Quotas per stratum of ``by`` (default: every attribute), then a draw
    inside each stratum (see the module docstring). ``prior_attributes``
    (name -> column over the ``prior`` rows) puts each earlier pick in its
    stratum: herding then continues each stratum's own sequence (what
    ``draw`` does for a session). Without it every stratum's herding sees the
    whole ``prior``.

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
    if method not in METHODS:
        raise SamplingError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if quotas == "product":
        return _stratified_product(X, k, rng=rng, prior=prior, attributes=attributes, by=by,
                                   allocation=allocation or "equal", target=target,
                                   method=method, min_per_cell=min_per_cell)
    if quotas != "raking":
        raise SamplingError(f"quotas must be one of {', '.join(QUOTAS)}, got {quotas!r}")
    fit = fit_quotas(attributes, by, k, target=target, allocation=allocation,
                     min_per_cell=min_per_cell)
    quota = fit.round(k, rng)
    if fit.thin:
        t = fit.thin[0]
        eg = ", ".join(f"{a}={v}" for a, v in t["cell"].items())
        warn(f"{len(fit.thin)} thin cell(s) short of their quota (e.g. {eg}: {t['size']} "
             f"personas for a quota of {t['wanted']:g}); the others took up the difference")
    prior_cell = None
    if prior is not None and method == "herding" and prior_attributes is not None:
        lab = {c: i for i, c in enumerate(fit.cells)}
        prior_rows = labels_of(prior_attributes, by)
        prior_cell = np.array([lab.get(tuple(r), -1) for r in prior_rows.tolist()],
                              dtype=np.int64)
    order = np.argsort(fit.inv, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(fit.sizes)])
    out = []
    for s in np.flatnonzero(quota):
        members = order[bounds[s]:bounds[s + 1]]
        p = prior
        if method == "herding" and prior_cell is not None:
            p = prior[prior_cell == s]
            p = p if len(p) else None
        out.append(_draw_in(X, members, int(quota[s]), method, rng, p))
    idx = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return idx[rng.permutation(len(idx))]


def _stratified_product(X, k, *, rng, prior, attributes, by, allocation, target, method,
                        min_per_cell):
    """The rule of manifests written before raking (kept so they replay the
    same ids): product-of-targets weights, :func:`allocate`, then the draw."""
    if min_per_cell:
        raise StrategyParameterError("min_per_cell needs quotas='raking'")
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
        elif method == "herding":
            from .herding import CONSTANT_RULE, herding

            local = herding(X[members], q, rng=rng, prior=prior, **CONSTANT_RULE)
        else:
            local = rng.choice(len(members), size=q, replace=False)
        out.append(members[local])
    idx = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
    return idx[rng.permutation(len(idx))]
