"""Plan and check: the validation pass of an ingest, one read, nothing written.

One pass over the records (:func:`prepare_file`, :func:`prepare_records`)
detects a published schema from the first record, gathers what each field
holds (:class:`FieldStats`), and under ``strict`` notes the first unusable
row. From that the columns are chosen (:class:`Plan`), ``strict`` is decided,
and the values are checked against the store's existing columns on one
snapshot of the store, which the write pass (:mod:`persona_index.ingest`) then
reads its dedup indexes from. A malformed input raises
:class:`~persona_index.errors.InputFileError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from .dedup import BLOCKING_MIN
from .errors import (
    IngestNote,
    IngestOptionError,
    IngestWarning,
    InputFileError,
    RowRejected,
)
from .errors import warn as _warn
from .readers import DEFAULT_BATCH, iter_file
from .text import TEXT_FIELDS, assign_columns

if TYPE_CHECKING:
    from .store import PersonaIndex

#: rows whose text is longer than this (UTF-8 bytes) are rejected
MAX_TEXT_BYTES = 1_000_000
DEFAULT_NEAR_DUP = 0.95
#: a string field is an attribute (a stratum) when it has at most this many
#: distinct values, values of at most ATTR_MAX_LEN characters, and either at
#: most ATTR_SMALL distinct values or at most half as many as there are rows
ATTR_MAX_DISTINCT = 1000
ATTR_MAX_LEN = 64
ATTR_SMALL = 20
#: from this many rows on, a field with one value on every row is no stratum
#: (a plain column: a stratum that cannot split anything)
SINGLE_VALUE_MIN_ROWS = 20
_DISTINCT_CAP = ATTR_MAX_DISTINCT + 1


def warn(message: str, category=IngestWarning) -> None:
    """:func:`persona_index.errors.warn`, an :class:`IngestWarning` by default."""
    _warn(message, category)


@dataclass
class IngestOptions:
    """How to ingest: one object for :func:`persona_index.ingest.ingest_file`,
    :func:`~persona_index.ingest.ingest_records` and
    :func:`persona_index.distributed.ingest_file_ray` (each also takes the
    fields as keyword arguments, which override ``options``).

    Attributes
    ----------
    fmt : {"jsonl", "csv", "parquet", "txt"}, optional
        A file's format (default: from its suffix; a folder: see
        :func:`persona_index.readers.iter_folder`).
    licence : str, optional
        Licence tag of every persona (default: the schema's, when one applies).
    text_field : str, optional
        The field holding the persona text (default: the first of
        :data:`TEXT_FIELDS` present).
    attrs : sequence of str, optional
        Attribute fields (default: short categorical string fields).
    near_dedup : bool, default True
        Drop near duplicates by cosine similarity of the embeddings.
    near_dup_threshold : float, default 0.95
        Cosine similarity at or above which a persona is a near duplicate of
        an earlier one (in the batch, in the input so far, or in the store).
    strict : bool, default False
        Refuse everything if any row is unusable (instead of rejecting the row).
    batch_size : int, default 1024
        Rows per embedding batch and per commit.
    report : str or writable text file, optional
        Where every dropped or rejected row goes, as one JSON line each.
    progress : bool, default False
        A progress bar on stderr.
    schema : str, optional
        A published data set's layout (:mod:`persona_index.schemas`),
        ``"auto"`` to detect it from the first record, or None / ``"none"``.
    template : str, optional
        The text of a ``profiles`` row, e.g. ``"A {age}-year-old
        {occupation}[ from {city_country}]"`` (``[ ]``: left out when a field
        in it is missing; see :func:`persona_index.schemas.compose`); it
        implies ``schema="profiles"`` under None or ``"auto"``.
    bands : dict, optional
        ``{field: ascending edges}``; each numeric field gets an attribute
        ``FIELD_band`` ("under 18", "18-24", ..., "65+"), with any schema.
    minhash : bool, dict or MinHashParams, default False
        Drop lexical near duplicates before embedding: MinHash over word
        1-grams, Persona Hub's defaults with True (128 permutations, estimated
        Jaccard >= 0.9), or ``{"threshold": ..., "num_perm": ..., "bands":
        ...}`` (see :mod:`persona_index.minhash`; the ``minhash`` extra).
    extra_columns : dict, optional
        Constant plain columns for every row (e.g. provenance of synthesis).
    blocking_min : int
        From this many stored personas on, the near-duplicate check against
        the store uses k-means blocking (:class:`persona_index.dedup.KMeansBlocks`).
    vectors_field : str, optional
        A field holding each row's precomputed vector (from the store's
        model): nothing is embedded. Checked row by row in the validation
        pass (:mod:`persona_index.precomputed`); not stored as a column.

    Examples
    --------
    >>> IngestOptions(strict=True).near_dup_threshold
    0.95
    >>> IngestOptions(near_dup_threshold=1.5)
    Traceback (most recent call last):
        ...
    ValueError: near_dup_threshold must be in (0, 1], got 1.5
    """

    fmt: str | None = None
    licence: str | None = None
    text_field: str | None = None
    attrs: Sequence[str] | None = None
    near_dedup: bool = True
    near_dup_threshold: float = DEFAULT_NEAR_DUP
    strict: bool = False
    batch_size: int = DEFAULT_BATCH
    report: Any = None
    progress: bool = False
    schema: str | None = None
    template: str | None = None
    bands: dict | None = None
    minhash: Any = False
    extra_columns: dict | None = None
    blocking_min: int = BLOCKING_MIN
    vectors_field: str | None = None

    def __post_init__(self):
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise ValueError(f"near_dup_threshold must be in (0, 1], got {self.near_dup_threshold}")


def resolve_options(options: IngestOptions | None = None, **overrides) -> IngestOptions:
    """``options`` with ``overrides`` applied, checked and normalised (MinHash
    settings, bands, template and schema), before anything is read.

    Examples
    --------
    >>> o = resolve_options(IngestOptions(strict=True), template="A {age}-year-old", minhash=True)
    >>> o.strict, o.schema, o.minhash.num_perm, o.bands
    (True, 'profiles', 128, {})
    >>> resolve_options(schema="personahub", template="{age}")
    Traceback (most recent call last):
        ...
    persona_index.errors.IngestOptionError: a template composes a profile's text: it goes with the profiles schema, not 'personahub'
    """
    from . import schemas as S

    opts = dataclasses.replace(options or IngestOptions(), **overrides)
    schema = opts.schema
    if opts.template is not None:
        S.check_template(opts.template)
        if schema in (None, "auto"):
            schema = "profiles"
        elif schema != "profiles":
            raise IngestOptionError(f"a template composes a profile's text: it goes with the "
                                    f"profiles schema, not {schema!r}")
    return dataclasses.replace(opts, minhash=_check_minhash(opts.minhash), schema=schema,
                               bands=S.check_bands(opts.bands))


def _check_minhash(minhash):
    """The MinHash settings (None: off), with the library imported, so that a
    bad setting or a missing ``minhash`` extra fails before any reading."""
    from .minhash import minhash_params

    params = minhash_params(minhash)
    if params is not None:
        from ._lazy import attempt_import

        attempt_import("rensa", "minhash")
    return params



# -- plan --------------------------------------------------------------------

@dataclass
class FieldStats:
    """What the validation pass saw of one field: value kinds (``str``,
    ``int``, ...), distinct strings (capped), the longest string, non-null
    count, and the line and value of the first value of each kind.

    Examples
    --------
    >>> FieldStats()
    FieldStats(kinds=set(), distinct=set(), max_len=0, present=0)
    >>> FieldStats().kinds is FieldStats().kinds  # no shared defaults
    False
    """

    kinds: set = field(default_factory=set)
    distinct: set = field(default_factory=set)
    max_len: int = 0
    present: int = 0
    #: kind -> (line, repr of the value, shortened) where that kind first appeared
    first: dict = field(default_factory=dict, repr=False)


@dataclass
class Plan:
    """What the validation pass decided: the text field and the columns.

    Examples
    --------
    >>> plan = plan_records([(1, {"text": "a nurse", "city": "Lyon", "age": 34})])
    >>> plan.text_field, plan.attributes, plan.plain, plan.rows
    ('text', {'city': 'city'}, {'age': ('age', 'int64')}, 1)
    """

    text_field: str
    attributes: dict  # source field -> column name
    plain: dict  # source field -> (column name, arrow type name)
    rows: int
    schema: str | None = None
    #: field -> its one value: fields left out of the strata (see SINGLE_VALUE_MIN_ROWS)
    single_valued: dict = field(default_factory=dict)

    @property
    def columns(self) -> dict:
        """Column -> source field, for every attribute and plain column (what
        :meth:`persona_index.store.PersonaIndex.write` takes as ``fields``)."""
        return {**{c: f for f, c in self.attributes.items()},
                **{c: f for f, (c, _) in self.plain.items()}}


def _kind(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int" if -2**63 <= v < 2**63 else "bigint"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return "json"


def _shown(v) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def row_problem(rec: dict, text_field: str) -> str | None:
    """Why a record cannot be a persona, or None.

    Examples
    --------
    >>> row_problem({"text": "a nurse"}, "text") is None
    True
    >>> [row_problem(r, "text") for r in ({"text": "  "}, {"text": 3}, {})]
    ['empty text', "'text' is int, not text", "no 'text' field"]
    """
    if text_field not in rec:
        return f"no '{text_field}' field"
    t = rec[text_field]
    if not isinstance(t, str):
        return f"'{text_field}' is {type(t).__name__}, not text"
    if not t.strip():
        return "empty text"
    if len(t) > MAX_TEXT_BYTES // 4 and len(t.encode("utf-8")) > MAX_TEXT_BYTES:
        return f"text over {MAX_TEXT_BYTES} bytes"
    return None


class _Scan:
    """What one pass over the records saw: per-field stats, the row count
    and, for each of ``strict_fields``, the first row unusable with that field
    as the text (so that ``strict`` needs no pass of its own)."""

    def __init__(self, strict_fields: Iterable[str] = ()):
        self.stats: dict[str, FieldStats] = {}
        self.rows = 0
        self.problems: dict = dict.fromkeys(strict_fields)

    def add(self, n: int, rec: dict) -> None:
        self.rows += 1
        stats = self.stats
        for k, v in rec.items():
            s = stats.get(k)
            if s is None:
                s = stats[k] = FieldStats()
            if v is None:
                continue
            s.present += 1
            kind = _kind(v)
            if kind not in s.first:
                s.kinds.add(kind)
                s.first[kind] = (n, _shown(v))
            if kind == "str":
                if len(v) > s.max_len:
                    s.max_len = len(v)
                if len(s.distinct) < _DISTINCT_CAP:
                    s.distinct.add(v)
        for f, seen in self.problems.items():
            if seen is None:
                why = row_problem(rec, f)
                if why:
                    self.problems[f] = (n, why)

    def check_strict(self, text_field: str, path: str) -> None:
        found = self.problems.get(text_field)
        if found:
            raise RowRejected(f"{path}:{found[0]}: {found[1]} (strict refuses the whole input)")


def plan_records(records: Iterable[tuple[int, dict]], *, path: str = "<records>",
                 text_field: str | None = None, attrs: Sequence[str] | None = None) -> Plan:
    """The cheap first pass: parse everything, check rows, choose columns.

    The text field is ``text_field`` or the first of :data:`TEXT_FIELDS`
    present; short categorical strings become attributes (``attrs`` to choose
    them), the rest plain columns typed from their values.

    Examples
    --------
    >>> recs = [(1, {"persona": "a nurse", "sex": "f", "age": 34, "bio": None}),
    ...         (2, {"persona": "a baker", "sex": "m", "age": 51.5, "bio": "x" * 80})]
    >>> plan = plan_records(recs)
    >>> plan.text_field, plan.attributes, plan.rows
    ('persona', {'sex': 'sex'}, 2)
    >>> plan.plain  # typed from the values; a long text is not a stratum
    {'age': ('age', 'float64'), 'bio': ('bio', 'string')}
    >>> plan_records([(1, {"name": "x"})], path="p.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: p.jsonl: no text field: none of ['persona', ...] found ...
    """
    scan = _Scan()
    for n, rec in records:
        scan.add(n, rec)
    return _choose_columns(scan, path, text_field, attrs)


def _choose_columns(scan: _Scan, path: str, text_field: str | None,
                    attrs: Sequence[str] | None, snap=None) -> Plan:
    """The plan; column names from the field mapping of ``snap`` (the
    store's version the checks read; None: no store yet), as
    :func:`persona_index.text.assign_columns` gives them. The store applies
    the same rule again under its writer lock, so a concurrent ingest that
    mapped a name meanwhile is respected."""
    stats, rows = scan.stats, scan.rows
    if rows == 0:
        raise InputFileError(path, None, "empty file: no records")
    if text_field is None:
        text_field = next((f for f in TEXT_FIELDS if f in stats), None)
        if text_field is None:
            raise InputFileError(path, None, f"no text field: none of {list(TEXT_FIELDS)} found "
                                             f"(fields: {sorted(stats)}); name one with text_field=...")
    elif text_field not in stats:
        raise InputFileError(path, None, f"unknown text field {text_field!r}; fields: {sorted(stats)}")
    others = [f for f in stats if f != text_field]
    single: dict = {}
    if attrs is not None:
        unknown = [a for a in attrs if a not in stats]
        if unknown:
            raise InputFileError(path, None, f"unknown attribute field(s) {unknown}; fields: {sorted(stats)}")
        attr_fields = list(attrs)
    else:
        attr_fields = []
        for f in others:
            s = stats[f]
            nd = len(s.distinct)
            if (s.kinds == {"str"} and s.max_len <= ATTR_MAX_LEN and nd <= ATTR_MAX_DISTINCT
                    and (nd <= ATTR_SMALL or nd <= rows / 2)):
                if nd == 1 and s.present == rows and rows >= SINGLE_VALUE_MIN_ROWS:
                    single[f] = next(iter(s.distinct))
                else:
                    attr_fields.append(f)
    col, _ = assign_columns(list(dict.fromkeys(attr_fields + others)),
                            snap.meta.get("fields") if snap is not None else None,
                            snap.columns if snap is not None else ())
    attributes = {f: col[f] for f in attr_fields}
    plain = {}
    for f in others:
        if f in attributes:
            continue
        kinds = stats[f].kinds
        typ = ("int64" if kinds == {"int"} else "float64" if kinds <= {"int", "float"} and kinds
               else "bool" if kinds == {"bool"} else "string")
        plain[f] = (col[f], typ)
    return Plan(text_field, attributes, plain, rows, single_valued=single)


# -- check -------------------------------------------------------------------

#: which value kinds fit a stored column of each type (values are cast)
_FITS = {"string": None, "double": {"int", "float"}, "int64": {"int"}, "bool": {"bool"}}


def check_against_store(index: PersonaIndex, plan: Plan, records: Iterable[tuple[int, dict]],
                        path: str) -> None:
    """Refuse, before any write, a file whose values do not fit the store's
    existing columns: ``FILE:LINE: field NAME: ...`` naming both types.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> from persona_index.ingest import ingest_records
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> ingest_records(idx, [{"text": "a nurse", "age": 34}]).added  # age: an int64 column
    1
    >>> recs = [(1, {"text": "a cook", "age": 40}), (2, {"text": "a poet", "age": "old"})]
    >>> check_against_store(idx, plan_records(recs), recs, "q.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: q.jsonl:2: field 'age': str value 'old' ... type int64
    >>> check_against_store(idx, plan_records(recs[:1]), recs[:1], "q.jsonl") is None
    True
    """
    if not index.exists:
        return
    schema = index.snapshot().schema
    if not _typed_columns(schema, plan):
        return
    scan = _Scan()
    for n, rec in records:
        scan.add(n, rec)
    _check_fit(schema, plan, scan, path)


def _typed_columns(schema, plan: Plan) -> dict:
    """Source field -> (column, stored type) for the plan's fields that land
    in an existing column whose type not every value fits (not a string)."""
    have = {f.name: str(f.type) for f in schema}
    cols = {**{f: col for f, col in plan.attributes.items()},
            **{f: col for f, (col, _) in plan.plain.items()}}
    return {f: (col, have[col]) for f, col in cols.items()
            if col in have and _FITS.get(have[col], set()) is not None}


def _check_fit(schema, plan: Plan, scan: _Scan, path: str) -> None:
    """Raise on the first row (in input order) whose value does not fit its
    stored column, from the first line of each value kind the scan saw."""
    misfits = []
    for order, (f, (col, stored)) in enumerate(_typed_columns(schema, plan).items()):
        s = scan.stats.get(f)
        for kind, (n, shown) in (s.first.items() if s else ()):
            if kind not in _FITS.get(stored, set()):
                misfits.append((n, order, f, kind, shown, col, stored))
    if misfits:
        n, _, f, kind, shown, col, stored = min(misfits)
        raise InputFileError(path, n, f"field {f!r}: {kind} value {shown} does not fit "
                                      f"the store's column {col!r} of type {stored}")


def check_strict(records: Iterable[tuple[int, dict]], text_field: str, path: str) -> None:
    """Under ``strict``: refuse the whole input, before any write, if a row is unusable.

    Examples
    --------
    >>> check_strict([(1, {"text": "a nurse"})], "text", "p.jsonl") is None
    True
    >>> check_strict([(1, {"text": "a nurse"}), (2, {"text": ""})], "text", "p.jsonl")
    Traceback (most recent call last):
        ...
    persona_index.errors.RowRejected: p.jsonl:2: empty text (strict refuses the whole input)
    """
    for n, rec in records:
        why = row_problem(rec, text_field)
        if why:
            raise RowRejected(f"{path}:{n}: {why} (strict refuses the whole input)")


@dataclass
class Prepared:
    """The validation pass's outcome, ready for the write pass.

    ``options``: resolved (the schema named, with its licence, text field and
    attributes); ``records()``: a fresh iterator over the records as the write
    pass reads them (schema and bands applied); ``snapshot``: the store's
    version the checks ran on (None: no store yet), which the dedup indexes
    then read too.
    """

    plan: Plan
    options: IngestOptions
    records: Callable[[], Iterator[tuple[int, dict]]]
    snapshot: Any
    source: str


def prepare_file(index: PersonaIndex, path: str | Path, options: IngestOptions | None = None,
                 **overrides) -> Prepared:
    """Plan and check a file for ``index`` in one read, writing nothing: detect
    the schema (``schema="auto"``), choose the columns, find an unusable row
    (``strict``), and check the values against the store's columns.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "p.jsonl").write_text('{"persona": "a nurse", "age": 34}\\n')
    >>> p = prepare_file(PersonaIndex(d / "p.lance", HashEmbedder(16)), d / "p.jsonl")
    >>> p.plan.text_field, p.plan.plain, list(p.records()), p.snapshot
    ('persona', {'age': ('age', 'int64')}, [(1, {'persona': 'a nurse', 'age': 34})], None)
    """
    opts = resolve_options(options, **overrides)
    path = str(path)
    report = opts.report
    if isinstance(report, (str, os.PathLike)) and Path(report).exists() and Path(path).exists() \
            and os.path.samefile(report, path):
        raise InputFileError(path, None, f"report={str(report)!r} is the input file itself: "
                                         "it would be overwritten; name another file")
    if opts.vectors_field:  # a parquet vector column as numpy rows
        return prepare_records(index, lambda: iter_file(path, opts.fmt,
                                                        arrays=(opts.vectors_field,)), opts, path)
    return prepare_records(index, lambda: iter_file(path, opts.fmt), opts, path)


def prepare_records(index, make_iter: Callable[[], Iterator[tuple[int, dict]]],
                    options: IngestOptions, source: str, plan: Plan | None = None) -> Prepared:
    """The validation pass over ``make_iter()`` (one read; the write pass calls
    ``make_iter`` again), then the checks against one snapshot of the store.
    ``options`` as :func:`resolve_options` returns them; ``plan``: columns chosen by an
    earlier pass (the rows are still checked).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16))
    >>> rows = [(1, {"text": "a nurse"}), (2, {"text": ""})]
    >>> prepare_records(idx, lambda: iter(rows), resolve_options(), "<records>").plan.rows
    2
    >>> prepare_records(idx, lambda: iter(rows), resolve_options(strict=True), "<records>")
    Traceback (most recent call last):
        ...
    persona_index.errors.RowRejected: <records>:2: empty text (strict refuses the whole input)
    """
    it = make_iter()
    first = next(it, None)
    opts = _resolve_schema(options, first, source)
    if opts.schema or opts.bands:
        from . import schemas as S

        def records(src=None):
            return S.wrap(opts.schema, make_iter() if src is None else src, path=source,
                          template=opts.template, bands=opts.bands)
    else:
        def records(src=None):
            return make_iter() if src is None else src
    named = plan.text_field if plan else opts.text_field
    scan = _Scan(((named,) if named else TEXT_FIELDS) if opts.strict else ())
    check = _vectors_check(index, opts.vectors_field, source)
    for n, rec in records(itertools.chain([] if first is None else [first], it)):
        scan.add(n, rec)
        if check:
            check(rec, n)
    scan.stats.pop(opts.vectors_field, None)  # the vectors are no column
    snap = index.snapshot() if index.exists else None  # the one version the checks and dedup read
    if plan is None:
        plan = _choose_columns(scan, source, opts.text_field, opts.attrs, snap)
        plan.schema = opts.schema
        for f in opts.bands:  # a band is a stratum even where it is not a short categorical field
            if f"{f}_band" in plan.plain:
                plan.attributes[f"{f}_band"] = plan.plain.pop(f"{f}_band")[0]
    if opts.strict:
        scan.check_strict(plan.text_field, source)
    if snap is not None:
        _check_fit(snap.schema, plan, scan, source)
    return Prepared(plan, opts, records, snap, source)


def _vectors_check(index, vf: str | None, source: str):
    """``check(rec, line)`` for the vectors field ``vf``, or None."""
    if not vf:
        return None
    from .precomputed import check_row, expected_dim

    dim = expected_dim(index)
    return lambda rec, n: check_row(rec, vf, dim, source, n)


def _resolve_schema(opts: IngestOptions, first, source: str) -> IngestOptions:
    """The options with the schema named (``"auto"``: detected from the first
    record) and its licence, text field and attributes filled in."""
    schema = opts.schema
    if schema in (None, "none"):
        return dataclasses.replace(opts, schema=None)
    from . import schemas as S

    if schema == "auto":
        schema = S.detect(first[1]) if first else None
        if schema is None:
            return dataclasses.replace(opts, schema=None)
        warn(f"{Path(source).name} looks like the {schema} schema "
             "(schema='none' to read it as a generic file)", IngestNote)
    elif schema not in S.SCHEMAS:
        raise InputFileError(source, None, f"unknown schema {schema!r}; known: "
                                           f"{', '.join(S.SCHEMAS)}, auto, none")
    spec = S.SCHEMAS[schema]
    attrs = opts.attrs
    if attrs is None and spec["attrs"] and first:
        keys = set(next(S.wrap(schema, iter([first]), path=source, template=opts.template))[1])
        attrs = [a for a in spec["attrs"] if a in keys]
    return dataclasses.replace(opts, schema=schema, licence=opts.licence or spec["licence"],
                               text_field=opts.text_field or spec.get("text_field"), attrs=attrs)

