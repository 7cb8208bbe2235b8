"""The generated persona pool: the embedded default, no download needed.

Personas are composed from attribute tables written for this project
(``data/pool_tables.json``: 224 professions in 12 domains, 79 countries in 7
regions, 6 age bands, 4 expertise levels, 120 goals, 60 pastimes, 22
phrasings). Each persona names its profession and two to four further
attributes, the granularity Persona Hub recommends, and carries the
attributes it names as columns (``profession``, ``domain``, ``country``,
``region``, ``age_band``, ``expertise``); an attribute the text does not name
is left null, so a stratum never claims what the text does not say.
"""

from __future__ import annotations

import json
import re
import string
from functools import lru_cache
from importlib import resources
from typing import Iterator

import numpy as np

ATTRIBUTES = ("profession", "domain", "country", "region", "age_band", "expertise")
LICENCE = "Apache-2.0 (persona-index generated pool)"


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


_FIELDS_CACHE: dict = {}


def _fields(template: str) -> list[str]:
    if template not in _FIELDS_CACHE:
        _FIELDS_CACHE[template] = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return _FIELDS_CACHE[template]


def _article(text: str) -> str:
    # "A" before a vowel sound: good enough for our tables (no "an hour" cases)
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", lambda m: m.group(1) + "n ", text)


def generate(count: int, seed=None) -> Iterator[dict]:
    """Yield ``count`` generated personas as dicts (``persona`` plus attributes).

    Parameters
    ----------
    count : int
        How many to compose (duplicates are possible but rare; the store's
        dedup drops them).
    seed : None, int or numpy Generator
        Same seed, same personas.

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
    """
    rng = np.random.default_rng(seed)
    t = tables()
    prof = [(p, dom) for dom, ps in t["professions"].items() for p in ps]
    ctry = [(c, reg) for reg, cs in t["regions"].items() for c in cs]
    ages = list(t["age_bands"].items())
    exps = list(t["expertise"].items())
    goals, hobbies, places, templates = t["goals"], t["hobbies"], t["places"], t["templates"]
    for _ in range(int(count)):
        tpl = templates[rng.integers(len(templates))]
        fields = {f.lower() for f in _fields(tpl)}
        p, dom = prof[rng.integers(len(prof))]
        rec = {"profession": p, "domain": dom, "country": None, "region": None,
               "age_band": None, "expertise": None}
        vals = {"profession": p}
        if "country" in fields:
            c, reg = ctry[rng.integers(len(ctry))]
            rec["country"], rec["region"] = c, reg
            vals["country"] = c
        if "place" in fields:
            vals["place"] = places[rng.integers(len(places))]
        if "age_pre" in fields or "age_post" in fields:
            band, forms = ages[rng.integers(len(ages))]
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
