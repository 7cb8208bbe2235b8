"""Writing an output file the way a shell user expects.

* ``-`` is standard output;
* a symbolic link is written through (the link stays a link);
* a FIFO, a character device (``/dev/stdout``) or anything not a regular file
  is opened and written in place;
* a regular file (or a new path) is written to ``PATH.partial`` and renamed
  over ``PATH`` at the end, so a crash never leaves half a file;
* a path that is one of the command's inputs is refused before anything is
  written (an output never clobbers an input);
* :func:`check_outputs` refuses, before any work, an output under the store's
  directory or under any Lance table, or one equal to an input or to another
  output (:class:`~persona_index.errors.OutputPathError`);
* :class:`Staged` writes outputs to temporary files in their target folders
  and moves them into place only when the caller commits (a session draw
  records its batch in between).

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

from .errors import DeliveryError, InvalidQueryError, OutputPathError


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


def _real(path) -> str:
    return os.path.realpath(os.path.abspath(str(path)))


def _protected(real: str, db) -> str | None:
    """What ``real`` would destroy: the store (``db``) or a Lance table."""
    if db is not None and "://" not in str(db):
        root = _real(db)
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return f"it is inside the store {str(db)!r}"
    p = Path(real)
    for a in [p, *p.parents]:
        if a.name == "_versions" or (a / "_versions").is_dir():
            return f"it is inside the Lance table {str(a if a.name != '_versions' else a.parent)!r}"
    return None


def check_outputs(outputs: dict, *, db=None, inputs: dict | Iterable = ()) -> None:
    """Refuse outputs that would destroy something, before any work:
    ``outputs`` maps a name (the parameter or flag, for the message) to a path
    (None: not given; ``-``: standard output, always fine once). Raises
    :class:`~persona_index.errors.OutputPathError` when a path resolves under
    the store ``db`` or under any directory holding a Lance table, equals one
    of ``inputs`` (a dict name -> path, or paths) or another output.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> check_outputs({"out": os.path.join(d, "b.jsonl"), "manifest": "-"}, db=os.path.join(d, "s.lance"))
    >>> check_outputs({"out": os.path.join(d, "s.lance", "personas.lance", "x")},
    ...               db=os.path.join(d, "s.lance"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.OutputPathError: out '...x' would overwrite part of a store: it is inside the store '...s.lance'
    >>> check_outputs({"out": os.path.join(d, "a.json"), "manifest": os.path.join(d, ".", "a.json")})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.OutputPathError: out and manifest are the same file '...a.json': name two files
    """
    if not isinstance(inputs, dict):
        inputs = {f"input {str(p)!r}": p for p in inputs}
    seen: dict = {}
    for name, path in outputs.items():
        if path is None:
            continue
        path = str(path)
        if path == "-":
            key = "-"
        else:
            key = _real(path)
            why = _protected(key, db)
            if why:
                raise OutputPathError(f"{name} {path!r} would overwrite part of a store: {why}")
            folder = os.path.dirname(key)
            if not os.path.isdir(folder):
                raise OutputPathError(f"{name} {path!r}: its folder {folder!r} does not exist")
            for iname, src in inputs.items():
                if src and str(src) != "-" and (same_file(path, src) or key == _real(src)):
                    raise OutputPathError(f"{name} {path!r} is {iname} {str(src)!r}: it would be "
                                          "overwritten; name another file")
        if key in seen:
            raise OutputPathError(f"{seen[key]} and {name} are the same file {path!r}: "
                                  "name two files")
        seen[key] = name


def _special(path: str) -> bool:
    """Standard output, or an existing path that is not a regular file
    (a FIFO, ``/dev/stdout``): written in place, never renamed over."""
    if path == "-":
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class Staged:
    """Outputs written now to temporary files beside their targets and moved
    into place by :meth:`commit` (or removed by :meth:`abort`). Standard
    output and special files are written at commit (they cannot be staged).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> s = Staged()
    >>> s.add(os.path.join(d, "a.txt"), "hello\\n")
    >>> sorted(os.listdir(d))[0].endswith(".partial")
    True
    >>> s.commit(); os.listdir(d)
    ['a.txt']
    >>> s = Staged(); s.add(os.path.join(d, "b.txt"), "x"); s.abort(); sorted(os.listdir(d))
    ['a.txt']
    >>> Staged().add(os.path.join(d, "no", "dir", "c.txt"), "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...
    """

    def __init__(self):
        self.parts: list = []  # (final path, temp path or None, text)

    def add(self, path, text: str) -> None:
        path = str(path)
        if _special(path):
            self.parts.append((path, None, text))
            return
        real = os.path.realpath(path)  # a symlink is written through
        folder, name = os.path.split(real)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.partial")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            if isinstance(exc, OSError) and exc.errno is not None:  # name the output
                raise type(exc)(exc.errno, exc.strerror, path) from None
            raise
        self.parts.append((real, tmp, text))

    def pending(self) -> list:
        """(temporary, final) path of every staged file."""
        return [(tmp, path) for path, tmp, _ in self.parts if tmp]

    def abort(self) -> None:
        for _, tmp, _ in self.parts:
            if tmp:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
        self.parts = []

    def commit(self, recorded: str | None = None) -> None:
        """Move every staged file into place, then write the special ones.
        ``recorded`` (what was committed meanwhile, e.g. "session 'a' batch
        2") goes into the message of a failure, which names the finished
        temporary files: they are kept."""
        left = list(self.parts)
        try:
            while left:
                path, tmp, text = left[0]
                if tmp:
                    os.replace(tmp, path)
                elif path == "-":
                    sys.stdout.write(text)
                    sys.stdout.flush()
                else:
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write(text)
                left.pop(0)
        except BrokenPipeError:
            raise
        except OSError as exc:
            from .errors import write_cause

            kept = [f"{tmp} -> {path}" for path, tmp, _ in left if tmp]
            raise DeliveryError(
                (f"{recorded} is recorded, but " if recorded else "")
                + f"{left[0][0]!r} could not be written ({write_cause(exc)})"
                + (f"; the finished files are kept: rename {', '.join(kept)}" if kept else "")
            ) from None
        finally:
            self.parts = []
