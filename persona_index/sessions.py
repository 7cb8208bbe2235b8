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

from .errors import InvalidQueryError, warn

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


def session_lock(index, names):
    """Exclusive locks on the given sessions, taken in sorted order (no
    deadlock between two draws that need overlapping sets). Waits for them,
    up to the index's ``lock_timeout`` (:func:`persona_index.locks.store_lock`,
    the package's one lock helper).

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

    Only ``path``, ``single_writer`` and ``lock_timeout`` of the index are
    read; on object storage:

    >>> from types import SimpleNamespace
    >>> remote = SimpleNamespace(path="s3://bucket/personas", single_writer=False)
    >>> with session_lock(remote, ["train"]):
    ...     pass
    Traceback (most recent call last):
    ...
    persona_index.errors.ConcurrencyError: 's3://bucket/personas' is on object storage, where session draws cannot be locked: pass single_writer=True if no other process draws meanwhile
    """
    from .locks import store_lock

    names = sorted(set(names))
    if names and "://" in index.path and not index.single_writer:
        from .errors import ConcurrencyError

        raise ConcurrencyError(
            f"{index.path!r} is on object storage, where session draws cannot be locked: "
            "pass single_writer=True if no other process draws meanwhile")
    what = (f"the lock of session {names[0]!r}" if len(names) == 1
            else f"the locks of sessions {names}")
    return store_lock(index.path, [f"session-{n}" for n in names], what=what,
                      timeout=getattr(index, "lock_timeout", None), single_writer=True)


class Sessions:
    """The sessions and manifests tables of one store.

    A batch is committed by its manifest row: its draws are written to
    ``sessions`` first and its manifest to ``manifests`` last, each commit
    verified and undone on failure. Draw rows whose batch has no manifest (a
    process killed between the two commits) are ignored by every read and
    removed by the next draw of that session.

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

    A draw whose manifest never came (killed in between) is not a draw:

    >>> s._append(SESSIONS, s._rows("train", 1, ["p9"]))
    >>> s.drawn(["train"]), s.repair(["train"]), s.drawn(["train"], version=s.version())
    ([], 1, [])
    """

    def __init__(self, index):
        self.index = index

    def _table(self, name):
        """The committed table ``name``, or None (also for the debris of a
        creation that failed: a directory without a version)."""
        if name not in self.index.table_names():
            return None
        return self.index.db.open_table(name)

    def _tables_lock(self):
        """Every commit to the session tables is made under this lock, so that
        each can be verified and, on failure, undone (see
        :func:`persona_index.commits.verified_commit`)."""
        from .locks import store_lock

        return store_lock(self.index.path, "session-tables",
                          what=f"the session tables' lock of store {self.index.path!r}",
                          timeout=getattr(self.index, "lock_timeout", None),
                          single_writer=True)

    def _append(self, name, rows) -> None:
        """Append ``rows`` to table ``name`` (created with them when missing;
        the debris of a failed creation is removed first), verified."""
        from .commits import roll_back

        with self._tables_lock(), self.index.guard(name):
            t = self._table(name)
            if t is not None:
                t.add(rows)
                return
            if self.index.local:
                roll_back(f"{self.index.path.rstrip('/')}/{name}.lance", None)
            self.index.db.create_table(name, data=rows, schema=rows.schema)

    @staticmethod
    def _schemas():
        import pyarrow as pa

        draws = pa.schema([("session", pa.string()), ("id", pa.string()),
                           ("batch", pa.int64()), ("drawn_at", pa.string())])
        manifests = pa.schema([("session", pa.string()), ("batch", pa.int64()),
                               ("manifest", pa.string())])
        return draws, manifests

    def _rows(self, name, batch, ids):
        import pyarrow as pa

        draws, _ = self._schemas()
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return pa.table({"session": [name] * len(ids), "id": list(ids), "batch": [batch] * len(ids),
                         "drawn_at": [now] * len(ids)}, schema=draws)

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
        self._append(EXCLUSIONS, pa.table(
            {"a": [min(name, o) for o in new], "b": [max(name, o) for o in new]}, schema=schema))

    def version(self) -> int:
        t = self._table(SESSIONS)
        return int(t.version) if t is not None else 0

    def _committed(self, names) -> set:
        """(session, batch) of every batch of these sessions with a manifest."""
        t = self._table(MANIFESTS)
        if t is None:
            return set()
        where = f"session IN ({','.join(_quote(n) for n in names)})"
        tbl = t.to_lance().to_table(columns=["session", "batch"], filter=where)
        return set(zip(tbl.column("session").to_pylist(), tbl.column("batch").to_pylist()))

    def drawn(self, names, *, version: int | None = None) -> list[str]:
        """Ids drawn by these sessions' committed batches. At a ``version`` of
        the sessions table (a replay) every row of that version counts: a draw
        repairs its sessions (:meth:`repair`) before it reads the version it
        records."""
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
        tbl = ds.to_table(columns=["session", "id", "batch"], filter=where)
        if version is not None:
            t.checkout_latest()
        batches = tbl.column("batch").to_numpy()
        ids = tbl.column("id").to_pylist()
        keep = np.ones(len(ids), dtype=bool)
        if version is None:
            ok = self._committed(names)
            keep = np.fromiter(((s, int(b)) in ok for s, b in
                                zip(tbl.column("session").to_pylist(), batches)),
                               dtype=bool, count=len(ids))
        # order by batch, then stored order: the order they were drawn
        order = [i for i in np.argsort(batches, kind="stable") if keep[i]]
        return [ids[i] for i in order]

    def repair(self, names) -> int:
        """Remove the draw rows of these sessions that no manifest commits (a
        draw killed between its two commits); the caller holds their session
        locks. Returns how many rows went."""
        names = sorted(set(names))
        t = self._table(SESSIONS)
        if t is None or not names:
            return 0
        self.finish_deliveries(names)
        where = f"session IN ({','.join(_quote(n) for n in names)})"
        tbl = t.to_lance().to_table(columns=["session", "batch"], filter=where)
        ok = self._committed(names)
        bad = sorted({(s, b) for s, b in zip(tbl.column("session").to_pylist(),
                                             tbl.column("batch").to_pylist()) if (s, b) not in ok})
        if not bad:
            return 0
        n = sum(1 for s, b in zip(tbl.column("session").to_pylist(),
                                  tbl.column("batch").to_pylist()) if (s, b) in set(bad))
        cond = " OR ".join(f"(session = {_quote(s)} AND batch = {int(b)})" for s, b in bad)
        with self._tables_lock(), self.index.guard(SESSIONS):
            self._table(SESSIONS).delete(cond)
        return n

    def next_batch(self, name) -> int:
        batches = [b for _, b in self._committed([name])]
        return max(batches) + 1 if batches else 1

    def record(self, name, batch: int, ids, manifest: dict, delivery=()) -> None:
        """Commit one batch: its draws, then its manifest row (the commit
        point). A failure of either undoes both. ``delivery``: (temporary,
        final) paths of the batch's staged files, kept with the manifest so
        that :meth:`repair` can move them into place if the drawing process
        dies before it does."""
        import pyarrow as pa

        from .commits import fault_point

        _, manis = self._schemas()
        row = dict(manifest, _delivery=[list(p) for p in delivery]) if delivery else manifest
        with self._tables_lock(), self.index.guard(SESSIONS):
            self._append(SESSIONS, self._rows(name, batch, ids))
            fault_point("draw:draws-committed")
            self._append(MANIFESTS, pa.table({
                "session": [name], "batch": [batch], "manifest": [json.dumps(row)]},
                schema=manis))

    def list(self) -> list[dict]:
        t = self._table(SESSIONS)
        if t is None:
            return []
        tbl = t.to_lance().to_table(columns=["session", "batch", "drawn_at"])
        ok = self._committed(sorted(set(tbl.column("session").to_pylist()))) if tbl.num_rows else set()
        out: dict = {}
        for s, b, at in zip(*(tbl.column(c).to_pylist() for c in ("session", "batch", "drawn_at"))):
            if (s, b) not in ok:
                continue
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
        for m in ms:
            m.pop("_delivery", None)
        return sorted(ms, key=lambda m: m.get("batch", 0))

    def finish_deliveries(self, names) -> list[str]:
        """Move into place the staged files of committed batches whose drawing
        process died between its commit and its renames (roll forward); the
        caller holds the sessions' locks. Returns the paths delivered."""
        import os

        t = self._table(MANIFESTS)
        if t is None or not names:
            return []
        where = f"session IN ({','.join(_quote(n) for n in sorted(set(names)))})"
        tbl = t.to_lance().to_table(columns=["manifest"], filter=where)
        done = []
        for text in tbl.column("manifest").to_pylist():
            if "_delivery" not in text:
                continue
            m = json.loads(text)
            for tmp, final in m.get("_delivery") or []:
                if os.path.exists(tmp):
                    os.replace(tmp, final)
                    done.append(final)
                    warn(f"delivered {final} (session {m.get('session')!r} batch "
                         f"{m.get('batch')}: its drawing process stopped before moving it "
                         "into place)")
        return done

    def reset(self, name) -> int:
        """Forget a session's draws: its manifests go first (from then on its
        draws are not drawn), then its draw rows; a failure of either undoes
        both, so a reset changes nothing unless it finishes."""
        check_name(name)
        with session_lock(self.index, [name]):
            n = len(self.drawn([name]))
            self.finish_deliveries([name])
            cond = f"session = {_quote(name)}"
            with self._tables_lock(), self.index.guard(MANIFESTS), self.index.guard(SESSIONS):
                for tname in (MANIFESTS, SESSIONS):
                    t = self._table(tname)
                    if t is not None:
                        t.delete(cond)
                    if tname == MANIFESTS:
                        from .commits import fault_point

                        fault_point("reset:manifests-deleted")
        return n
