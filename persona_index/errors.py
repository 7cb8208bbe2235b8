"""Every exception persona-index raises, and the warnings it issues.

Each subclasses a built-in so callers can catch it either way
(``except ValueError`` still works), and every message names the offending
value: the file and line, the field, or the parameter.
"""

from __future__ import annotations

import os
import sys
import warnings


class PersonaIndexError(Exception):
    """Base class of all persona-index errors.

    Examples
    --------
    >>> issubclass(InputFileError, PersonaIndexError), issubclass(PersonaIndexError, Exception)
    (True, True)
    """


class InputFileError(PersonaIndexError, ValueError):
    """A file that cannot be ingested as a whole (malformed, empty, unreadable).

    Attributes
    ----------
    path, line : where the problem is; ``line`` is 1-based (None when the
        problem is the whole file).

    Examples
    --------
    >>> str(InputFileError("p.jsonl", 3, "bad value"))
    'p.jsonl:3: bad value'
    >>> str(InputFileError("p.jsonl", None, "empty"))
    'p.jsonl: empty'
    """

    def __init__(self, path, line, message):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class RowRejected(PersonaIndexError, ValueError):
    """One unusable row under ``strict=True`` (no text, empty text, too long).

    Examples
    --------
    >>> isinstance(RowRejected("p.jsonl:2: empty text"), ValueError)
    True
    """


class IngestOptionError(PersonaIndexError, ValueError):
    """An ingest option that cannot be read (``bands`` not ascending numbers,
    a malformed ``template``, a template with another schema than profiles).
    The CLI checks the same options as usage errors (exit 2).

    Examples
    --------
    >>> isinstance(IngestOptionError("bands 'age=x'"), (PersonaIndexError, ValueError))
    True
    """


class PersonaIndexWarning(UserWarning):
    """Base class of what the library tells its caller that is not an error.
    The library never prints: it issues these (:func:`warn`), and the CLI
    prints each as one line, ``warning: ...`` or, for a :class:`Note`,
    ``note: ...``. In Python they are ordinary warnings (filter them with
    :mod:`warnings`).

    Examples
    --------
    >>> issubclass(IngestWarning, PersonaIndexWarning), issubclass(IngestNote, Note)
    (True, True)
    """


class Note(PersonaIndexWarning):
    """Information rather than a problem: a lock being waited for, a file
    delivered late, a resumed reembed, the embedder a query fell back to."""


class IngestWarning(PersonaIndexWarning):
    """Something an ingest did that the caller should know of: rows kept
    although the embedder could not tell them apart, texts embedded truncated.
    The CLI prints it as ``warning: ...``.

    Examples
    --------
    >>> issubclass(IngestWarning, UserWarning), issubclass(IngestNote, IngestWarning)
    (True, True)
    """


class IngestNote(IngestWarning, Note):
    """Information rather than a problem, e.g. the schema detected under
    ``schema="auto"``. The CLI prints it as ``note: ...``."""


def warn(message: str, category: type[Warning] = Note) -> None:
    """Issue ``message`` as a ``category`` warning, attributed to the first
    caller outside this package (where a user can act on it).

    Examples
    --------
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn("waiting for the writer lock")
    >>> caught[0].category.__name__, str(caught[0].message)
    ('Note', 'waiting for the writer lock')
    """
    here, level, frame = os.path.dirname(__file__), 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class StoreNotFoundError(PersonaIndexError, FileNotFoundError):
    """A query or export on a store that does not exist.

    Examples
    --------
    >>> issubclass(StoreNotFoundError, FileNotFoundError)
    True
    """


class ConcurrencyError(PersonaIndexError, RuntimeError):
    """A write or session draw that cannot be made safe against other
    processes (an object-storage store without ``single_writer``).

    Examples
    --------
    >>> issubclass(ConcurrencyError, RuntimeError)
    True
    """


class EmbedderMismatchError(PersonaIndexError, ValueError):
    """The store was built with another model (or dimension) than the one given.

    Examples
    --------
    >>> issubclass(EmbedderMismatchError, ValueError)
    True
    """


class FormatVersionError(PersonaIndexError, ValueError):
    """The store was written by an unknown format version of persona-index.

    Examples
    --------
    >>> issubclass(FormatVersionError, ValueError)
    True
    """


class InvalidQueryError(PersonaIndexError, ValueError):
    """A bad request: k <= 0, a ``where`` that does not parse, an unknown id.

    Examples
    --------
    >>> issubclass(InvalidQueryError, ValueError), str(InvalidQueryError("k must be > 0, got 0"))
    (True, 'k must be > 0, got 0')
    """


class InvalidFilterError(InvalidQueryError):
    """A ``where`` clause that does not parse as a whole (trailing garbage is
    refused, not dropped). The CLI reports it as a usage error (exit 2).

    Examples
    --------
    >>> issubclass(InvalidFilterError, InvalidQueryError)
    True
    """


class SamplingError(PersonaIndexError, ValueError):
    """A sampling request that cannot be met (k larger than the pool, ...).

    Examples
    --------
    >>> issubclass(SamplingError, ValueError)
    True
    """


class StrategyParameterError(SamplingError):
    """A strategy parameter the strategy does not take, of the wrong type, or
    out of range; the message names the valid parameters or range. The CLI
    reports it as a usage error (exit 2).

    Examples
    --------
    >>> issubclass(StrategyParameterError, SamplingError)
    True
    """


class UnknownStrategyError(PersonaIndexError, KeyError):
    """An unknown strategy name; the message lists the valid names.

    Examples
    --------
    >>> str(UnknownStrategyError("unknown strategy 'x'; valid: random"))
    "unknown strategy 'x'; valid: random"
    """

    def __str__(self):  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class ManifestError(PersonaIndexError, ValueError):
    """A manifest that cannot be replayed, or whose replay differs.

    Examples
    --------
    >>> issubclass(ManifestError, ValueError)
    True
    """


class CurationError(PersonaIndexError, ValueError):
    """Output rows that cannot be curated: an empty file, a field no row has,
    k larger than the rows left, a score that is not a number.

    Examples
    --------
    >>> issubclass(CurationError, ValueError)
    True
    """


class SynthesisError(PersonaIndexError, RuntimeError):
    """A generation request that failed after its retries.

    Examples
    --------
    >>> issubclass(SynthesisError, RuntimeError)
    True
    """


class DeviceError(PersonaIndexError, ValueError):
    """An unknown compute device, or one that is not there (``cuda`` with no
    GPU that torch can see).

    Examples
    --------
    >>> issubclass(DeviceError, ValueError)
    True
    """


class MissingDependencyError(PersonaIndexError, ImportError):
    """An optional dependency is not installed; the message says which extra.

    Examples
    --------
    >>> issubclass(MissingDependencyError, ImportError)
    True
    """


class UnknownWeightsError(PersonaIndexError, ValueError):
    """An unknown ``weights`` name for the generated pool; the message lists
    the valid names.

    Examples
    --------
    >>> issubclass(UnknownWeightsError, ValueError)
    True
    """


def clean_error(exc) -> str:
    """The first line of a Lance/DataFusion error, without the Rust source
    paths of the build that raised it.

    >>> clean_error(ValueError("bad filter, /home/runner/lance/src/scan.rs:12:5\\nmore"))
    'bad filter'
    """
    import re

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r",?\s*(?:at\s+)?/[\w./-]+\.rs(?::\d+)*(?::\d+)?", "", msg)
    msg = re.sub(r"\s+", " ", msg).strip()
    return msg[:300]


class LockTimeoutError(ConcurrencyError):
    """A lock that was not free within ``lock_timeout`` seconds; the message
    names the lock file and, where known, the process that holds it.

    Examples
    --------
    >>> issubclass(LockTimeoutError, (ConcurrencyError, RuntimeError))
    True
    """


class StoreWriteError(PersonaIndexError, OSError):
    """A commit that failed (disk full, file too large, a read-only store) or
    that did not read back whole; the store was put back to the version it had
    before. The message names the store and the cause.

    Examples
    --------
    >>> issubclass(StoreWriteError, OSError)
    True
    """


class BrokenStoreError(StoreNotFoundError):
    """A store path that exists but is not a persona store (``personas.lance``
    is a file, or a directory without a committed version).

    Examples
    --------
    >>> issubclass(BrokenStoreError, FileNotFoundError)
    True
    """


class OutputPathError(PersonaIndexError, ValueError):
    """An output path that would destroy something: under the store's
    directory or any Lance table, or equal to an input or to another output.
    The CLI reports it as a usage error (exit 2).

    Examples
    --------
    >>> issubclass(OutputPathError, ValueError)
    True
    """


class DeliveryError(PersonaIndexError, OSError):
    """A draw whose record was committed but whose output files could not be
    moved into place; the message says where the finished files are.

    Examples
    --------
    >>> issubclass(DeliveryError, OSError)
    True
    """


#: errno -> how a write failure is named in one-line messages
_CAUSES = {28: "disk full", 27: "file too large", 30: "read-only file system",
           13: "permission denied", 1: "operation not permitted", 122: "disk quota exceeded"}


def write_cause(exc) -> str:
    """A failed write, named plainly: disk full, file too large, ... (from the
    errno or Lance's ``(os error N)``), else the cleaned first line.

    >>> write_cause(OSError(28, "No space left on device"))
    'disk full'
    >>> write_cause(RuntimeError("LanceError(IO): write failed, File too large (os error 27), /x/y.rs:3:1"))
    'file too large'
    >>> write_cause(ValueError("something else"))
    'something else'
    """
    import re

    no = getattr(exc, "errno", None)
    if no in _CAUSES:
        return _CAUSES[no]
    m = re.search(r"os error (\d+)", str(exc))
    if m and int(m.group(1)) in _CAUSES:
        return _CAUSES[int(m.group(1))]
    return clean_error(exc)
