"""Ingest: read and validate a file, then embed, deduplicate and write in batches.

Two passes over the input. The first is cheap (parsing only) and checks the
whole file before anything is written: a malformed file raises
:class:`InputFileError` naming the file and line, and the store is untouched.
The second streams batches: drop exact duplicates, then (with ``minhash``)
lexical near duplicates by MinHash (:mod:`persona_index.minhash`), embed, drop
near duplicates by cosine (within the batch and against the store, first
occurrence kept), write one commit per batch. Ids are content hashes, so
re-running an interrupted ingest skips what was committed and adds only the
rest.

Inputs: jsonl, csv, parquet and txt files; a folder of parquet shards; a
folder written by ``datasets``' ``save_to_disk`` (the ``hf`` extra); and, in
Python, records, Arrow tables, pandas frames and ``datasets.Dataset`` /
``IterableDataset`` objects (read in batches, never downloaded by this code).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .errors import IngestOptionError, InputFileError, RowRejected
from .store import PersonaIndex
from .text import RESERVED, TEXT_FIELDS, as_text, column_name, normalize_text, persona_id  # noqa: F401 (re-exported)

#: rows whose text is longer than this (UTF-8 bytes) are rejected
MAX_TEXT_BYTES = 1_000_000
DEFAULT_NEAR_DUP = 0.95
DEFAULT_BATCH = 1024
#: a string field is an attribute (a stratum) when it has at most this many
#: distinct values, values of at most ATTR_MAX_LEN characters, and either at
#: most ATTR_SMALL distinct values or at most half as many as there are rows
ATTR_MAX_DISTINCT = 1000
ATTR_MAX_LEN = 64
ATTR_SMALL = 20
_DISTINCT_CAP = ATTR_MAX_DISTINCT + 1


# -- readers -----------------------------------------------------------------

def _detect_format(path: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    p = path.lower()
    for suffix, name in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "jsonl"),
                         (".csv", "csv"), (".parquet", "parquet"), (".pq", "parquet"),
                         (".txt", "txt")):
        if p.endswith(suffix):
            return name
    raise InputFileError(path, None, "unknown file type: use .jsonl, .csv, .parquet or .txt "
                                     "(or give the format)")


def iter_file(path: str | Path, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line, record)`` from a jsonl, csv, parquet or txt file, or from
    a folder (parquet shards or a ``save_to_disk`` folder: :func:`iter_folder`).

    ``line`` is the 1-based line (jsonl, txt, csv) or row (parquet) number.
    Raises :class:`InputFileError` on the first malformed line.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> p = Path(tempfile.mkdtemp()) / "p.jsonl"
    >>> _ = p.write_text('{"text": "a nurse", "city": "Lyon"}\\n\\n{"text": "a baker"}\\n')
    >>> list(iter_file(p))  # blank lines are skipped, line numbers kept
    [(1, {'text': 'a nurse', 'city': 'Lyon'}), (3, {'text': 'a baker'})]
    >>> _ = p.write_text('{"text": "a nurse"}\\n{oops\\n')
    >>> list(iter_file(p))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: .../p.jsonl:2: malformed JSON (...)
    """
    path = str(path)
    if Path(path).is_dir():
        yield from iter_folder(path, fmt)
        return
    fmt = _detect_format(path, fmt)
    if not Path(path).is_file():
        raise InputFileError(path, None, "no such file")
    if fmt == "jsonl":
        yield from _iter_jsonl(path)
    elif fmt == "txt":
        with open(path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                line = _decode(path, n, raw).strip()
                if line:
                    yield n, {"text": line}
    elif fmt == "csv":
        yield from _iter_csv(path)
    elif fmt == "parquet":
        yield from _iter_parquet(path)
    else:
        raise InputFileError(path, None, f"unknown format {fmt!r}")


def _decode(path, n, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(path, n, f"invalid UTF-8 ({exc.reason} at byte {exc.start})") from None
    return text[1:] if n == 1 and text.startswith("\ufeff") else text  # a byte-order mark


def _iter_jsonl(path):
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            line = _decode(path, n, raw).strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(path, n, f"malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise InputFileError(path, n, f"expected a JSON object, got {type(rec).__name__}")
            yield n, rec


def _bad_utf8_line(path) -> None:
    """Raise the decode error of the first line that is not UTF-8 (the CSV
    reader decodes in chunks, so its own position names the wrong line)."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            _decode(path, n, raw)


def _iter_csv(path):
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.reader(text, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            width = len(header)
            if len(set(header)) != width:
                raise InputFileError(path, 1, f"duplicate column names in header {header}")
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    break
                n = reader.line_num
                if not row:
                    continue
                if len(row) != width:
                    raise InputFileError(path, n, f"ragged row: {len(row)} fields, header has {width}")
                yield start, dict(zip(header, row))
        except UnicodeDecodeError as exc:
            _bad_utf8_line(path)
            raise InputFileError(path, None, f"invalid UTF-8 ({exc.reason})") from None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise InputFileError(path, start, "malformed CSV: a quote opened on this line is "
                                                  "never closed") from None
            raise InputFileError(path, reader.line_num, f"malformed CSV ({exc})") from None


def _iter_parquet(path):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputFileError(path, None, f"not a readable parquet file ({exc})") from None
    n = 0
    for batch in pf.iter_batches(batch_size=8192):
        for rec in batch.to_pylist():
            n += 1
            yield n, rec


def _datasets_kind(obj) -> str | None:
    """The class name when ``obj`` is a ``datasets`` Dataset, IterableDataset
    or one of their dicts of splits (told by its class, without importing
    ``datasets``), else None."""
    for cls in type(obj).__mro__:
        if cls.__module__.split(".")[0] == "datasets" and cls.__name__ in (
                "Dataset", "IterableDataset", "DatasetDict", "IterableDatasetDict"):
            return cls.__name__
    return None


def iter_dataset(ds, batch_size: int = DEFAULT_BATCH, *,
                 path: str = "<dataset>") -> Iterator[tuple[int, dict]]:
    """Yield ``(row, record)`` from a ``datasets.Dataset`` or ``IterableDataset``,
    reading ``batch_size`` rows at a time as Arrow (no feature decoding).

    Row numbers are 1-based. Nothing is downloaded here; iterating an
    ``IterableDataset`` reads whatever it was built on. A ``DatasetDict`` (a
    dict of splits) is refused with the names of its splits.

    Examples
    --------
    >>> import datasets
    >>> ds = datasets.Dataset.from_list([{"text": "a nurse"}, {"text": "a baker"}])
    >>> list(iter_dataset(ds, batch_size=1))
    [(1, {'text': 'a nurse'}), (2, {'text': 'a baker'})]
    """
    kind = _datasets_kind(ds)
    if kind in ("DatasetDict", "IterableDatasetDict"):
        splits = list(ds) or ["train"]
        hint = (f"its folder {Path(path) / splits[0]}" if Path(path).is_dir()
                else f"ds[{splits[0]!r}]")
        raise InputFileError(path, None, f"a {kind} of splits {list(ds)}: ingest one split, "
                                         f"e.g. {hint}")
    n = 0
    for batch in ds.with_format("arrow").iter(batch_size=batch_size):
        for rec in batch.to_pylist():
            n += 1
            yield n, rec


def iter_folder(path: str | Path, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(row, record)`` from a folder: a ``datasets`` ``save_to_disk``
    folder (read with ``datasets.load_from_disk``, the ``hf`` extra; memory
    mapped), or else every ``*.parquet`` file under it (pyarrow only), in
    path order, skipping hidden folders. Rows are numbered 1, 2, ... across the
    shards; an unreadable shard raises :class:`InputFileError` naming it.

    Examples
    --------
    >>> import tempfile
    >>> import pyarrow as pa, pyarrow.parquet as pq
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "data").mkdir()
    >>> pq.write_table(pa.table({"text": ["a nurse", "a baker"]}), d / "data" / "train-0.parquet")
    >>> pq.write_table(pa.table({"text": ["a welder"]}), d / "data" / "train-1.parquet")
    >>> list(iter_folder(d))
    [(1, {'text': 'a nurse'}), (2, {'text': 'a baker'}), (3, {'text': 'a welder'})]
    >>> list(iter_folder(d / "data" / "empty"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.InputFileError: .../empty: no such folder
    """
    root = Path(path)
    path = str(path)
    if not root.is_dir():
        raise InputFileError(path, None, "no such folder")
    if fmt not in (None, "parquet", "hf"):
        raise InputFileError(path, None, f"a folder is read as parquet shards or a datasets "
                                         f"save_to_disk folder, not as {fmt}")
    saved = (root / "state.json").is_file() or (root / "dataset_dict.json").is_file()
    if fmt == "hf" or (fmt is None and saved):
        from ._lazy import attempt_import

        datasets = attempt_import("datasets", "hf")
        try:
            ds = datasets.load_from_disk(path)
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise InputFileError(path, None, f"not a readable datasets folder ({exc})") from None
        yield from iter_dataset(ds, path=path)
        return
    shards = sorted(p for p in root.rglob("*.parquet")
                    if p.is_file() and not any(part.startswith(".")
                                               for part in p.relative_to(root).parts))
    if not shards:
        raise InputFileError(path, None, "a folder with neither parquet shards (*.parquet) nor "
                                         "a datasets save_to_disk layout (state.json)")
    n = 0
    for shard in shards:
        for _, rec in _iter_parquet(str(shard)):
            n += 1
            yield n, rec


# -- validation pass ---------------------------------------------------------

@dataclass
class FieldStats:
    """What the validation pass saw of one field: value kinds (``str``,
    ``int``, ...), distinct strings (capped), the longest string, non-null count.

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
    stats: dict[str, FieldStats] = {}
    rows = 0
    for _, rec in records:
        rows += 1
        for k, v in rec.items():
            s = stats.get(k)
            if s is None:
                s = stats[k] = FieldStats()
            if v is None:
                continue
            s.present += 1
            kind = _kind(v)
            s.kinds.add(kind)
            if kind == "str":
                if len(v) > s.max_len:
                    s.max_len = len(v)
                if len(s.distinct) < _DISTINCT_CAP:
                    s.distinct.add(v)
    if rows == 0:
        raise InputFileError(path, None, "empty file: no records")
    if text_field is None:
        text_field = next((f for f in TEXT_FIELDS if f in stats), None)
        if text_field is None:
            raise InputFileError(path, None, f"no text field: none of {list(TEXT_FIELDS)} found "
                                             f"(fields: {sorted(stats)}); name one with --text-field")
    elif text_field not in stats:
        raise InputFileError(path, None, f"unknown text field {text_field!r}; fields: {sorted(stats)}")
    others = [f for f in stats if f != text_field]
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
                attr_fields.append(f)
    used: set = set()

    def unique(name):
        base, i = name, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    attributes = {f: unique(column_name(f)) for f in attr_fields}
    plain = {}
    for f in others:
        if f in attributes:
            continue
        kinds = stats[f].kinds
        typ = ("int64" if kinds == {"int"} else "float64" if kinds <= {"int", "float"} and kinds
               else "bool" if kinds == {"bool"} else "string")
        plain[f] = (unique(column_name(f)), typ)
    return Plan(text_field, attributes, plain, rows)


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
    have = {f.name: f.type for f in schema}
    checks = {}
    for f, col in plan.attributes.items():
        if col in have:
            checks[f] = (col, "string")
    for f, (col, typ) in plan.plain.items():
        if col in have:
            checks[f] = (col, typ)
    bad = {f: (col, str(have[col])) for f, (col, _) in checks.items()
           if _FITS.get(str(have[col]), set()) is not None}
    if not bad:
        return
    for n, rec in records:
        for f, (col, stored) in bad.items():
            v = rec.get(f)
            if v is None:
                continue
            kind = _kind(v)
            if kind not in _FITS.get(stored, set()):
                shown = repr(v) if len(repr(v)) <= 40 else repr(v)[:37] + "..."
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


# -- the write pass ----------------------------------------------------------

@dataclass
class IngestSummary:
    """What an ingest did. ``dropped`` holds the first examples of each kind;
    the full list goes to the report file when one is given.

    Examples
    --------
    >>> s = IngestSummary(source="p.jsonl", read=10, added=8, exact_duplicates=2, seconds=2.0)
    >>> d = s.to_dict()
    >>> d["added"], d["exact_duplicates"], d["personas_per_s"]
    (8, 2, 5.0)
    >>> IngestSummary(source="p.jsonl").to_dict()["personas_per_s"] is None  # nothing timed
    True
    """

    source: str
    read: int = 0
    added: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    #: dropped by the MinHash stage (``minhash``), before embedding
    minhash_duplicates: int = 0
    #: near-identical vectors for texts that differ (kept; see LEXICAL_MIN)
    embedder_collisions: int = 0
    rejected: int = 0
    over_token_window: int = 0
    batches: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    #: the MinHash stage's share of ``seconds``, the store's sketches included
    minhash_seconds: float = 0.0
    load_seconds: float = 0.0
    near_dedup_method: str = "exact"
    #: the MinHash settings (:meth:`MinHashParams.to_dict`), None when the stage is off
    minhash: dict | None = None
    version_before: int | None = None
    version_after: int | None = None
    text_field: str | None = None
    attributes: list = field(default_factory=list)
    schema: str | None = None
    examples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["personas_per_s"] = round(self.read / self.seconds, 1) if self.seconds else None
        return d


class _Report:
    def __init__(self, path, keep=20):
        self.fh = open(path, "w", encoding="utf-8") if path else None
        self.keep = keep
        self.counts: dict = {}
        self.examples: list = []

    def add(self, entry: dict):
        kind = entry["reason"]
        c = self.counts.get(kind, 0)
        self.counts[kind] = c + 1
        if c < 5 and len(self.examples) < self.keep:
            self.examples.append(entry)
        if self.fh:
            self.fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self):
        if self.fh:
            self.fh.close()


#: from this many stored personas on, near-dup checks against the store use
#: k-means blocking (probe the PROBES nearest of ~sqrt(N) cells) instead of a
#: full scan per batch; rows added during the ingest are always scanned exactly
BLOCKING_MIN = 200_000
PROBES = 8


class _Blocks:
    """k-means blocking over a fixed matrix: each row lives in one cell; a query
    is compared with the members of its ``probes`` nearest cells only."""

    def __init__(self, X: np.ndarray, probes: int = PROBES, seed: int = 0):
        from .samplers.cells import assign, fit_cells

        rng = np.random.default_rng(seed)
        self.X = X
        self.centroids = fit_cells(X, max(16, int(np.sqrt(len(X)))), rng)
        lab = assign(X, self.centroids)
        self.order = np.argsort(lab, kind="stable")
        sizes = np.bincount(lab, minlength=len(self.centroids))
        self.starts = np.concatenate([[0], np.cumsum(sizes)])
        self.probes = min(probes, len(self.centroids))

    def nearest(self, q: np.ndarray):
        best = np.full(len(q), -np.inf, dtype=np.float32)
        arg = np.full(len(q), -1, dtype=np.int64)
        cs = q @ self.centroids.T
        probe = np.argpartition(-cs, self.probes - 1, axis=1)[:, : self.probes]
        rows = np.repeat(np.arange(len(q)), self.probes)
        cells = probe.reshape(-1)
        o = np.argsort(cells, kind="stable")
        rows, cells = rows[o], cells[o]
        bounds = np.flatnonzero(np.diff(cells)) + 1
        for r, c in zip(np.split(rows, bounds), cells[np.concatenate([[0], bounds])]):
            members = self.order[self.starts[c]:self.starts[c + 1]]
            if len(members) == 0:
                continue
            sims = q[r] @ self.X[members].T
            j = sims.argmax(axis=1)
            v = sims[np.arange(len(r)), j]
            better = v > best[r]
            best[r[better]] = v[better]
            arg[r[better]] = members[j[better]]
        return best, arg


class _StoreIndex:
    """Ids and vectors already in the store, for dedup; grows as batches land.

    It never builds the snapshot's warm query matrix. Below ``blocking_min``
    stored rows the store's vectors are streamed from the snapshot the ingest
    started from on every lookup (memory: one scan batch); from there on they
    are read once into the k-means blocks (memory: the vectors, once)."""

    def __init__(self, index: PersonaIndex, need_vectors: bool, blocking_min: int = BLOCKING_MIN):
        self.ids: set = set()
        self.id_list: list = []
        self.chunks: list[np.ndarray] = []
        self.preexisting = 0
        self._new: set = set()
        self.blocks: _Blocks | None = None
        self._stream = None  # the dataset version whose vectors are streamed
        if index.exists:
            snap = index.snapshot()  # the version the ingest starts from
            ds = snap.dataset
            self.id_list = ds.to_table(columns=["id"]).column("id").to_pylist()  # scan order
            self.ids = set(self.id_list)
            self.preexisting = len(self.id_list)
            if need_vectors and self.preexisting:
                if self.preexisting >= blocking_min:
                    from .snapshot import load_matrix

                    self.blocks = _Blocks(load_matrix(ds, snap.dim)[1])
                else:
                    self._stream = (ds, snap.dim)

    @property
    def method(self) -> str:
        if self.blocks is None:
            return "exact"
        return f"blocked ({len(self.blocks.centroids)} k-means cells, {self.blocks.probes} probed)"

    def where(self, pid) -> str:
        """'store' if the id was there before this ingest, else 'input'."""
        if pid in self._new:
            return "input"
        return "store"

    def add(self, ids, vecs):
        self._new.update(ids)
        self.ids.update(ids)
        self.id_list.extend(ids)
        if vecs is not None and len(ids):
            self.chunks.append(vecs)

    def nearest(self, q: np.ndarray, block: int = 16384):
        """For each row of ``q``: best similarity in the store and its position
        in ``id_list`` (blocked for the pre-existing rows of a large store)."""
        if self.blocks is not None:
            best, arg = self.blocks.nearest(q)
            offset = self.preexisting
        else:
            best = np.full(len(q), -np.inf, dtype=np.float32)
            arg = np.full(len(q), -1, dtype=np.int64)
            offset = 0
        chunks = self.chunks
        if self._stream is not None:
            ds, dim = self._stream

            def stored():  # the same scan order as id_list
                for b in ds.to_batches(columns=["vector"], batch_size=block):
                    yield b.column(0).flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
            import itertools

            chunks = itertools.chain(stored(), self.chunks)
        for c in chunks:
            for s in range(0, len(c), block):
                sims = q @ c[s:s + block].T
                j = sims.argmax(axis=1)
                v = sims[np.arange(len(q)), j]
                better = v > best
                best[better] = v[better]
                arg[better] = offset + s + j[better]
            offset += len(c)
        return best, arg


class _LexicalIndex:
    """MinHash sketches of the stored texts and of the rows this ingest has let
    through, for the MinHash stage.

    The store's ``id`` and ``text`` columns are streamed once, from the
    snapshot the ingest starts from, in batches of ``batch`` rows: memory is
    one batch of texts plus, for each stored persona, its sketch, its LSH
    entries and its id (about 2.5 KB at 128 permutations and 16 bands; the
    ``minhash`` benchmark measures it)."""

    def __init__(self, index: PersonaIndex, params, batch: int = 8192):
        from .minhash import MinHashIndex

        self.mh = MinHashIndex(params)
        self.ids: list = []  # key -> persona id
        self.lines: dict = {}  # key -> input line, for rows of this ingest
        self.preexisting = 0
        if index.exists:
            ds = index.snapshot().dataset
            for b in ds.to_batches(columns=["id", "text"], batch_size=batch):
                self.mh.add(self.mh.sketch(b.column("text").to_pylist()))
                self.ids.extend(b.column("id").to_pylist())
            self.preexisting = len(self.ids)

    def check(self, lines, ids, texts, rep, summary) -> tuple[list, list]:
        """Drop the rows whose words match an indexed text or an earlier row
        (keep-first, reported as ``minhash-duplicate``); index the others.
        Returns the positions kept and their keys."""
        kept, keys = [], []
        for i, m in enumerate(self.mh.sketch(texts)):
            key, jac = self.mh.best(m)
            if key >= 0:
                summary.minhash_duplicates += 1
                entry = {"line": lines[i], "id": ids[i], "reason": "minhash-duplicate",
                         "matched_id": self.ids[key],
                         "matched_in": "store" if key < self.preexisting else "input"}
                if key in self.lines:
                    entry["matched_line"] = self.lines[key]
                entry["jaccard"] = round(float(jac), 6)
                rep.add(entry)
                continue
            key = self.mh.add([m])[0]
            self.ids.append(ids[i])
            self.lines[key] = lines[i]
            kept.append(i)
            keys.append(key)
        return kept, keys

    def forget(self, keys) -> None:
        """Rows a later stage dropped: they are not in the store, so nothing
        should match them."""
        for k in keys:
            self.mh.remove(k)
            self.lines.pop(k, None)


#: a pair the embedder scores as a near duplicate is only dropped when the texts
#: also share this much (Jaccard of character 3-grams of the normalised text):
#: MiniLM maps whole Thai sentences to one [UNK] token and most Chinese to
#: [UNK]s, so distinct personas in those scripts get the same vector
LEXICAL_MIN = 0.3


def shingles(text: str, n: int = 3) -> set:
    """The character ``n``-grams of the normalised text (the whole text when shorter).

    Examples
    --------
    >>> sorted(shingles("AB cd")), shingles("ab")
    ([' cd', 'ab ', 'b c'], {'ab'})
    """
    t = normalize_text(text)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def lexical_similarity(a: str, b: str) -> float:
    """Jaccard similarity of the character 3-grams of two normalised texts.

    Examples
    --------
    >>> lexical_similarity("a nurse in Lyon", "A nurse in  lyon")
    1.0
    >>> round(lexical_similarity("a nurse in Lyon", "a nurse in Oslo"), 3)
    0.529
    >>> lexical_similarity("abc", "xyz")
    0.0
    """
    A, B = shingles(a), shingles(b)
    return len(A & B) / len(A | B) if A or B else 1.0


def _near_dups_within(vecs: np.ndarray, threshold: float, texts=None, collisions=None):
    """Keep-first greedy near-dup removal inside one batch.

    Returns ``(kept_mask, match_index, match_sim)``: a row is dropped when it is
    at least ``threshold`` similar to an earlier *kept* row whose text it also
    resembles (when ``texts`` are given; a pair the embedder cannot tell apart
    but whose texts differ is kept and appended to ``collisions`` as
    ``(i, j, sim)``). Only rows with some earlier row over the threshold enter
    the (short) sequential loop."""
    n = len(vecs)
    kept = np.ones(n, dtype=bool)
    match = np.full(n, -1, dtype=np.int64)
    msim = np.zeros(n, dtype=np.float32)
    if n < 2:
        return kept, match, msim
    sims = vecs @ vecs.T
    sims[np.triu_indices(n)] = -np.inf  # only earlier rows count
    for i in np.flatnonzero((sims >= threshold).any(axis=1)):
        js = np.flatnonzero((sims[i] >= threshold) & kept)
        js = js[np.argsort(-sims[i, js], kind="stable")]
        for j in js:
            if texts is None or lexical_similarity(texts[i], texts[j]) >= LEXICAL_MIN:
                kept[i] = False
                match[i], msim[i] = j, sims[i, j]
                break
            if collisions is not None:
                collisions.append((int(i), int(j), float(sims[i, j])))
    return kept, match, msim


def ingest_records(index: PersonaIndex, records: Iterable[tuple[int, dict]] | Any, *,
                   plan: Plan | None = None, source: str = "python", licence: str | None = None,
                   text_field: str | None = None, attrs: Sequence[str] | None = None,
                   near_dedup: bool = True, near_dup_threshold: float = DEFAULT_NEAR_DUP,
                   strict: bool = False, batch_size: int = DEFAULT_BATCH,
                   report: str | None = None, progress: bool = False,
                   extra_columns: dict | None = None,
                   blocking_min: int = BLOCKING_MIN, minhash=False) -> IngestSummary:
    """Embed, deduplicate and write records into ``index``.

    Parameters
    ----------
    records : iterable of dict, or of ``(line, dict)``, a pyarrow Table, a
        pandas DataFrame, or a ``datasets.Dataset`` / ``IterableDataset``.
        Plain iterables are materialised (the Python API); files stream
        through :func:`ingest_file` instead. A Hugging Face dataset is not:
        it is read twice (the validation pass, then the write pass), in
        batches of ``batch_size`` rows as Arrow, with its row numbers as lines;
        this code never downloads anything (an ``IterableDataset`` reads
        whatever it was built on, each pass).
    near_dup_threshold : float
        Cosine similarity at or above which a persona is a near duplicate of an
        earlier one (in the batch, in the file so far, or in the store).
    minhash : bool, dict or MinHashParams, default False
        Drop lexical near duplicates before embedding: MinHash over word
        1-grams, Persona Hub's defaults with ``True`` (128 permutations,
        estimated Jaccard >= 0.9), or ``{"threshold": ..., "num_perm": ...,
        "bands": ...}`` (see :mod:`persona_index.minhash`). Checked against
        earlier rows and the store; each drop is reported as
        ``minhash-duplicate`` with the matched id and the estimated Jaccard.
        Needs the ``minhash`` extra.
    strict : bool
        Refuse everything if any row is unusable (instead of rejecting the row).
    extra_columns : dict, optional
        Constant plain columns for every row (e.g. provenance of synthesis).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> s = ingest_records(idx, [{"text": "a nurse", "city": "Lyon"},
    ...                          {"text": "A  nurse", "city": "Oslo"},  # same normalised text
    ...                          {"text": "a baker", "city": "Lyon"}, {"text": ""}])
    >>> s.read, s.added, s.exact_duplicates, s.rejected, s.attributes
    (4, 2, 1, 1, ['city'])
    >>> ingest_records(idx, ["a baker", "a welder"]).added  # a rerun adds only what is new
    1
    >>> idx.info()["count"]
    3

    With ``minhash``, a reworded copy (same words, other punctuation and order)
    goes before it is embedded:

    >>> s = ingest_records(idx, ["A welder, and a baker!", "a welder and a baker"], minhash=True)
    >>> s.added, s.minhash_duplicates, s.examples[0]["reason"], s.examples[0]["jaccard"]
    (1, 1, 'minhash-duplicate', 1.0)
    """
    minhash = _check_minhash(minhash)
    if _datasets_kind(records):
        ds = records

        def make_iter():
            return iter_dataset(ds, batch_size, path=source)
    else:
        rows = _as_numbered(records)

        def make_iter():
            return iter(rows)
    if plan is None:
        plan = plan_records(make_iter(), path=source, text_field=text_field, attrs=attrs)
    if strict:
        check_strict(make_iter(), plan.text_field, source)
    return _write_pass(index, make_iter, plan, source=source, licence=licence,
                       near_dedup=near_dedup, threshold=near_dup_threshold,
                       batch_size=batch_size, report=report, progress=progress,
                       extra_columns=extra_columns or {}, blocking_min=blocking_min,
                       minhash=minhash)


def _as_numbered(records) -> list[tuple[int, dict]]:
    if hasattr(records, "to_pylist") and hasattr(records, "schema"):  # pyarrow
        records = records.to_pylist()
    elif hasattr(records, "to_dict") and hasattr(records, "columns"):  # pandas
        records = records.to_dict("records")
    out = []
    for i, r in enumerate(records, 1):
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[1], dict):
            out.append(r)
        elif isinstance(r, dict):
            out.append((i, r))
        elif isinstance(r, str):
            out.append((i, {"text": r}))
        else:
            raise InputFileError("<records>", i, f"expected a dict or a str, got {type(r).__name__}")
    return out


def ingest_file(index: PersonaIndex, path: str | Path, *, fmt: str | None = None,
                licence: str | None = None, text_field: str | None = None,
                attrs: Sequence[str] | None = None, near_dedup: bool = True,
                near_dup_threshold: float = DEFAULT_NEAR_DUP, strict: bool = False,
                batch_size: int = DEFAULT_BATCH, report: str | None = None,
                progress: bool = False, schema: str | None = None, template: str | None = None,
                bands: dict | None = None, minhash=False) -> IngestSummary:
    """Ingest a jsonl, csv, parquet or txt file into ``index``, or a folder:
    parquet shards, or a ``datasets`` ``save_to_disk`` folder (:func:`iter_folder`).

    The whole file is validated before the first write; a malformed file
    raises :class:`InputFileError` (file and line) and writes nothing. Then
    rows stream through in batches of ``batch_size`` with one commit each.
    ``minhash``: the MinHash stage before embedding (off by default; ``True``
    for Persona Hub's settings; see :func:`ingest_records`).
    ``schema``: a published data set's layout (:mod:`persona_index.schemas`),
    ``"auto"`` to detect it from the columns, or None for a generic file.
    ``template``: the text of a ``profiles`` row, e.g. ``"A {age}-year-old
    {occupation}[ from {city_country}]"`` (``[ ]``: left out when a field in it
    is missing; see :func:`persona_index.schemas.compose`); it implies
    ``schema="profiles"`` under ``"auto"``. ``bands``: ``{field: ascending
    edges}``; each numeric field gets an attribute ``FIELD_band`` ("under 18",
    "18-24", ..., "65+"; null when not a number), with any schema.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> d = Path(tempfile.mkdtemp())
    >>> table = "persona,sex,age\\na nurse,f,34\\na baker,m,51\\na nurse,f,34\\n"
    >>> _ = (d / "p.csv").write_text(table)
    >>> idx = PersonaIndex(d / "p.lance", HashEmbedder(dim=16))
    >>> s = ingest_file(idx, d / "p.csv", bands={"age": [18, 40, 65]})
    >>> s.read, s.added, s.exact_duplicates, s.text_field, s.attributes
    (3, 2, 1, 'persona', ['sex', 'age', 'age_band'])

    A malformed file is refused as a whole, and nothing is written:

    >>> _ = (d / "bad.jsonl").write_text('{"text": "a cook"}\\n{oops\\n')
    >>> ingest_file(idx, d / "bad.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: .../bad.jsonl:2: malformed JSON (...)
    >>> idx.info()["count"]
    2
    """
    from . import schemas as S

    path = str(path)
    minhash = _check_minhash(minhash)
    bands = S.check_bands(bands)
    if template is not None:
        S.check_template(template)
        if schema in (None, "auto"):
            schema = "profiles"
        elif schema != "profiles":
            raise IngestOptionError(f"a template composes a profile's text: it goes with the "
                                    f"profiles schema, not {schema!r}")
    first = next(iter_file(path, fmt), None) if schema not in (None, "none") else None
    if schema == "auto":
        schema = S.detect(first[1]) if first else None
        if schema:
            print(f"note: {Path(path).name} looks like the {schema} schema "
                  "(--schema none to read it as a generic file)", file=sys.stderr)
    elif schema in (None, "none"):
        schema = None
    elif schema not in S.SCHEMAS:
        raise InputFileError(path, None, f"unknown schema {schema!r}; known: "
                                         f"{', '.join(S.SCHEMAS)}, auto, none")
    if schema:
        spec = S.SCHEMAS[schema]
        licence = licence or spec["licence"]
        text_field = text_field or spec.get("text_field")
        if attrs is None and spec["attrs"] and first:
            keys = set(next(S.wrap(schema, iter([first]), path=path, template=template))[1])
            attrs = [a for a in spec["attrs"] if a in keys]

    def records():
        it = iter_file(path, fmt)
        return S.wrap(schema, it, path=path, template=template, bands=bands) \
            if schema or bands else it

    if report and Path(report).exists() and Path(path).exists() \
            and os.path.samefile(report, path):
        raise InputFileError(path, None, f"--report {report!r} is the input file itself: "
                                         "it would be overwritten; name another file")
    plan = plan_records(records(), path=path, text_field=text_field, attrs=attrs)
    if schema:
        plan.schema = schema
    for f in bands:  # a band is a stratum even where it is not a short categorical field
        if f"{f}_band" in plan.plain:
            plan.attributes[f"{f}_band"] = plan.plain.pop(f"{f}_band")[0]
    if strict:
        check_strict(records(), plan.text_field, path)
    return _write_pass(index, records, plan, source=path, licence=licence,
                       near_dedup=near_dedup, threshold=near_dup_threshold,
                       batch_size=batch_size, report=report, progress=progress, extra_columns={},
                       minhash=minhash)


def _check_minhash(minhash):
    """The MinHash settings (None: off), with the library imported, so that a
    bad setting or a missing ``minhash`` extra fails before any reading."""
    from .minhash import minhash_params

    params = minhash_params(minhash)
    if params is not None:
        from ._lazy import attempt_import

        attempt_import("rensa", "minhash")
    return params


def _write_pass(index, make_iter, plan: Plan, *, source, licence, near_dedup, threshold,
                batch_size, report, progress, extra_columns,
                blocking_min: int = BLOCKING_MIN, embedder=None, rep=None,
                minhash=None) -> IngestSummary:
    """One pass over the records: MinHash stage (``minhash``: settings as for
    :func:`persona_index.minhash.minhash_params`), embed (``embedder`` or the
    store's), dedup, commit batch by batch. ``rep``: an open report to append
    to (the caller closes it), instead of opening ``report``."""
    from tqdm.auto import tqdm

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near_dup_threshold must be in (0, 1], got {threshold}")
    minhash = _check_minhash(minhash)
    check_against_store(index, plan, make_iter(), source)
    embedder = embedder or index.embedder
    tl = time.perf_counter()
    getattr(embedder, "model", None)  # loads the model, outside the ingest timing
    load_seconds = time.perf_counter() - tl
    t0 = time.perf_counter()
    summary = IngestSummary(source=source, text_field=plan.text_field,
                            attributes=list(plan.attributes.values()), schema=plan.schema)
    summary.version_before = index.version if index.exists else None
    known = _StoreIndex(index, near_dedup, blocking_min)
    summary.near_dedup_method = known.method if near_dedup else "off"
    lex = None
    if minhash is not None:
        tm = time.perf_counter()
        lex = _LexicalIndex(index, minhash)
        summary.minhash = minhash.to_dict()
        summary.minhash_seconds = time.perf_counter() - tm
    own_report = rep is None
    rep = _Report(report) if own_report else rep
    bar = tqdm(total=plan.rows, disable=not progress, file=sys.stderr, unit="persona",
               desc="ingest", mininterval=0.5)
    summary.load_seconds = load_seconds
    try:
        batch: list = []
        for item in make_iter():
            batch.append(item)
            if len(batch) >= batch_size:
                _do_batch(index, batch, plan, known, rep, summary, embedder, source, licence,
                          near_dedup, threshold, extra_columns, lex)
                bar.update(len(batch))
                batch = []
        if batch:
            _do_batch(index, batch, plan, known, rep, summary, embedder, source, licence,
                      near_dedup, threshold, extra_columns, lex)
            bar.update(len(batch))
    finally:
        bar.close()
        if own_report:
            rep.close()
    summary.examples = rep.examples
    summary.seconds = time.perf_counter() - t0
    summary.version_after = index.version if index.exists else None
    if summary.embedder_collisions:
        print(f"warning: {summary.embedder_collisions} persona(s) got nearly the same vector as "
              "another whose text differs (the model cannot represent their script well, e.g. "
              "Thai or Chinese for MiniLM); kept, not merged: see --report or the summary's "
              "examples", file=sys.stderr)
    if summary.over_token_window:
        print(f"warning: {summary.over_token_window} text(s) exceed the model's token window "
              "and were embedded truncated", file=sys.stderr)
    return summary


def _do_batch(index, batch, plan, known, rep, summary, embedder, source, licence, near_dedup,
              threshold, extra_columns, lex=None):
    import pyarrow as pa

    summary.read += len(batch)
    tf = plan.text_field
    lines, recs, texts, ids = [], [], [], []
    seen: dict = {}
    for n, rec in batch:
        why = row_problem(rec, tf)
        if why:  # under strict the whole input was refused before any write
            summary.rejected += 1
            rep.add({"line": n, "reason": "rejected", "detail": why})
            continue
        text = rec[tf].strip()
        pid = persona_id(text)
        if pid in known.ids or pid in seen:
            summary.exact_duplicates += 1
            where = "batch" if pid in seen else known.where(pid)
            rep.add({"line": n, "id": pid, "reason": "exact-duplicate", "matched_id": pid,
                     "matched_in": where, "matched_line": seen.get(pid), "similarity": 1.0})
            continue
        seen[pid] = n
        lines.append(n); recs.append(rec); texts.append(text); ids.append(pid)
    lex_keys: list = []
    if lex is not None and texts:  # lexical near duplicates go before they cost an embedding
        tm = time.perf_counter()
        pos, lex_keys = lex.check(lines, ids, texts, rep, summary)
        lines, recs, texts, ids = ([x[i] for i in pos] for x in (lines, recs, texts, ids))
        summary.minhash_seconds += time.perf_counter() - tm
    if not texts:
        return
    te = time.perf_counter()
    vecs = embedder.encode(texts)
    summary.embed_seconds += time.perf_counter() - te
    summary.over_token_window += embedder.count_over_window(texts)
    keep = np.ones(len(texts), dtype=bool)
    if near_dedup:
        best, arg = known.nearest(vecs)
        against_store = best >= threshold
        if against_store.any():  # the texts must agree too (see LEXICAL_MIN)
            cand = np.flatnonzero(against_store)
            stored = index.snapshot().texts_of([known.id_list[arg[i]] for i in cand])
            for i in cand:
                other = stored.get(known.id_list[arg[i]])
                if other is not None and lexical_similarity(texts[i], other) < LEXICAL_MIN:
                    against_store[i] = False
                    _collision(rep, summary, lines[i], ids[i], known.id_list[arg[i]], best[i])
        for i in np.flatnonzero(against_store):
            rep.add({"line": lines[i], "id": ids[i], "reason": "near-duplicate",
                     "matched_id": known.id_list[arg[i]],
                     "matched_in": "store" if arg[i] < known.preexisting else "input",
                     "similarity": round(float(best[i]), 6)})
        keep &= ~against_store
        sub = np.flatnonzero(keep)
        coll: list = []
        kept_sub, match, msim = _near_dups_within(vecs[sub], threshold, [texts[i] for i in sub], coll)
        for a, b, sim in coll:
            _collision(rep, summary, lines[sub[a]], ids[sub[a]], ids[sub[b]], sim)
        for local in np.flatnonzero(~kept_sub):
            i, j = sub[local], sub[match[local]]
            rep.add({"line": lines[i], "id": ids[i], "reason": "near-duplicate",
                     "matched_id": ids[j], "matched_in": "input", "matched_line": lines[j],
                     "similarity": round(float(msim[local]), 6)})
        keep[sub[~kept_sub]] = False
        summary.near_duplicates += int((~keep).sum())
        if lex_keys:
            lex.forget([lex_keys[i] for i in np.flatnonzero(~keep)])
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return
    vecs = np.ascontiguousarray(vecs[idx])
    sel = [recs[i] for i in idx]
    dim = vecs.shape[1]
    cols = {
        "id": pa.array([ids[i] for i in idx], pa.string()),
        "text": pa.array([texts[i] for i in idx], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim),
        "source": pa.array([source] * len(idx), pa.string()),
        "source_line": pa.array([lines[i] for i in idx], pa.int64()),
        "licence": pa.array([licence] * len(idx), pa.string()),
    }
    for f, col in plan.attributes.items():
        cols[col] = pa.array([as_text(r.get(f)) for r in sel], pa.string())
    for f, (col, typ) in plan.plain.items():
        vals = [r.get(f) for r in sel]
        if typ == "string":
            vals = [as_text(v) for v in vals]
        elif typ == "float64":
            vals = [None if v is None else float(v) for v in vals]
        cols[col] = pa.array(vals, _ARROW_TYPES[typ]())
    for col, val in extra_columns.items():
        cols[col] = (pa.nulls(len(idx), pa.string()) if val is None
                     else pa.array([val] * len(idx)))
    w = index.write(pa.table(cols), attributes=list(plan.attributes.values()))
    known.add(cols["id"].to_pylist(), vecs if near_dedup else None)
    # rows another process committed meanwhile were skipped by the store
    summary.added += w.added
    summary.exact_duplicates += w.skipped
    summary.batches += 1


def _arrow_types():
    import pyarrow as pa

    return {"string": pa.string, "int64": pa.int64, "float64": pa.float64, "bool": pa.bool_}


class _LazyTypes(dict):
    def __missing__(self, key):
        self.update(_arrow_types())
        return self[key]


_ARROW_TYPES = _LazyTypes()


def _collision(rep, summary, line, pid, matched, sim):
    """A pair the embedder cannot tell apart although the texts differ: kept,
    counted, reported (``reason: embedder-collision``)."""
    summary.embedder_collisions += 1
    rep.add({"line": line, "id": pid, "reason": "embedder-collision (kept)", "matched_id": matched,
             "similarity": round(float(sim), 6)})
