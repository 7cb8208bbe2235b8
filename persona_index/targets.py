"""Ready-made targets for stratified draws: a JSON target file, and ``world``,
the population shares the project ships (``data/population.json``).

A target maps attribute -> value -> weight (:func:`~persona_index.samplers.
registry.validate_params` checks the weights). ``world`` knows three
attributes: ``country`` (World Bank 2024 populations of the pool's 79
countries, normalised over them, by the pool's country name or by ISO 3166
alpha-3 code, whichever matches more of the store's values), ``region`` (the
sums of those country shares over the pool's seven regions,
``data/pool_tables.json``) and ``age_band`` (UN World Population Prospects
2024 adult age structure). It keeps the values the store holds, renormalised,
and says which attributes it matched.
"""

from __future__ import annotations

import json
import math
from typing import Mapping, Sequence

from .errors import InputFileError, StrategyParameterError

WORLD = "world"
#: the attributes ``world`` has shares for
WORLD_ATTRIBUTES = ("country", "region", "age_band")


def world_shares() -> dict[str, dict[str, float]]:
    """The ``world`` shares: country (by name), country ISO codes, region and age band.

    Examples
    --------
    >>> w = world_shares()
    >>> sorted(w), round(sum(w["region"].values()), 9)
    (['age_band', 'country', 'country_iso3', 'region'], 1.0)
    >>> round(w["region"]["Asia"], 3), round(w["country_iso3"]["IND"], 3)
    (0.605, 0.211)
    """
    from .generate import population_tables, tables, target_shares

    shares = target_shares("population")
    pop = population_tables()["countries"]["population"]
    region = {r: sum(shares["country"][c] for c in cs) for r, cs in tables()["regions"].items()}
    iso = {pop[c]["iso3"]: s for c, s in shares["country"].items()}
    return {"country": dict(shares["country"]), "country_iso3": iso, "region": region,
            "age_band": dict(shares["age_band"])}


def world_target(store_values: Mapping[str, Sequence], by: Sequence[str] | None = None
                 ) -> tuple[dict, dict]:
    """The ``world`` target over the attributes the store has (and ``by``
    names, when given), restricted to the values the store holds.

    Parameters
    ----------
    store_values : attribute name -> the store's values of it (any iterable).
    by : the strata of the draw; None: every attribute ``world`` knows.

    Returns
    -------
    (target, info): the target, and ``{"matched": [...], "unmatched": [...],
    "left_out_values": {attr: count}}`` (unmatched: the world attributes the
    store or ``by`` lacks; left out: world values absent from the store).

    Examples
    --------
    >>> t, info = world_target({"region": ["Asia", "Africa", None], "job": ["x"]})
    >>> sorted(t), round(sum(t["region"].values()), 9), info["matched"], info["unmatched"]
    (['region'], 1.0, ['region'], ['country', 'age_band'])
    >>> world_target({"job": ["x"]})
    Traceback (most recent call last):
    ...
    persona_index.errors.StrategyParameterError: target 'world' has shares for country, region, age_band; the strata have none of them
    """
    shares = world_shares()
    target, matched, left_out = {}, [], {}
    for name in WORLD_ATTRIBUTES:
        if name not in store_values or (by is not None and name not in by):
            continue
        have = {str(v) for v in store_values[name] if v is not None}
        table = shares[name]
        if name == "country":
            iso = shares["country_iso3"]
            if len(have & set(iso)) > len(have & set(table)):
                table = iso
        kept = {v: s for v, s in table.items() if v in have}
        if not kept:
            continue
        total = sum(kept.values())
        target[name] = {v: s / total for v, s in kept.items()}
        matched.append(name)
        left_out[name] = len(table) - len(kept)
    if not target:
        raise StrategyParameterError(
            f"target 'world' has shares for {', '.join(WORLD_ATTRIBUTES)}; the strata have "
            "none of them")
    return target, {"matched": matched,
                    "unmatched": [a for a in WORLD_ATTRIBUTES if a not in matched],
                    "left_out_values": left_out}


def load_target_file(path) -> dict:
    """A target from a JSON file ``{attr: {value: weight}}``; a malformed one
    raises :class:`~persona_index.errors.InputFileError` naming the file, the
    line where JSON parsing stopped, or the field.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "t.json")
    >>> _ = open(p, "w").write('{"region": {"Asia": 0.6, "Africa": 0.4}}')
    >>> load_target_file(p)
    {'region': {'Asia': 0.6, 'Africa': 0.4}}
    >>> _ = open(p, "w").write('{"region": {"Asia": "lots"}}')
    >>> load_target_file(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.InputFileError: ...t.json:1: weight of region=Asia must be a finite number >= 0, got 'lots'
    """
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), 1, f"not UTF-8 text ({exc.reason})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(str(path), exc.lineno, f"not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not doc:
        raise InputFileError(str(path), 1, "a target file is a JSON object "
                                           "{attribute: {value: weight}}")
    out = {}
    for attr, dist in doc.items():
        if not isinstance(dist, dict) or not dist:
            raise InputFileError(str(path), 1, f"target for {attr!r} must map values to weights")
        clean = {}
        for v, w in dist.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) \
                    or w < 0:
                raise InputFileError(str(path), 1, f"weight of {attr}={v} must be a finite "
                                                   f"number >= 0, got {w!r}")
            clean[v] = float(w) if isinstance(w, float) else w
        out[attr] = clean
    return out
