"""Published persona data sets, read as they are published.

``ingest --schema NAME`` (``schema=`` in Python) sets the text field, the
attributes and, when the user gives none, the data set's licence; ``auto``
(the CLI's default) picks a schema when the columns say so unambiguously and
says which. Records pass through :func:`apply` on their way in, so a schema
can derive fields:

* ``personahub``: the persona file (``persona``) and the task files
  (``input persona``, ``synthesized text`` kept as a plain column);
  CC-BY-NC-SA-4.0.
* ``persona-chat`` (Synthetic-Persona-Chat CSV): each row holds two
  personas, ``user 1 personas`` and ``user 2 personas`` (fact sentences,
  joined by spaces); both are read, each as its own record with the
  attribute ``speaker`` (``user 1`` or ``user 2``) and the row's line;
  CC-BY-4.0.
* ``nemotron`` (Nemotron-Personas parquet): ``persona`` is the text (another
  ``*_persona`` column with ``text_field``); the other persona columns stay
  plain columns; ``sex``, ``occupation``, ``education_level``,
  ``marital_status``, ``state`` and ``country`` are attributes, and
  ``age_band`` is derived from the integer ``age`` (bands 18-24, 25-34,
  35-44, 45-54, 55-64, 65+); CC-BY-4.0.
* ``finepersonas`` (FinePersonas): ``persona`` is the text; the data set's
  ``id`` is kept as ``source_id`` (the store's ``id`` is the text's hash);
  ``labels`` (JSON text of a list) stays a plain text column and its first
  label is the attribute ``label`` (one stratum per persona, for
  ``sample --by label``); llama3.
* ``profiles``: structured rows without a text (age, sex, city_country,
  education, occupation, income, ...). The text is composed by a template
  (:func:`compose`; :data:`DEFAULT_TEMPLATE` unless ``template=`` is given);
  ``sex``, ``education``, ``occupation``, ``city_country`` are attributes,
  ``age_band`` is derived from ``age`` and ``income_band`` from a numeric
  ``income`` (:data:`INCOME_EDGES`: under 25000, 25000-49999, ...,
  150000+); no licence. Detected only when the columns include age, sex and
  occupation and none could be a text (``text``, ``description``, ``*persona``,
  ``*personas``).

With any schema or none, ``bands={"age": [18, 25, 35]}`` (``--bands
age=18,25,35``) derives the attribute ``age_band`` from a numeric field
(:func:`band`), replacing a schema's own.

Examples
--------
>>> detect(["uuid", "persona", "professional_persona", "age", "sex"])
'nemotron'
>>> apply("nemotron", {"persona": "p", "age": 37})["age_band"]
'35-44'
>>> detect(["text"]) is None
True
>>> detect(["id", "persona", "labels"]), detect(["age", "sex", "occupation", "city_country"])
('finepersonas', 'profiles')
>>> r = apply("finepersonas", {"id": "7", "persona": "p", "labels": '["Education", "Art"]'})
>>> r["source_id"], r["label"], r["labels"]
('7', 'Education', '["Education", "Art"]')
>>> apply("profiles", {"age": 41, "sex": "male", "occupation": "baker", "income": 50000})["text"]
'41-year-old male baker, income: 50000'
>>> apply("profiles", {"age": 41, "income": 50000})["income_band"]
'50000-74999'
>>> apply("profiles", {"age": 41, "sex": None}, "A {age}-year-old[ {sex}] person")["text"]
'A 41-year-old person'
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import re
from typing import Iterable, Iterator, Mapping

from .errors import IngestOptionError, InputFileError

AGE_EDGES = (18, 25, 35, 45, 55, 65)
#: default bands of a profile's numeric ``income`` (a year's income, any currency)
INCOME_EDGES = (25000, 50000, 75000, 100000, 150000)
#: a profile's text when no template is given (see :func:`compose`)
DEFAULT_TEMPLATE = ("[{age}-year-old ][{sex} ][{occupation}][ from {city_country}]"
                    "[, education: {education}][, income: {income}]")

SCHEMAS = {
    "personahub": {"licence": "CC-BY-NC-SA-4.0", "attrs": []},
    "persona-chat": {"licence": "CC-BY-4.0", "text_field": "persona", "attrs": ["speaker"]},
    "nemotron": {"licence": "CC-BY-4.0", "text_field": "persona",
                 "attrs": ["sex", "age_band", "occupation", "education_level", "marital_status",
                           "state", "country"]},
    "finepersonas": {"licence": "llama3", "text_field": "persona", "attrs": ["label"]},
    "profiles": {"licence": None, "text_field": "text",
                 "attrs": ["sex", "age_band", "education", "occupation", "city_country",
                           "income_band"]},
}
_SLOT = re.compile(r"\{([^{}\[\]]*)\}")


def _number(v):
    """``v`` as a finite number (numeric text too, as CSV cells are), else None."""
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return v


def _fmt(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def band(value, edges) -> str | None:
    """The band of a number between strictly ascending ``edges``: ``under E0``,
    ``E0-(E1-1)``, ..., ``En+`` (a band holds its lower edge; between non-integer
    edges the label is ``lo-<hi``). None for a missing or non-numeric value.

    >>> [band(v, (18, 25, 65)) for v in (17, 18, 24.5, "25", 65, "n/a", None)]
    ['under 18', '18-24', '18-24', '25-64', '65+', None, None]
    """
    x = _number(value)
    if x is None:
        return None
    i = bisect.bisect_right(edges, x)
    if i == 0:
        return f"under {_fmt(edges[0])}"
    if i == len(edges):
        return f"{_fmt(edges[-1])}+"
    lo, hi = edges[i - 1], edges[i]
    if float(lo).is_integer() and float(hi).is_integer():
        return f"{_fmt(lo)}-{_fmt(hi - 1)}"
    return f"{_fmt(lo)}-<{_fmt(hi)}"


def age_band(age) -> str | None:
    """The :data:`AGE_EDGES` band of an age (:func:`band`); None when not a number.

    Examples
    --------
    >>> [age_band(a) for a in (17, 30, "44", 70, None)]
    ['under 18', '25-34', '35-44', '65+', None]
    """
    return band(age, AGE_EDGES)


def check_bands(bands: Mapping | None) -> dict:
    """``{field: edges}`` checked: edges are strictly ascending numbers, given
    as a sequence or one comma-separated text. Raises IngestOptionError.

    Examples
    --------
    >>> check_bands({"age": "18,25,65", "income": [1e4, 2.5e4]})
    {'age': (18, 25, 65), 'income': (10000, 25000)}
    >>> check_bands({"age": [30, 20]})
    Traceback (most recent call last):
        ...
    persona_index.errors.IngestOptionError: bands 'age=30,20': the edges must be strictly ascending
    """
    out = {}
    for name, edges in dict(bands or {}).items():
        try:
            parts = edges.split(",") if isinstance(edges, str) else list(edges)
        except TypeError:
            parts = []
        nums = [_number(e) for e in parts]
        spec = f"{name}={edges if isinstance(edges, str) else ','.join(map(str, parts))}"
        if not isinstance(name, str) or not name.strip() or not nums or None in nums:
            raise IngestOptionError(f"bands {spec!r}: give a field and comma-separated numbers, "
                                    "e.g. age=18,25,35,50,65")
        if any(b <= a for a, b in zip(nums, nums[1:])):
            raise IngestOptionError(f"bands {spec!r}: the edges must be strictly ascending")
        out[name.strip()] = tuple(int(x) if float(x).is_integer() else x for x in nums)
    return out


def parse_bands(specs: Iterable[str]) -> dict:
    """``NAME=EDGES`` texts (the CLI's ``--bands``) as :func:`check_bands` returns them.

    >>> parse_bands(["age=18,25,65"])
    {'age': (18, 25, 65)}
    """
    bands: dict = {}
    for spec in specs:
        name, eq, edges = spec.partition("=")
        if not eq or not name.strip():
            raise IngestOptionError(f"{spec!r} is not NAME=EDGES, e.g. age=18,25,35,50,65")
        if name.strip() in bands:
            raise IngestOptionError(f"{spec!r}: bands for {name.strip()!r} are given twice")
        bands[name.strip()] = edges
    return check_bands(bands)


@functools.lru_cache(maxsize=32)
def parse_template(template: str) -> tuple:
    """A template's parts ``(optional, text)``; raises IngestOptionError.

    Examples
    --------
    >>> parse_template("{age}-year-old[ from {city}]")
    ((False, '{age}-year-old'), (True, ' from {city}'))
    >>> parse_template("{age")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.IngestOptionError: template '{age': a {field} or [part] is not closed, ...
    """
    parts, pos = [], 0
    for m in re.finditer(r"\[([^\[\]]*)\]", template):
        parts += [(False, template[pos:m.start()]), (True, m.group(1))]
        pos = m.end()
    parts.append((False, template[pos:]))
    for _, text in parts:
        if any(c in _SLOT.sub("", text) for c in "[]{}") or any(
                not s.strip() for s in _SLOT.findall(text)):
            raise IngestOptionError(f"template {template!r}: a {{field}} or [part] is not closed, "
                                    "empty or nested")
    if not _SLOT.search(template):
        raise IngestOptionError(f"template {template!r} names no {{field}}")
    return tuple(p for p in parts if p[1])


def check_template(template: str) -> str:
    """``template`` if it parses (see :func:`compose`); raises IngestOptionError.

    Examples
    --------
    >>> check_template("[{sex} ]{occupation}")
    '[{sex} ]{occupation}'
    >>> check_template(42)
    Traceback (most recent call last):
        ...
    persona_index.errors.IngestOptionError: a template is a text, got int
    """
    if not isinstance(template, str):
        raise IngestOptionError(f"a template is a text, got {type(template).__name__}")
    parse_template(template)
    return template


def template_fields(template: str) -> list:
    """The field names a template's ``{field}`` slots name, in order.

    Examples
    --------
    >>> template_fields("[{ sex } ]{occupation}[ from {city_country}]")
    ['sex', 'occupation', 'city_country']
    """
    return [s.strip() for s in _SLOT.findall(template)]


class _Missing(KeyError):
    pass


def _shown(v) -> str | None:
    if isinstance(v, float):
        return None if not math.isfinite(v) else _fmt(v)
    return None if v is None or not str(v).strip() else str(v).strip()


def compose(template: str, rec: dict) -> str:
    """A profile's text: each ``{field}`` becomes the record's value; a
    ``[part]`` is left out when a field it names is missing (absent, null or
    blank); spaces collapse, none stays before a punctuation mark, and the ends
    lose spaces and commas. '' when no
    field has a value. A missing field outside ``[ ]`` raises KeyError.

    >>> compose(DEFAULT_TEMPLATE, {"age": 34.0, "sex": "female", "city_country": "Lyon, France"})
    '34-year-old female from Lyon, France'
    """
    out, filled = [], False
    for optional, text in parse_template(template):
        names = [s.strip() for s in _SLOT.findall(text)]
        vals = [_shown(rec.get(s)) for s in names]
        if None in vals:
            if optional:
                continue
            raise _Missing(names[vals.index(None)])
        filled = filled or bool(names)
        it = iter(vals)
        out.append(_SLOT.sub(lambda m: next(it), text))
    text = re.sub(r" ([,.;:!?])", r"\1", " ".join("".join(out).split()))
    return text.strip(" ,") if filled else ""


def _labels(raw):
    """(the labels as JSON text, the first label) of a FinePersonas ``labels`` value."""
    v = raw
    if isinstance(raw, str):
        try:
            v = json.loads(raw)
        except ValueError:
            return raw, None
    text = raw if raw is None or isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
    if not isinstance(v, (list, tuple)):
        return text, None
    return text, next((str(x).strip() for x in v if x is not None and str(x).strip()), None)


def detect(columns: Iterable[str]) -> str | None:
    """The schema these columns unambiguously belong to, else None.

    Examples
    --------
    >>> detect(["user 1 personas", "user 2 personas"]), detect(["input persona"])
    ('persona-chat', 'personahub')
    >>> detect(["age", "sex", "occupation", "description"]) is None  # a text column: not profiles
    True
    """
    cols = set(columns)
    if "user 1 personas" in cols:
        return "persona-chat"
    if "persona" in cols and "professional_persona" in cols and "age" in cols:
        return "nemotron"
    if "input persona" in cols or ("persona" in cols and "synthesized text" in cols):
        return "personahub"
    if {"id", "persona", "labels"} <= cols:
        return "finepersonas"
    if {"age", "sex", "occupation"} <= cols and not any(
            c in ("text", "description") or re.search(r"personas?$", c) for c in cols):
        return "profiles"
    return None


def apply(name: str, rec: dict, template: str | None = None, *, speaker: str = "user 1") -> dict:
    """One record as the schema reads it (``template``: the profiles text;
    ``speaker``: which persona of a persona-chat row, ``user 1`` or ``user 2``).

    Examples
    --------
    >>> apply("persona-chat", {"user 1 personas": "I like cats.\\nI am a nurse.\\n"})["persona"]
    'I like cats. I am a nurse.'
    >>> apply("persona-chat", {"user 2 personas": "I fish."}, speaker="user 2")["persona"]
    'I fish.'
    >>> apply("profiles", {"age": 30, "occupation": "nurse"}, "{occupation}[, aged {age}]")["text"]
    'nurse, aged 30'
    """
    if name == "persona-chat":
        facts = rec.get(f"{speaker} personas")
        rec = dict(rec)
        rec["speaker"] = speaker
        rec["persona"] = (" ".join(s.strip() for s in facts.splitlines() if s.strip())
                          if isinstance(facts, str) else None)
    elif name == "nemotron":
        rec = dict(rec)
        rec["age_band"] = age_band(rec.get("age"))
    elif name == "finepersonas":
        rec = dict(rec)
        if "id" in rec:  # the store's id is the text's hash
            rec["source_id"] = rec.pop("id")
        rec["labels"], rec["label"] = _labels(rec.get("labels"))
    elif name == "profiles":
        rec = dict(rec)
        rec["text"] = compose(template or DEFAULT_TEMPLATE, rec)
        if "age" in rec:
            rec["age_band"] = age_band(rec["age"])
        if "income" in rec:
            rec["income_band"] = band(rec["income"], INCOME_EDGES)
    return rec


_SPEAKER = "\0speaker"


def _speakers(name, records):
    """persona-chat: each row twice, once per speaker with a persona (the
    second only where ``user 2 personas`` is in the row); other schemas: as is."""
    for n, rec in records:
        if name != "persona-chat":
            yield n, rec
            continue
        yield n, {**rec, _SPEAKER: "user 1"}
        if rec.get("user 2 personas") not in (None, ""):  # an empty cell holds no persona
            yield n, {**rec, _SPEAKER: "user 2"}


def wrap(name: str | None, records: Iterable[tuple[int, dict]], *, path: str = "<records>",
         template: str | None = None, bands: Mapping | None = None) -> Iterator[tuple[int, dict]]:
    """The records as schema ``name`` reads them (None: as they are), with a
    ``FIELD_band`` for each of ``bands`` (checked by :func:`check_bands`; they
    replace a schema's band of the same name). Raises InputFileError naming the
    line where a template field outside ``[ ]`` is missing, and the file when
    a template or band field is in no record at all.

    Examples
    --------
    >>> list(wrap("nemotron", [(1, {"persona": "p", "age": 70})], bands={"age": (18, 40)}))
    [(1, {'persona': 'p', 'age': 70, 'age_band': '40+'})]
    >>> rows = wrap("profiles", [(1, {"sex": "f"})], path="p.csv", template="{age}-year-old")
    >>> list(rows)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: p.csv:1: template field {age}: no such field in this ...
    """
    bands = bands or {}
    seen: set = set()
    for n, rec in _speakers(name, records):
        speaker = rec.pop(_SPEAKER, "user 1")
        seen.update(rec)
        if name:
            try:
                rec = apply(name, rec, template, speaker=speaker)
            except _Missing as exc:
                f = exc.args[0]
                why = (f"no value in this record; write [ ... {{{f}}} ...] to leave the phrase "
                       "out when it is missing" if f in rec
                       else f"no such field in this record (fields: {sorted(rec)})")
                raise InputFileError(path, n, f"template field {{{f}}}: {why}") from None
        seen.update(rec)
        if bands:
            rec = {**rec, **{f"{f}_band": band(rec.get(f), e) for f, e in bands.items()}}
        yield n, rec
    for what, fields in (("template", template_fields(template) if template else []),
                         ("bands", list(bands))):
        unknown = [f for f in fields if f not in seen]
        if unknown and seen:
            raise InputFileError(path, None, f"{what} field(s) {unknown} in no record "
                                             f"(fields: {sorted(seen)})")
