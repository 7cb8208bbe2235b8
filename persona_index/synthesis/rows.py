"""Reading ``synthesize`` output files: which row counts, and what kind of path.

One rule for a repeated key serves every reader (``outputs-report``,
``curate``, resume): :func:`keyed_rows`. Each row is keyed by its
``custom_id``; a row without one (absent, null or empty) is keyed by its line
(``line:N``). Where a key repeats (a rerun appended a new row for a failed
one) the last row wins and stands at its own position: the rows that count
come out in file order, the order a reader of the file sees them.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Iterable


def keyed_rows(rows: Iterable, id_field: str = "custom_id") -> tuple[list, int]:
    """The rows that count, as ``(key, line, row)`` in file order, and how
    many rows a later one with the same key replaced.

    ``rows`` are rows, or ``(line, row)`` pairs as
    :func:`persona_index.ingest.iter_file` yields them (else a row's line is
    its 1-based position). The key is ``str(row[id_field])``, or ``line:N``
    when the row has none (absent, null or ``""``) or is not a dict.

    Examples
    --------
    >>> rows = [{"custom_id": "a", "status": "failed"}, {"custom_id": "b"},
    ...         {"response": "no id"}, {"custom_id": "a", "status": "ok"}]
    >>> kept, repeated = keyed_rows(rows)
    >>> [(k, line) for k, line, _ in kept], repeated
    ([('b', 2), ('line:3', 3), ('a', 4)], 1)
    """
    numbered = []
    last: dict = {}
    for i, r in enumerate(rows, 1):
        line, rec = r if isinstance(r, tuple) else (i, r)
        cid = rec.get(id_field) if isinstance(rec, dict) else None
        key = f"line:{line}" if cid is None or cid == "" else str(cid)
        last[key] = len(numbered)
        numbered.append((key, line, rec))
    winners = sorted(last.values())
    return [numbered[p] for p in winners], len(numbered) - len(winners)


def last_rows(rows: Iterable, id_field: str = "custom_id") -> list:
    """The rows of :func:`keyed_rows`, without their keys: the last row of
    each ``custom_id``, at its own position; rows without one are kept.
    Every reader of a ``synthesize`` output goes through this.

    Examples
    --------
    >>> rows = [{"custom_id": "a", "status": "failed"}, {"custom_id": "b", "status": "ok"},
    ...         {"custom_id": "a", "status": "ok"}, {"response": "no id"}]
    >>> last_rows(rows)
    [{'custom_id': 'b', 'status': 'ok'}, {'custom_id': 'a', 'status': 'ok'}, {'response': 'no id'}]
    """
    return [r for _, _, r in keyed_rows(rows, id_field)[0]]


def _iter_rows(out_path: str):
    p = Path(out_path)
    if not p.is_file():
        return
    with open(p, "rb") as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash: that row is redone
            if isinstance(r, dict) and isinstance(r.get("custom_id"), str):
                yield r


def done_ids(out_path: str) -> set[str]:
    """custom_ids with a row in ``out_path``, ok or failed (a torn last line
    is ignored).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.jsonl"
    >>> done_ids(str(out))  # no file yet
    set()
    >>> _ = out.write_text('{"custom_id": "p1:ask"}\\n{"custom_id": "p2:a')  # a crash mid-line
    >>> done_ids(str(out))
    {'p1:ask'}
    """
    return {r["custom_id"] for r in _iter_rows(out_path)}


def row_states(out_path: str) -> dict:
    """``custom_id -> (status, runs)`` of the last row of each id in
    ``out_path`` (rows written before ``runs`` existed count as run 1).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.jsonl"
    >>> _ = out.write_text('{"custom_id": "a", "status": "failed"}\\n'
    ...                    '{"custom_id": "a", "status": "failed", "runs": 2}\\n')
    >>> row_states(str(out))
    {'a': ('failed', 2)}
    """
    out = {}
    for r in _iter_rows(out_path):
        runs = r.get("runs")
        out[r["custom_id"]] = (r.get("status", "ok"),
                               runs if isinstance(runs, int) and not isinstance(runs, bool) else 1)
    return out


def repair_tail(out_path: str) -> None:
    """Cut a torn last line left by a crash, so appends start on a fresh line."""
    p = Path(out_path)
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        back = min(size, 1 << 20)
        fh.seek(size - back)
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n")
        if cut < 0 and back < size:  # a last line over 1 MiB: read it all
            fh.seek(0)
            data, back = fh.read(), size
            cut = data.rfind(b"\n")
        fh.seek(size - back + cut + 1)
        fh.truncate()


def is_stream(out_path: str) -> bool:
    """Whether ``out_path`` is written as a stream (``-``, ``/dev/stdout``,
    a FIFO, a character device: anything that exists and is not a regular
    file), never read back.

    Examples
    --------
    >>> is_stream("-"), is_stream("/dev/null"), is_stream("/no/such/dir/new.jsonl")
    (True, True, False)
    """
    if out_path == "-":
        return True
    try:
        return not stat.S_ISREG(os.stat(out_path).st_mode)
    except OSError:
        return False


def is_stdout(out_path: str) -> bool:
    """Whether ``out_path`` is this process's standard output (``-``, or a
    path to the same pipe or terminal), so a summary must go elsewhere.

    Examples
    --------
    >>> is_stdout("-"), is_stdout("/no/such/file")
    (True, False)
    """
    if out_path == "-":
        return True
    try:
        a, b = os.stat(out_path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return not stat.S_ISREG(a.st_mode) and (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
