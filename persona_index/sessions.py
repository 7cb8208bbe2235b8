"""Sampling sessions: what earlier batches drew, kept in the store.

A session is a named sequence of batches. Its draws live in the store's
``sessions`` table (session, id, batch, drawn_at) and each batch's manifest in
``manifests``; both are LanceDB tables beside ``personas``, so a session
travels with the store. A draw holds an exclusive file lock on the session
(in ``<db>/.locks``) from reading the session to writing its batch, so two
processes drawing from one session never hand out the same persona twice.

``exclude_sessions`` is a recorded relation (table ``exclusions``) that holds
both ways: once B has been drawn excluding A, later draws of A also avoid
what B drew. A draw locks every session it reads (its own, the ones it
excludes, and the ones the relation adds), re-reading the relation after
locking until the set is stable, so train and eval stay disjoint whichever
process draws first.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path

import numpy as np

from .errors import InvalidQueryError

SESSIONS = "sessions"
MANIFESTS = "manifests"
EXCLUSIONS = "exclusions"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str) -> str:
    """``name`` if it is a valid session name, else
    :class:`~persona_index.errors.InvalidQueryError`.

    Examples
    --------
    >>> check_name("train-2024.v1")
    'train-2024.v1'
    >>> check_name("../train")
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: session name '../train': use letters, digits, '_', '.', '-' (up to 128 characters)
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidQueryError(f"session name {name!r}: use letters, digits, '_', '.', '-' "
                                "(up to 128 characters)")
    return name


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


@contextlib.contextmanager
def session_lock(index, names):
    """Exclusive locks on the given sessions, taken in sorted order (no
    deadlock between two draws that need overlapping sets). Waits for them.

    Object-storage stores cannot be locked: there a draw that records a
    session needs ``single_writer`` (see :meth:`PersonaIndex.writer_lock`).

    Examples
    --------
    >>> import os, tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> from persona_index.store import PersonaIndex
    >>> index = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16))
    >>> with session_lock(index, ["train", "eval", "train"]):
    ...     sorted(os.listdir(os.path.join(index.path, ".locks")))
    ['session-eval.lock', 'session-train.lock']

    Only ``path`` and ``single_writer`` of the index are read; on object storage:

    >>> from types import SimpleNamespace
    >>> remote = SimpleNamespace(path="s3://bucket/personas", single_writer=False)
    >>> with session_lock(remote, ["train"]):
    ...     pass
    Traceback (most recent call last):
    ...
    persona_index.errors.ConcurrencyError: 's3://bucket/personas' is on object storage, where session draws cannot be locked: pass --single-writer (single_writer=True) if no other process draws meanwhile
    """
    names = sorted(set(names))
    if not names:
        yield
        return
    if "://" in index.path:
        if not index.single_writer:
            from .errors import ConcurrencyError

            raise ConcurrencyError(
                f"{index.path!r} is on object storage, where session draws cannot be locked: "
                "pass --single-writer (single_writer=True) if no other process draws meanwhile")
        yield
        return
    from filelock import FileLock

    lockdir = Path(index.path) / ".locks"
    lockdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(FileLock(str(lockdir / f"session-{name}.lock")))
        yield


class Sessions:
    """The sessions and manifests tables of one store.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> from persona_index.store import PersonaIndex
    >>> s = Sessions(PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16)))
    >>> s.list(), s.next_batch("train")
    ([], 1)
    >>> s.record("train", 1, ["p1", "p2"], {"batch": 1, "strategy": "uniform"})
    >>> s.record("train", 2, ["p3"], {"batch": 2, "strategy": "uniform"})
    >>> s.drawn(["train"]), s.next_batch("train")
    (['p1', 'p2', 'p3'], 3)
    >>> [(d["session"], d["personas"], d["batches"]) for d in s.list()]
    [('train', 3, 2)]
    >>> [m["batch"] for m in s.manifests("train")]
    [1, 2]
    >>> s.record_exclusions("eval", ["train"])
    >>> s.excluded_by("train")  # the relation holds both ways
    {'eval'}
    >>> s.reset("train"), s.drawn(["train"])
    (3, [])
    """

    def __init__(self, index):
        self.index = index

    def _table(self, name, create_schema=None):
        db = self.index.db
        names = self.index.table_names()
        if name in names:
            return db.open_table(name)
        if create_schema is None:
            return None
        try:
            return db.create_table(name, schema=create_schema)
        except Exception:  # created meanwhile by another process
            return db.open_table(name)

    @staticmethod
    def _schemas():
        import pyarrow as pa

        draws = pa.schema([("session", pa.string()), ("id", pa.string()),
                           ("batch", pa.int64()), ("drawn_at", pa.string())])
        manifests = pa.schema([("session", pa.string()), ("batch", pa.int64()),
                               ("manifest", pa.string())])
        return draws, manifests

    def excluded_by(self, name: str) -> set:
        """Sessions kept disjoint from ``name``: the relation holds both ways
        once any draw recorded it."""
        t = self._table(EXCLUSIONS)
        if t is None:
            return set()
        tbl = t.to_lance().to_table(columns=["a", "b"],
                                    filter=f"a = {_quote(name)} OR b = {_quote(name)}")
        out = set(tbl.column("a").to_pylist()) | set(tbl.column("b").to_pylist())
        out.discard(name)
        return out

    def record_exclusions(self, name: str, others) -> None:
        import pyarrow as pa

        new = sorted(set(others) - self.excluded_by(name) - {name})
        if not new:
            return
        schema = pa.schema([("a", pa.string()), ("b", pa.string())])
        self._table(EXCLUSIONS, schema).add(pa.table(
            {"a": [min(name, o) for o in new], "b": [max(name, o) for o in new]}, schema=schema))

    def version(self) -> int:
        t = self._table(SESSIONS)
        return int(t.version) if t is not None else 0

    def drawn(self, names, *, version: int | None = None) -> list[str]:
        """Ids drawn by these sessions (at a version of the sessions table)."""
        names = [check_name(n) for n in names]
        if not names:
            return []
        t = self._table(SESSIONS)
        if t is None or version == 0:
            return []
        if version is not None:
            t.checkout(version)
        ds = t.to_lance()
        where = f"session IN ({','.join(_quote(n) for n in names)})"
        tbl = ds.to_table(columns=["id", "batch"], filter=where)
        if version is not None:
            t.checkout_latest()
        # order by batch, then stored order: the order they were drawn
        order = np.argsort(tbl.column("batch").to_numpy(), kind="stable")
        ids = tbl.column("id").to_pylist()
        return [ids[i] for i in order]

    def next_batch(self, name) -> int:
        t = self._table(SESSIONS)
        if t is None:
            return 1
        tbl = t.to_lance().to_table(columns=["batch"], filter=f"session = {_quote(name)}")
        return int(tbl.column("batch").to_numpy().max()) + 1 if tbl.num_rows else 1

    def record(self, name, batch: int, ids, manifest: dict) -> None:
        import pyarrow as pa

        draws, manis = self._schemas()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._table(SESSIONS, draws).add(pa.table({
            "session": [name] * len(ids), "id": list(ids), "batch": [batch] * len(ids),
            "drawn_at": [now] * len(ids)}, schema=draws))
        self._table(MANIFESTS, manis).add(pa.table({
            "session": [name], "batch": [batch], "manifest": [json.dumps(manifest)]}, schema=manis))

    def list(self) -> list[dict]:
        t = self._table(SESSIONS)
        if t is None:
            return []
        tbl = t.to_lance().to_table(columns=["session", "batch", "drawn_at"])
        out: dict = {}
        for s, b, at in zip(*(tbl.column(c).to_pylist() for c in ("session", "batch", "drawn_at"))):
            d = out.setdefault(s, {"session": s, "personas": 0, "batches": set(), "last": at})
            d["personas"] += 1
            d["batches"].add(b)
            d["last"] = max(d["last"], at)
        return [{**d, "batches": len(d["batches"])} for d in sorted(out.values(), key=lambda d: d["session"])]

    def manifests(self, name) -> list[dict]:
        t = self._table(MANIFESTS)
        if t is None:
            return []
        tbl = t.to_lance().to_table(filter=f"session = {_quote(check_name(name))}")
        ms = [json.loads(m) for m in tbl.column("manifest").to_pylist()]
        return sorted(ms, key=lambda m: m.get("batch", 0))

    def reset(self, name) -> int:
        check_name(name)
        n = len(self.drawn([name]))
        for tname in (SESSIONS, MANIFESTS):
            t = self._table(tname)
            if t is not None:
                t.delete(f"session = {_quote(name)}")
        return n
