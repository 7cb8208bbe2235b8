"""Readers: files, folders and data sets -> ``(line, record)`` pairs.

Every reader yields ``(line, record)`` with ``line`` the 1-based line (jsonl,
txt, csv) or row (parquet, datasets) number, so that every later message can
name the file and line. A malformed input raises
:class:`~persona_index.errors.InputFileError` naming the file and line.

Inputs: jsonl, csv, parquet and txt files; a folder of parquet shards; a
folder written by ``datasets``' ``save_to_disk`` (the ``hf`` extra); and, in
Python, records, Arrow tables, pandas frames and ``datasets.Dataset`` /
``IterableDataset`` objects (read in batches, never downloaded by this code).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import InputFileError

#: rows read at a time from a parquet file or a ``datasets`` data set
#: rows per read, embed and commit batch (ingest's and reembed's default)
DEFAULT_BATCH = 1024
#: the file formats :func:`iter_file` reads
FORMATS = ("jsonl", "csv", "parquet", "txt")


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


def iter_file(path: str | Path, fmt: str | None = None, *,
              arrays: Sequence[str] = ()) -> Iterator[tuple[int, dict]]:
    """Yield ``(line, record)`` from a jsonl, csv, parquet or txt file, or from
    a folder (parquet shards or a ``save_to_disk`` folder: :func:`iter_folder`).

    ``line`` is the 1-based line (jsonl, txt, csv) or row (parquet) number.
    Raises :class:`InputFileError` on the first malformed line. ``arrays``:
    parquet columns of equal-length numeric lists without nulls (precomputed
    vectors) come as numpy rows, not lists of Python floats (about 150 us a
    row for 384 floats); other columns, and other formats, as they are.

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
        yield from _iter_parquet(path, arrays)
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


def _iter_parquet(path, arrays: Sequence[str] = ()):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise InputFileError(path, None, f"not a readable parquet file ({exc})") from None
    n = 0
    for batch in pf.iter_batches(batch_size=8192):
        mats = {c: m for c in arrays if c in batch.schema.names
                and (m := _matrix(batch.column(c))) is not None}
        recs = batch.drop_columns(list(mats)).to_pylist() if mats else batch.to_pylist()
        for i, rec in enumerate(recs):
            for c, m in mats.items():
                rec[c] = m[i]
            n += 1
            yield n, rec


def _matrix(col):
    """A column of equal-length numeric lists with no nulls as an ``(n, d)``
    numpy array, else None.

    Examples
    --------
    >>> import pyarrow as pa
    >>> _matrix(pa.array([[0.5, 1.0], [2.0, -1.5]])).tolist(), _matrix(pa.array([[1.0], [1.0, 2.0]]))
    ([[0.5, 1.0], [2.0, -1.5]], None)
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)) \
            or not (pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type)) \
            or len(col) == 0 or col.null_count or pc.list_flatten(col).null_count:
        return None
    lengths = pc.list_value_length(col).to_numpy()
    if (lengths != lengths[0]).any():
        return None
    return pc.list_flatten(col).to_numpy().reshape(len(col), int(lengths[0]))


def datasets_kind(obj) -> str | None:
    """The class name when ``obj`` is a ``datasets`` Dataset, IterableDataset
    or one of their dicts of splits (told by its class, without importing
    ``datasets``), else None.

    Examples
    --------
    >>> import datasets
    >>> datasets_kind(datasets.Dataset.from_list([{"text": "a nurse"}])), datasets_kind([])
    ('Dataset', None)
    """
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
    kind = datasets_kind(ds)
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


def numbered(records: Any) -> list[tuple[int, dict]]:
    """Python records as ``(line, record)`` pairs, materialised: dicts, strs
    (the text), ``(line, dict)`` pairs, a pyarrow Table or a pandas DataFrame.

    Examples
    --------
    >>> numbered(["a nurse", {"text": "a baker"}, (7, {"text": "a welder"})])
    [(1, {'text': 'a nurse'}), (2, {'text': 'a baker'}), (7, {'text': 'a welder'})]
    >>> numbered([3])
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: <records>:1: expected a dict or a str, got int
    """
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

