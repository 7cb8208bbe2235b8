"""The generated persona pool: the embedded default, no download needed.

Personas are composed from attribute tables written for this project
(``data/pool_tables.json``: 224 professions in 12 domains, 79 countries in 7
regions, 6 age bands, 4 expertise levels, 120 goals, 60 pastimes, 22
phrasings). Each persona names its profession and two to four further
attributes, the granularity Persona Hub recommends, and carries the
attributes it names as columns (``profession``, ``domain``, ``country``,
``region``, ``age_band``, ``expertise``); an attribute the text does not name
is left null, so a stratum never claims what the text does not say.

By default every country and age band is equally likely. With
``weights="population"`` countries are drawn in proportion to their population
(World Bank 2024) and age bands in proportion to the world's adult age
structure (UN World Population Prospects 2024); the figures, their sources
and licences are in ``data/population.json``. The weights apply to the
personas whose text names a country or an age; ``marginal_errors`` measures
how far a drawn pool is from the target shares.
"""

from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Iterator

import numpy as np

from .errors import UnknownWeightsError

ATTRIBUTES = ("profession", "domain", "country", "region", "age_band", "expertise")
LICENCE = "Apache-2.0 (persona-index generated pool)"
WEIGHTS = ("uniform", "population")
WEIGHTED = ("country", "age_band")  # the attributes that weights apply to


@lru_cache(maxsize=1)
def tables() -> dict:
    """The attribute tables (``data/pool_tables.json``), read once.

    Examples
    --------
    >>> sorted(tables())
    ['age_bands', 'expertise', 'goals', 'hobbies', 'places', 'professions', 'regions', 'templates']
    >>> sum(len(ps) for ps in tables()["professions"].values()), len(tables()["templates"])
    (224, 22)
    """
    raw = resources.files("persona_index").joinpath("data/pool_tables.json").read_text("utf-8")
    return json.loads(raw)


@lru_cache(maxsize=1)
def population_tables() -> dict:
    """The population figures (``data/population.json``), read once.

    Country populations (``countries.population``: name -> ISO code, the
    source's name and its count) and world population by 5-year age group
    (``age_bands.groups``, thousands) with the groups that make each of the
    pool's age bands (``age_bands.bands``); each part names its ``source``:
    repository, file, commit, year and licence.

    Examples
    --------
    >>> t = population_tables()
    >>> t["countries"]["source"]["year"], t["countries"]["population"]["India"]["iso3"]
    (2024, 'IND')
    >>> t["age_bands"]["source"]["licence"].split(" (")[0]
    'CC BY 3.0 IGO'
    >>> t["countries"]["missing"]  # every pool country is in the source
    []
    """
    raw = resources.files("persona_index").joinpath("data/population.json").read_text("utf-8")
    return json.loads(raw)


def _check_weights(weights) -> str:
    if weights not in WEIGHTS:
        raise UnknownWeightsError(f"unknown weights {weights!r}; valid: {', '.join(WEIGHTS)}")
    return weights


@lru_cache(maxsize=None)
def _targets(weights: str) -> tuple:
    t = tables()
    countries = [c for cs in t["regions"].values() for c in cs]
    bands = list(t["age_bands"])
    if weights == "uniform":
        cw = np.ones(len(countries))
        aw = np.ones(len(bands))
    else:
        pop = population_tables()
        cw = np.array([pop["countries"]["population"][c]["population"] for c in countries], float)
        groups = pop["age_bands"]["groups"]
        aw = np.array([sum(f * groups[g] for g, f in pop["age_bands"]["bands"][b].items())
                       for b in bands], float)
    return (tuple(zip(countries, (cw / cw.sum()).tolist())),
            tuple(zip(bands, (aw / aw.sum()).tolist())))


def target_shares(weights: str = "population") -> dict[str, dict[str, float]]:
    """The target share of each country and age band under ``weights``.

    Parameters
    ----------
    weights : {"population", "uniform"}
        ``"population"``: country populations and world adult age structure
        from ``data/population.json``, normalised over the pool's 79
        countries and 6 bands; ``"uniform"``: equal shares.

    Returns
    -------
    dict
        ``{"country": {name: share}, "age_band": {band: share}}``, in the
        order of ``tables()``; each part sums to 1.

    Examples
    --------
    >>> s = target_shares()
    >>> len(s["country"]), len(s["age_band"]), round(sum(s["country"].values()), 9)
    (79, 6, 1.0)
    >>> max(s["country"], key=s["country"].get), round(s["country"]["India"], 3)
    ('India', 0.211)
    >>> {b: round(v, 3) for b, v in s["age_band"].items()}
    {'18-24': 0.152, '25-34': 0.206, '35-44': 0.196, '45-54': 0.162, '55-64': 0.136, '65+': 0.147}
    >>> target_shares("uniform")["age_band"]["65+"] == 1 / 6
    True
    """
    countries, bands = _targets(_check_weights(weights))
    return {"country": dict(countries), "age_band": dict(bands)}


def marginal_errors(records, weights: str = "population") -> dict[str, float]:
    """Total variation distance between drawn and target marginals.

    For ``country`` and ``age_band``: half the sum over values of
    |drawn share - target share|, among the records that name the attribute
    (the others leave it null and are not counted). 0 is a perfect match, 1
    means no overlap; a value the target does not know counts in full.

    Parameters
    ----------
    records : iterable of dict
        Personas as ``generate`` yields them (or any dicts with those keys).
    weights : {"population", "uniform"}
        The targets to compare with (``target_shares(weights)``).

    Returns
    -------
    dict
        ``{"country": tv, "age_band": tv}``; NaN for an attribute that no
        record names.

    Examples
    --------
    >>> pop = list(generate(4000, seed=0, weights="population"))
    >>> {a: round(v, 3) for a, v in marginal_errors(pop).items()}
    {'country': 0.05, 'age_band': 0.018}
    >>> uni = list(generate(4000, seed=0))
    >>> {a: round(v, 3) for a, v in marginal_errors(uni).items()}
    {'country': 0.573, 'age_band': 0.051}
    >>> marginal_errors([{"country": "Kenya", "age_band": None}], "uniform")["age_band"]
    nan
    """
    targets = target_shares(weights)
    counts: dict[str, dict] = {a: {} for a in WEIGHTED}
    for rec in records:
        for a in WEIGHTED:
            v = rec.get(a)
            if v is not None:
                counts[a][v] = counts[a].get(v, 0) + 1
    out = {}
    for a in WEIGHTED:
        n = sum(counts[a].values())
        if n == 0:
            out[a] = float("nan")
            continue
        keys = set(targets[a]) | set(counts[a])
        out[a] = 0.5 * sum(abs(counts[a].get(k, 0) / n - targets[a].get(k, 0.0)) for k in keys)
    return out


_FIELDS_CACHE: dict = {}


def _fields(template: str) -> list[str]:
    if template not in _FIELDS_CACHE:
        _FIELDS_CACHE[template] = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return _FIELDS_CACHE[template]


def _article(text: str) -> str:
    # "A" before a vowel sound: good enough for our tables (no "an hour" cases)
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", lambda m: m.group(1) + "n ", text)


def generate(count: int, seed=None, weights: str = "uniform") -> Iterator[dict]:
    """Yield ``count`` generated personas as dicts (``persona`` plus attributes).

    Parameters
    ----------
    count : int
        How many to compose (duplicates are possible but rare; the store's
        dedup drops them).
    seed : None, int or numpy Generator
        Same seed (and weights), same personas.
    weights : {"uniform", "population"}
        How countries and age bands are drawn, for the personas whose
        template names them: ``"uniform"`` (default) equally;
        ``"population"`` in proportion to ``target_shares("population")``
        (see ``data/population.json``). An unknown name raises
        ``UnknownWeightsError`` at the call, before anything is drawn.

    Examples
    --------
    >>> first, second, third = generate(3, seed=0)
    >>> first["persona"]
    'A graphic designer turned consultant who is running for local office.'
    >>> first["profession"], first["domain"], first["country"]  # the text names no country
    ('graphic designer', 'arts_media', None)
    >>> third["country"], third["region"], third["country"] in third["persona"]
    ('Czechia', 'Europe', True)
    >>> list(generate(5, seed=1)) == list(generate(5, seed=1))
    True
    >>> [p["country"] for p in generate(8, seed=0, weights="population") if p["country"]]
    ['Malaysia', 'Nigeria', 'China', 'China', 'Pakistan', 'Bangladesh']
    """
    _check_weights(weights)
    return _compose(int(count), np.random.default_rng(seed), weights)


def _pick(rng, n: int, cdf) -> int:
    if cdf is None:
        return int(rng.integers(n))
    # the last cumulative share may round just below 1
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), n - 1)


def _compose(count: int, rng, weights: str) -> Iterator[dict]:
    t = tables()
    prof = [(p, dom) for dom, ps in t["professions"].items() for p in ps]
    ctry = [(c, reg) for reg, cs in t["regions"].items() for c in cs]
    ages = list(t["age_bands"].items())
    exps = list(t["expertise"].items())
    goals, hobbies, places, templates = t["goals"], t["hobbies"], t["places"], t["templates"]
    c_cdf = a_cdf = None  # uniform keeps its integer draws, so its personas do not change
    if weights == "population":
        share = target_shares("population")
        c_cdf = np.cumsum([share["country"][c] for c, _ in ctry])
        a_cdf = np.cumsum([share["age_band"][b] for b, _ in ages])
    for _ in range(count):
        tpl = templates[rng.integers(len(templates))]
        fields = {f.lower() for f in _fields(tpl)}
        p, dom = prof[rng.integers(len(prof))]
        rec = {"profession": p, "domain": dom, "country": None, "region": None,
               "age_band": None, "expertise": None}
        vals = {"profession": p}
        if "country" in fields:
            c, reg = ctry[_pick(rng, len(ctry), c_cdf)]
            rec["country"], rec["region"] = c, reg
            vals["country"] = c
        if "place" in fields:
            vals["place"] = places[rng.integers(len(places))]
        if "age_pre" in fields or "age_post" in fields:
            band, forms = ages[_pick(rng, len(ages), a_cdf)]
            rec["age_band"] = band
            vals["age_pre"] = forms["pre"][rng.integers(len(forms["pre"]))]
            vals["age_post"] = forms["post"][rng.integers(len(forms["post"]))]
        if "exp" in fields:
            level, words = exps[rng.integers(len(exps))]
            rec["expertise"] = level
            vals["exp"] = words[rng.integers(len(words))]
        g = goals[rng.integers(len(goals))]
        h = hobbies[rng.integers(len(hobbies))]
        vals.update(goal=g, goal_bare=g[4:], hobby=h, hobby_bare=h[4:])
        for key in list(vals):
            vals[key[0].upper() + key[1:]] = vals[key][0].upper() + vals[key][1:]
        text = _article(tpl.format(**vals))
        yield {"persona": text[0].upper() + text[1:], **rec}
