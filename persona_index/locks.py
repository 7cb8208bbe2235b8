"""The one lock helper of the package: exclusive lock files under
``<store>/.locks/``, for the store's writer lock, the session locks and the
session-tables lock (:func:`store_lock`)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from .errors import ConcurrencyError, LockTimeoutError, warn

__all__ = ["LOCK_NOTE_S", "store_lock"]


#: a waiter says once on stderr what it waits for after this many seconds
LOCK_NOTE_S = 2.0


def _holder(fd) -> str:
    """' (held by pid N)' from a lock file's content, '(stopped)' when that
    process is stopped; '' when unknown."""
    try:
        pid = int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return ""
    state = ""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("State:"):
                    state = " (stopped)" if line.split()[1] in ("T", "t") else ""
                    break
    except OSError:
        pass
    return f", held by pid {pid}{state}"


_HELD: dict = {}  # (lock file, thread) -> depth: a holder may take its lock again


@contextlib.contextmanager
def _file_lock(path: Path, what: str, timeout: float | None, note_after: float):
    """One exclusive lock file: flock, waiting; the holder's pid written in it.
    Re-entrant within a thread (a record inside a draw takes the lock the
    draw holds)."""
    import threading

    key = (str(path), threading.get_ident())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    _HELD[key] = 1
    try:
        with _flock(path, what, timeout, note_after):
            yield
    finally:
        del _HELD[key]


@contextlib.contextmanager
def _flock(path: Path, what: str, timeout: float | None, note_after: float):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: filelock, without the pid
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(path), timeout=-1 if timeout is None else timeout):
                yield
        except Timeout:
            raise LockTimeoutError(f"{what} ({path}) was not free within {timeout:g} s") from None
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        start, noted, pause = time.monotonic(), False, 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if timeout is not None and waited >= timeout:
                    raise LockTimeoutError(f"{what} ({path}{_holder(fd)}) was not free within "
                                           f"{timeout:g} s") from None
                if not noted and waited >= note_after:
                    warn(f"waiting for {what} ({path}{_holder(fd)})")
                    noted = True
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk must not stop the lock (the pid is a courtesy)
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def store_lock(store_path: str, names, *, what: str = "the store's writer lock",
               timeout: float | None = None, single_writer: bool = False,
               remote_hint: str = "writes and session draws"):
    """Exclusive locks ``<store>/.locks/NAME.lock`` on every name in ``names``
    (a str or several), taken in sorted order so that two holders of
    overlapping sets never deadlock. The one lock helper of the package: the
    writer lock, the session locks and the session-tables lock all come here.

    A waiter prints once on stderr what it waits for (the lock file and the
    holder's pid) after :data:`LOCK_NOTE_S` seconds; with ``timeout`` it
    raises :class:`LockTimeoutError` when the lock stays taken that long.

    Object storage has no shared file system to lock on: there the caller
    must promise ``single_writer``.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with store_lock(d, ["b", "a", "b"]):
    ...     sorted(os.listdir(os.path.join(d, ".locks")))
    ['a.lock', 'b.lock']
    >>> import subprocess, sys
    >>> with store_lock(d, "a"):  # another process waits 0.3 s, then gives up
    ...     r = subprocess.run([sys.executable, "-c", "from persona_index.locks import store_lock; "
    ...                         f"store_lock({d!r}, 'a', timeout=0.3).__enter__()"],
    ...                        capture_output=True, text=True)
    >>> r.returncode, r.stderr.strip().splitlines()[-1].split(": ")[-1].split(" (")[0]
    (1, "the store's writer lock")
    """
    names = sorted({names} if isinstance(names, str) else set(names))
    if not names:
        yield
        return
    path = str(store_path)
    if "://" in path:
        if not single_writer:
            raise ConcurrencyError(
                f"{path!r} is on object storage, where persona-index cannot lock: {remote_hint} "
                "need single_writer=True, a promise that no other process "
                "writes to this store meanwhile")
        yield
        return
    lockdir = Path(path) / ".locks"
    lockdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(_file_lock(lockdir / f"{name}.lock", what, timeout, LOCK_NOTE_S))
        yield
