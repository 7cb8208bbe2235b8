"""The one place a strategy is registered: its name, module, description and
parameters (type, default, range).

Reading it imports nothing beyond the standard library, so the CLI's
``--strategy`` choices, ``persona-index strategies`` and ``--help`` stay
cheap; a strategy's module (numpy, maybe scipy) is imported only when it is
used. :func:`validate_params` checks a strategy's parameters before any work:
an unknown name, a wrong type or a value out of range raises
:class:`~persona_index.errors.StrategyParameterError` naming the valid ones.

Examples
--------
>>> DEFAULT_STRATEGY
'herding'
>>> validate_params("herding", {"beta": 1})
{'beta': 1.0}
>>> validate_params("herding", {"alpha": 2})
Traceback (most recent call last):
...
persona_index.errors.StrategyParameterError: strategy 'herding' takes no parameter 'alpha'; its parameters: tau, beta, ramp, reference, candidates, candidates_per_pick, device, engine, workers, partitions, rounds, oversample
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from importlib import import_module
from typing import Any

from ..errors import StrategyParameterError, UnknownStrategyError

#: the strategy ``sample`` and ``draw`` use when none is named
DEFAULT_STRATEGY = "herding"
#: where a kernel runs (see :mod:`persona_index.kernels`): ``auto`` (numpy,
#: unless torch is already loaded and sees a GPU), ``numpy``, ``torch-cpu``, ``cuda``
DEVICES = ("auto", "numpy", "torch-cpu", "cuda")


@dataclass(frozen=True)
class Param:
    """One strategy parameter. ``type`` is ``float``, ``int``, ``choice``,
    ``names`` (a list of attribute names) or ``target`` (attribute -> value ->
    weight); ``lo``/``hi`` bound numbers (``lo_open`` excludes ``lo``).

    Examples
    --------
    >>> Param("alpha", "float", 3.0, "exponent", 0.0, 20.0).describe()
    'alpha=3.0 [0.0, 20.0]'
    >>> Param("trim", "float", 0.5, "share left out", 0.0, 1.0, hi_open=True).describe()
    'trim=0.5 [0.0, 1.0)'
    >>> Param("within", "choice", "uniform", "draw", choices=("uniform", "farthest")).describe()
    'within=uniform uniform|farthest'
    """

    name: str
    type: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    nullable: bool = False

    def describe(self) -> str:
        if self.type == "choice":
            rng = "|".join(self.choices)
        elif self.lo is not None or self.hi is not None:
            lo = "(" if self.lo_open else "["
            hi = ")" if self.hi_open else "]"
            rng = f"{lo}{_fmt(self.lo)}, {_fmt(self.hi)}{hi}"
        else:
            rng = self.type
        return f"{self.name}={_fmt(self.default)} {rng}"


def _fmt(v):
    if v is None:
        return "auto"
    if isinstance(v, float) and v == int(v) and abs(v) >= 1e6:
        return f"{v:.0e}"
    return str(v)


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy: ``module.function`` in :mod:`persona_index.samplers`,
    its description and its :class:`Param` list. ``load`` imports the module.

    Examples
    --------
    >>> spec = STRATEGIES["facility"]
    >>> spec.load().__name__, [p.name for p in spec.params]
    ('facility', ['sample_size'])
    >>> d = spec.to_dict()
    >>> d["name"], d["params"][0]["default"], d["params"][0]["lo"], "default" in d
    ('facility', 4096, 16, False)
    >>> STRATEGIES["herding"].to_dict()["default"]
    True
    """

    name: str
    module: str
    function: str
    description: str
    params: tuple = field(default_factory=tuple)
    #: the kernel reads a float16 matrix (the half-size warm matrix) at the
    #: rows it uses, so :func:`~persona_index.samplers.base.sample` passes it
    #: as it is; other strategies get a float32 copy of the pool
    float16: bool = False

    def load(self):
        return getattr(import_module(f"persona_index.samplers.{self.module}"), self.function)

    def to_dict(self) -> dict:
        out = {"name": self.name, "description": self.description,
               "params": [{k: v for k, v in asdict(p).items()
                           if k == "default" or not (v is None or v is False or v == ())}
                          for p in self.params]}
        if self.name == DEFAULT_STRATEGY:
            out["default"] = True
        return out


_NEIGHBORS = Param("n_neighbors", "int", 10, "neighbours in the k-NN density estimate", 1, 1000)
_REFERENCE = Param("reference", "int", None, "reference rows for the density estimate (default "
                   "4096, fewer above 122k personas)", 16, 10**7, nullable=True)
_DEVICE = Param("device", "choice", "auto", "where the kernel runs: auto (numpy, or CUDA when "
                "torch is already loaded, sees a GPU and the pool is large), numpy, torch-cpu, "
                "cuda", choices=DEVICES)

STRATEGIES: dict[str, StrategySpec] = {s.name: s for s in [
    StrategySpec("herding", "herding", "herding",
                 "kernel herding plus a standardised spread term: typical personas from distinct "
                 "regions; beats uniform on diversity and representativeness", (
                     Param("tau", "float", 0.2, "kernel width of exp((cos - 1) / tau)", 0.01, 10.0),
                     Param("beta", "float", 1.0, "weight of the standardised distance to the "
                           "nearest chosen persona at the batch's last pick (0: pure herding)",
                           0.0, 10.0),
                     Param("ramp", "choice", "linear", "linear: the spread weight rises from 0 to "
                           "beta as the batch fills; none: beta throughout (the rule of "
                           "manifests written before it, with beta 0.5)",
                           choices=("linear", "none")),
                     Param("reference", "int", 4096, "pool rows each persona's typicality is "
                           "averaged over", 16, 10**7),
                     Param("candidates", "int", None, "candidate subsample for large pools "
                           "(default max(16384, candidates_per_pick x k))", 1, 10**9, nullable=True),
                     Param("candidates_per_pick", "int", 16, "candidates per pick when candidates "
                           "is not given (32 in manifests written before it was recorded)", 1, 1024),
                     _DEVICE,
                     Param("engine", "choice", "local", "local: one process; ray: row blocks "
                           "in Ray tasks, as rounds says "
                           "(persona_index.distributed.distributed_default)",
                           choices=("local", "ray")),
                     Param("workers", "int", 2, "Ray CPUs when engine is ray", 1, 4096),
                     Param("partitions", "int", 8, "row blocks when engine is ray", 1, 10**6),
                     Param("rounds", "choice", "gather", "engine ray: gather: the blocks send the "
                           "rows the default reads, the driver herds them (the local batch); "
                           "coreset: each block picks oversample x k with masses, the driver "
                           "herds their union (Ray manifests written before rounds)",
                           choices=("gather", "coreset")),
                     Param("oversample", "int", 2, "picks per partition, in multiples of k, when "
                           "rounds is coreset", 1, 64),
                 ), float16=True),
    StrategySpec("medoids", "medoids", "medoids",
                 "density-weighted facility location with a spread term: representative and "
                 "diverse; the default of `curate` (outputs)", (
                     Param("spread", "float", 0.75, "weight of the standardised distance to the "
                           "nearest chosen row", 0.0, 10.0),
                     Param("gamma", "float", 0.5, "exponent of the typicality weight of each "
                           "client (0: plain facility location)", 0.0, 4.0),
                     Param("tau", "float", 0.2, "kernel width of the typicality", 0.01, 10.0),
                     Param("sample_size", "int", 2048, "candidate and client subsample", 16,
                           10**6),
                 )),
    StrategySpec("uniform", "uniform", "uniform", "every persona equally likely: the baseline",
                 float16=True),
    StrategySpec("stratified", "stratified", "stratified",
                 "balance attribute strata (crossed when several): quotas raked to the targets' "
                 "marginals, herding inside each stratum", (
                     Param("by", "names", None, "attribute(s) to stratify by", nullable=True),
                     Param("allocation", "choice", None, "starting allocation of the cells "
                           "(default: equal, proportional with a target)",
                           choices=("equal", "proportional"), nullable=True),
                     Param("target", "target", None, "target distribution ATTR=VALUE:WEIGHT",
                           nullable=True),
                     Param("method", "choice", "herding", "draw inside a stratum",
                           choices=("herding", "uniform", "farthest")),
                     Param("quotas", "choice", "raking", "quotas from the targets: raking (IPF "
                           "over the pool's non-empty cells) or product (the rule of earlier manifests: "
                           "targets multiplied as if independent)", choices=("raking", "product")),
                     Param("min_per_cell", "int", 0, "at least this many from every non-empty "
                           "cell (or all it has)", 0, 10**9),
                 )),
    StrategySpec("cells", "cells", "cells",
                 "k-means cells of the embedding, drawn evenly (free-text pools)", (
                     Param("n_cells", "int", None, "number of cells (default k, at most 4096)", 1,
                           10**6, nullable=True),
                 )),
    StrategySpec("farthest", "farthest", "farthest",
                 "greedy k-center: each pick the persona farthest from all chosen (outliers)", (
                     Param("start", "int", None, "first pick (default: random)", 0, 10**12,
                           nullable=True),
                     Param("front", "int", None, "front-runners kept exact between passes", 1,
                           10**9, nullable=True),
                     _DEVICE,
                 )),
    StrategySpec("inverse-density", "density", "inverse_density",
                 "weights (k-NN distance)^alpha: rare personas drawn more often", (
                     Param("alpha", "float", 3.0, "exponent (0 = uniform)", 0.0, 20.0),
                     _NEIGHBORS, _REFERENCE, _DEVICE,
                 )),
    StrategySpec("core-farthest", "core", "core_farthest",
                 "farthest-point over the densest (1 - trim) share of the pool", (
                     Param("trim", "float", 0.5, "share of the most isolated personas left out",
                           0.0, 1.0, hi_open=True),
                     _NEIGHBORS, _REFERENCE,
                 )),
    StrategySpec("facility", "facility", "facility",
                 "greedy facility location: the most representative batch", (
                     Param("sample_size", "int", 4096, "client and candidate subsample", 16, 10**6),
                 )),
    StrategySpec("blend", "blend", "blend",
                 "soft facility location blended with farthest-point", (
                     Param("lam", "float", 0.45, "diversity weight", 0.0, 1.0),
                     Param("tau", "float", 0.3, "kernel width", 0.01, 10.0),
                     Param("sample_size", "int", 4096, "client and candidate subsample", 16, 10**6),
                 )),
]}


def strategy_names() -> list[str]:
    """Every registered strategy, the default first, then by name.

    Examples
    --------
    >>> strategy_names()
    ['herding', 'blend', 'cells', 'core-farthest', 'facility', 'farthest', 'inverse-density', 'medoids', 'stratified', 'uniform']
    """
    return [DEFAULT_STRATEGY] + sorted(n for n in STRATEGIES if n != DEFAULT_STRATEGY)


def get_spec(name: str) -> StrategySpec:
    """The :class:`StrategySpec` of ``name``; an unknown name raises
    :class:`~persona_index.errors.UnknownStrategyError` listing the valid ones.

    Examples
    --------
    >>> get_spec("inverse-density").function
    'inverse_density'
    >>> get_spec("kmeans")
    Traceback (most recent call last):
    ...
    persona_index.errors.UnknownStrategyError: unknown strategy 'kmeans'; valid: herding, blend, cells, core-farthest, facility, farthest, inverse-density, medoids, stratified, uniform
    """
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise UnknownStrategyError(
            f"unknown strategy {name!r}; valid: {', '.join(strategy_names())}") from None


def _number(spec: StrategySpec, p: Param, v):
    bad = StrategyParameterError
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not _is_numpy_number(v):
        if isinstance(v, str):
            try:
                v = float(v) if p.type == "float" else int(v)
            except ValueError:
                raise bad(f"{spec.name}: {p.name} must be a number, got {v!r}") from None
        else:
            raise bad(f"{spec.name}: {p.name} must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise bad(f"{spec.name}: {p.name} must be finite, got {v!r}")
    if p.type == "int":
        if v != int(v):
            raise bad(f"{spec.name}: {p.name} must be a whole number, got {v!r}")
        v = int(v)
    lo_bad = p.lo is not None and (v <= p.lo if p.lo_open else v < p.lo)
    hi_bad = p.hi is not None and (v >= p.hi if p.hi_open else v > p.hi)
    if lo_bad or hi_bad:
        raise bad(f"{spec.name}: {p.name}={v!r} is out of range; valid: {p.describe().split(' ', 1)[1]}")
    return v


def _is_numpy_number(v) -> bool:
    return type(v).__module__ == "numpy" and hasattr(v, "dtype") and v.dtype.kind in "iuf"


def validate_params(name: str, params: dict | None) -> dict:
    """The strategy's parameters, checked and normalised (numbers as int or
    float). Raises :class:`StrategyParameterError` (a ``ValueError``) naming
    the valid parameters or the valid range.

    Examples
    --------
    >>> validate_params("farthest", {"start": "3", "front": None})  # as the CLI passes them
    {'start': 3, 'front': None}
    >>> validate_params("stratified", {"by": "region"})
    {'by': ['region']}
    >>> validate_params("herding", {"rounds": "coreset"})
    Traceback (most recent call last):
    ...
    persona_index.errors.StrategyParameterError: herding: rounds='coreset' needs engine=ray (the local engine has no rounds)
    >>> validate_params("core-farthest", {"trim": 1.0})
    Traceback (most recent call last):
    ...
    persona_index.errors.StrategyParameterError: core-farthest: trim=1.0 is out of range; valid: [0.0, 1.0)
    """
    spec = get_spec(name)
    known = {p.name: p for p in spec.params}
    out = {}
    for key, v in (params or {}).items():
        p = known.get(key)
        if p is None:
            valid = ", ".join(known) or "none"
            raise StrategyParameterError(
                f"strategy {name!r} takes no parameter {key!r}; its parameters: {valid}")
        if v is None:
            if not p.nullable:
                raise StrategyParameterError(f"{name}: {key} may not be null")
            out[key] = None
        elif p.type in ("float", "int"):
            out[key] = _number(spec, p, v)
        elif p.type == "choice":
            if v not in p.choices:
                raise StrategyParameterError(
                    f"{name}: {key}={v!r} is not one of {', '.join(p.choices)}")
            out[key] = v
        elif p.type == "names":
            names = [v] if isinstance(v, str) else v
            if not isinstance(names, (list, tuple)) or not all(isinstance(x, str) and x
                                                               for x in names):
                raise StrategyParameterError(f"{name}: {key} must be attribute names, got {v!r}")
            out[key] = list(names)
        elif p.type == "target":
            out[key] = _target(name, key, v)
    if "rounds" in out and out.get("engine") != "ray":
        raise StrategyParameterError(f"{name}: rounds={out['rounds']!r} needs engine=ray "
                                     "(the local engine has no rounds)")
    return out


def _target(name, key, v) -> dict:
    if not isinstance(v, dict):
        raise StrategyParameterError(f"{name}: {key} must map attribute -> value -> weight")
    out = {}
    for attr, dist in v.items():
        if not isinstance(dist, dict) or not dist:
            raise StrategyParameterError(f"{name}: {key} for {attr!r} must map values to weights")
        clean = {}
        for val, w in dist.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
                    or w < 0:
                raise StrategyParameterError(
                    f"{name}: target weight {attr}={val}:{w!r} must be a finite number >= 0")
            clean[val] = float(w)
        if sum(clean.values()) <= 0:
            raise StrategyParameterError(f"{name}: target weights for {attr!r} sum to 0")
        out[attr] = clean
    return out
