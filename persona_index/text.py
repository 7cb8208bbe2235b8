"""Identity: what counts as the same text, a persona's id, safe column names.

The ground floor of the package: it imports nothing from persona_index, so
ingest, the store, MinHash, tagging and synthesis can all depend on it without
an import circle (one place each for identity, as simonw/llm's ``Collection``
owns ``content_hash``).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

__all__ = ["RESERVED", "TEXT_FIELDS", "normalize_text", "persona_id", "column_name", "assign_columns",
           "as_text"]

#: columns every store has; everything else is an attribute or a plain column
RESERVED = ("id", "text", "vector", "source", "source_line", "licence")
#: field names tried, in order, for the persona text when none is named
TEXT_FIELDS = ("persona", "input persona", "text", "description")


def normalize_text(text: str) -> str:
    """NFKC, collapsed whitespace, case-folded: what counts as 'the same text'.

    Examples
    --------
    >>> normalize_text("  \\uff23af\\u00e9\\tTEACHER  ")  # a full-width C, a tab
    'café teacher'
    """
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def persona_id(text: str) -> str:
    """Stable 80-bit id of a persona: sha256 of its normalised text.

    Examples
    --------
    >>> persona_id("A Nurse")
    '19ec70d333f07585822c'
    >>> persona_id("a   nurse") == persona_id("A Nurse")
    True
    >>> persona_id("a nurse!") == persona_id("A Nurse")
    False
    """
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()[:20]


def column_name(name: str) -> str:
    """A field name as a safe SQL column name (lower case, [a-z0-9_]).

    Examples
    --------
    >>> [column_name(n) for n in ("Age Band", "2nd job", "  ", "id", "vector")]
    ['age_band', 'f_2nd_job', 'field', 'field_id', 'field_vector']
    """
    out = re.sub(r"[^0-9a-z_]+", "_", str(name).strip().lower()).strip("_") or "field"
    if out[0].isdigit():
        out = "f_" + out
    if out in RESERVED:
        out = "field_" + out
    return out


def assign_columns(fields, mapping: dict | None, columns=()) -> tuple[dict, dict]:
    """The column of each source field, and the store's mapping grown by the new ones.

    ``mapping``: the store's stored mapping (source field name, exact, case
    kept -> column), in first-seen order; None for a store written before
    mappings were stored. ``columns``: the store's existing columns. Returns
    ``(chosen, grown)``: ``{field: column}`` for ``fields`` (in ``fields``'s
    order) and the mapping with the new fields appended.

    The rule: a field in ``mapping`` keeps its column. New fields are taken in
    an order that does not depend on key order: first those whose name is
    already a column name (``column_name(f) == f``), then the others in code
    point order of their names. Each gets ``column_name(f)`` when that is
    free, or is an existing column no mapped field owns and ``column_name(f)``
    names it (identity: how stores without a mapping read); otherwise the next
    free ``column_name(f)_2``, ``_3``, ... (free: no existing column, no
    mapped column).

    Examples
    --------
    >>> chosen, grown = assign_columns(["Region", "region"], {})
    >>> chosen, grown
    ({'Region': 'region_2', 'region': 'region'}, {'region': 'region', 'Region': 'region_2'})
    >>> assign_columns(["region_2", "region"], grown, ["region", "region_2"])[0]
    {'region_2': 'region_2_2', 'region': 'region'}
    >>> assign_columns(["Region", "region"], None, ["region", "region_2"])[0]  # no mapping stored
    {'Region': 'region_3', 'region': 'region'}
    """
    grown = dict(mapping or {})
    owned = set(grown.values())
    existing = set(columns)
    new = sorted({f for f in fields if f not in grown}, key=lambda f: (column_name(f) != f, f))
    for f in new:
        base = col = column_name(f)
        i = 2
        while col in owned or (col in existing and col != base):
            col, i = f"{base}_{i}", i + 1
        grown[f] = col
        owned.add(col)
    return {f: grown[f] for f in fields}, grown


def as_text(v):
    """A stored value as text: None and strings as they are, nested values as
    JSON, dates in ISO form, anything else by ``str``.

    Examples
    --------
    >>> [as_text(v) for v in (None, "a", 3, True, {"k": [1, "é"]})]
    [None, 'a', '3', 'True', '{"k": [1, "é"]}']
    """
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (dict, list, tuple)):  # nested values as JSON text (timestamps as ISO)
        return json.dumps(v, ensure_ascii=False, default=_json_default)
    return _json_default(v)


def _json_default(v):
    iso = getattr(v, "isoformat", None)
    return iso() if iso else str(v)
