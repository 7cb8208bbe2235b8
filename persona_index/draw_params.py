"""A draw's strategy parameters: from the command line's spellings
(:func:`sampling_params`) and, for the stratified strategy, resolved on the
snapshot a draw reads (:func:`stratified_params`)."""

from __future__ import annotations

from typing import Sequence

from .snapshot import Snapshot

__all__ = ["stratified_params", "sampling_params"]


def stratified_params(snap: Snapshot, params: dict) -> tuple[dict, dict, dict | None]:
    """The stratified parameters a draw on ``snap`` runs with and records:
    ``by`` (default: every store attribute), ``world`` resolved into shares,
    target values checked against the store (a value it lacks raises
    :class:`~persona_index.errors.StrategyParameterError` naming the valid
    ones), and the effective ``method``, ``quotas``, ``min_per_cell`` and
    ``allocation``.
    Returns (params, the store's columns of ``by``, what ``world`` matched).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(10)],
    ...             attributes=["region"])
    >>> p, cols, _ = stratified_params(idx.snapshot(), {"target": {"region": {"A": 1}}})
    >>> p
    {'target': {'region': {'A': 1}}, 'by': ['region'], 'method': 'herding', 'quotas': 'raking', 'min_per_cell': 0, 'allocation': 'proportional'}
    >>> stratified_params(idx.snapshot(), {"target": {"region": {"C": 1}}})
    Traceback (most recent call last):
    ...
    persona_index.errors.StrategyParameterError: target value 'C' of 'region' is not in the store; its values: A, B
    """
    from .errors import StrategyParameterError
    from .samplers.registry import STRATEGIES
    from .targets import world_target

    params = dict(params)
    world = params.pop("_world", False)
    by = params.get("by")
    matched = None
    if world:
        names = list(by) if by else list(snap.attributes)
        names = [a for a in names if a in snap.attributes]
        target, matched = world_target(snap.attribute_columns(names), by)
        params["target"] = target
        if not by:
            by = list(target)
    by = by or snap.attributes
    if isinstance(by, str):
        by = [by]
    params["by"] = list(by)
    cols = snap.attribute_columns(list(by))
    if params.get("quotas", "raking") == "raking":
        for name, dist in (params.get("target") or {}).items():
            if name not in cols:
                continue  # the strategy names it: a target outside the strata
            have = {("(none)" if v is None else str(v)) for v in cols[name]}
            unknown = sorted(str(v) for v, w in dist.items() if str(v) not in have)
            if unknown:
                vals = sorted(have)
                shown = ", ".join(vals[:40]) + (f", ... ({len(vals)} in all)" if len(vals) > 40
                                                else "")
                raise StrategyParameterError(
                    f"target value{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))} of {name!r} "
                    f"{'are' if len(unknown) > 1 else 'is'} not in the store; its values: {shown}")
    for p in STRATEGIES["stratified"].params:  # record what ran, not what was left implicit
        if p.name not in params and p.name in ("method", "quotas", "min_per_cell"):
            params[p.name] = p.default
    if params.get("allocation") is None:
        params["allocation"] = "proportional" if params.get("target") and \
            params["quotas"] == "raking" else "equal"
    return params, cols, matched


def sampling_params(*, by: Sequence[str] = (), allocation: str | None = None,
                    target: Sequence[str] = (), target_file=None,
                    stratum_method: str | None = None, extra: Sequence[str] = (),
                    **named) -> dict:
    """A strategy's parameters from command-line spellings: ``by``, targets as
    ``ATTR=VALUE:WEIGHT,...`` and from a JSON ``target_file``, the in-stratum
    method, ``NAME=VALUE`` strings (values parsed as JSON where they parse) and
    any named values (``None`` left out). Validation is
    :func:`~persona_index.samplers.registry.validate_params`. The target
    ``world`` is not a parameter: give it to :func:`draw` as ``target="world"``.

    Examples
    --------
    >>> sampling_params(target=["region=Africa:2,Asia:1"], extra=["n_cells=8"], beta=None)
    {'target': {'region': {'Africa': 2.0, 'Asia': 1.0}}, 'by': ['region'], 'n_cells': 8}
    >>> sampling_params(extra=["n_cells"])
    Traceback (most recent call last):
    persona_index.errors.StrategyParameterError: extra='n_cells' must be NAME=VALUE
    >>> sampling_params(target=["region=A:1", "region=B:1"])
    Traceback (most recent call last):
    persona_index.errors.StrategyParameterError: two targets for 'region': give one per attribute
    """
    import json

    from .errors import StrategyParameterError
    from .samplers.stratified import parse_target
    from .targets import load_target_file

    params: dict = {}
    if by:
        params["by"] = list(by)
    targets: dict = {}
    parts = [parse_target(t) for t in target]
    if target_file:
        parts += list(load_target_file(target_file).items())
    for name, dist in parts:
        if name in targets:
            raise StrategyParameterError(f"two targets for {name!r}: give one per attribute")
        targets[name] = dist
    if targets:
        params["target"] = targets
        params.setdefault("by", list(targets))
    if allocation:
        params["allocation"] = allocation
    if stratum_method:
        params["method"] = stratum_method
    params.update({k: v for k, v in named.items() if v is not None})
    for kv in extra:
        if "=" not in kv:
            raise StrategyParameterError(f"extra={kv!r} must be NAME=VALUE")
        k, v = kv.split("=", 1)
        try:
            params[k] = json.loads(v)
        except json.JSONDecodeError:
            params[k] = v
    return params
