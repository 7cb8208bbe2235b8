"""Published persona data sets, read as they are published.

``ingest --schema NAME`` (``schema=`` in Python) sets the text field, the
attributes and, when the user gives none, the data set's licence; ``auto``
(the CLI's default) picks a schema when the columns say so unambiguously and
says which. Records pass through :func:`apply` on their way in, so a schema
can derive fields:

* ``personahub``: the persona file (``persona``) and the task files
  (``input persona``, ``synthesized text`` kept as a plain column);
  CC-BY-NC-SA-4.0.
* ``persona-chat`` (Synthetic-Persona-Chat CSV): a persona is the
  ``user 1 personas`` fact sentences joined by spaces; CC-BY-4.0.
* ``nemotron`` (Nemotron-Personas parquet): ``persona`` is the text (another
  ``*_persona`` column with ``text_field``); the other persona columns stay
  plain columns; ``sex``, ``occupation``, ``education_level``,
  ``marital_status``, ``state`` and ``country`` are attributes, and
  ``age_band`` is derived from the integer ``age`` (bands 18-24, 25-34,
  35-44, 45-54, 55-64, 65+); CC-BY-4.0.

Examples
--------
>>> detect(["uuid", "persona", "professional_persona", "age", "sex"])
'nemotron'
>>> apply("nemotron", {"persona": "p", "age": 37})["age_band"]
'35-44'
>>> detect(["text"]) is None
True
"""

from __future__ import annotations

from typing import Iterable, Iterator

AGE_BANDS = [(18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"), (65, "65+")]

SCHEMAS = {
    "personahub": {"licence": "CC-BY-NC-SA-4.0", "attrs": []},
    "persona-chat": {"licence": "CC-BY-4.0", "text_field": "persona", "attrs": []},
    "nemotron": {"licence": "CC-BY-4.0", "text_field": "persona",
                 "attrs": ["sex", "age_band", "occupation", "education_level", "marital_status",
                           "state", "country"]},
}


def age_band(age) -> str | None:
    if isinstance(age, bool) or not isinstance(age, (int, float)) or age != age:
        return None
    label = None
    for lo, name in AGE_BANDS:
        if age >= lo:
            label = name
    return label or "under 18"


def detect(columns: Iterable[str]) -> str | None:
    """The schema these columns unambiguously belong to, else None."""
    cols = set(columns)
    if "user 1 personas" in cols:
        return "persona-chat"
    if "persona" in cols and "professional_persona" in cols and "age" in cols:
        return "nemotron"
    if "input persona" in cols or ("persona" in cols and "synthesized text" in cols):
        return "personahub"
    return None


def apply(name: str, rec: dict) -> dict:
    """One record as the schema reads it."""
    if name == "persona-chat":
        facts = rec.get("user 1 personas")
        if isinstance(facts, str):
            rec = dict(rec)
            rec["persona"] = " ".join(s.strip() for s in facts.splitlines() if s.strip())
    elif name == "nemotron":
        rec = dict(rec)
        rec["age_band"] = age_band(rec.get("age"))
    return rec


def wrap(name: str, records: Iterable[tuple[int, dict]]) -> Iterator[tuple[int, dict]]:
    for n, rec in records:
        yield n, apply(name, rec)
