"""Writing an output file the way a shell user expects.

* ``-`` is standard output;
* a symbolic link is written through (the link stays a link);
* a FIFO, a character device (``/dev/stdout``) or anything not a regular file
  is opened and written in place;
* a regular file (or a new path) is written to ``PATH.partial`` and renamed
  over ``PATH`` at the end, so a crash never leaves half a file;
* a path that is one of the command's inputs is refused before anything is
  written (an output never clobbers an input).

Examples
--------
>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> with output_file(os.path.join(d, "a.jsonl")) as fh:
...     _ = fh.write("{}\\n")
>>> open(os.path.join(d, "a.jsonl")).read()
'{}\\n'
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import Iterable

from .errors import InvalidQueryError


def same_file(a, b) -> bool:
    """Whether two paths name one file (False when either does not exist).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> a = os.path.join(d, "a.txt")
    >>> open(a, "w").close()
    >>> same_file(a, os.path.join(d, ".", "a.txt")), same_file(a, os.path.join(d, "b.txt"))
    (True, False)
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(path, inputs: Iterable) -> None:
    """Raise :class:`~persona_index.errors.InvalidQueryError` if ``path`` is one
    of ``inputs`` (``-``, standard output, never is).

    Examples
    --------
    >>> import tempfile
    >>> a = os.path.join(tempfile.mkdtemp(), "a.jsonl")
    >>> open(a, "w").close()
    >>> check_not_input("-", [a])  # fine: returns None
    >>> check_not_input(a, ["-", a])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: output '...a.jsonl' is the input '...a.jsonl': it would be overwritten; name another file
    """
    if path == "-":
        return
    for src in inputs:
        if src and src != "-" and same_file(path, src):
            raise InvalidQueryError(f"output {str(path)!r} is the input {str(src)!r}: it would be "
                                    "overwritten; name another file")


@contextlib.contextmanager
def output_file(path, *, inputs: Iterable = (), mode: str = "w", encoding: str | None = "utf-8"):
    """A file handle for writing ``path`` (see the module docstring).

    Examples
    --------
    A crash inside the block leaves neither ``path`` nor ``path.partial``:

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with output_file(os.path.join(d, "out.jsonl")) as fh:
    ...     _ = fh.write("half a line")
    ...     raise RuntimeError("crash")
    Traceback (most recent call last):
    ...
    RuntimeError: crash
    >>> os.listdir(d)
    []
    """
    path = str(path)
    check_not_input(path, inputs)
    if path == "-":
        stream = sys.stdout if "b" not in mode else sys.stdout.buffer
        yield stream
        stream.flush()
        return
    p = Path(path)
    in_place = p.is_symlink() or (p.exists() and not stat.S_ISREG(p.stat().st_mode))
    if in_place:
        with open(p.resolve() if p.is_symlink() else p, mode, encoding=encoding) as fh:
            yield fh
        return
    tmp = path + ".partial"
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
