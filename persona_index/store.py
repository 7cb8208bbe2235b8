"""PersonaIndex: a small handle on a persona store in a LanceDB directory.

The store is a local directory (or any URI Lance opens) holding a table
``personas``: one row per persona, keyed by a content hash of its normalised
text. The handle opens or creates the store, writes (:meth:`PersonaIndex.add`,
:meth:`~PersonaIndex.write`, :meth:`~PersonaIndex.set_columns`,
:meth:`~PersonaIndex.delete`), and hands out :class:`~persona_index.snapshot.Snapshot`
objects, one immutable read view per table version, through which every read
goes. Exact similar/distant queries are one numpy matrix product over a
snapshot's warm vector column (LanceDB's own flat search measured slower on
the same data: the store section of the benchmark report has the ratio).
Attribute filters are LanceDB SQL ``where`` clauses, evaluated by Lance.

Every write holds a store-wide writer lock around check-and-commit, so that
writes are idempotent by id also under concurrent processes, and a write
that adds columns or attributes commits them together with its rows (one
Lance commit).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pyarrow is imported where it is used
    import pyarrow as pa

# the lock helper and the verified commits live in their own modules; their
# names stay importable from here
from .commits import (check_version, commit_with_schema, fault_point, latest_version,
                      merge_columns, roll_back, verified_commit)
from .errors import (BrokenStoreError, ConcurrencyError, EmbedderMismatchError,
                     FormatVersionError, InvalidQueryError, StoreNotFoundError, clean_error, warn)
from .locks import LOCK_NOTE_S, store_lock
from .snapshot import META_KEY, ROWS_CACHE_MAX, Hit, Hits, Snapshot, read_meta
from .text import RESERVED, as_text, assign_columns, persona_id

__all__ = ["PersonaIndex", "Snapshot", "Hit", "Hits", "Written", "resolve_db", "clean_error",
           "store_lock", "verified_commit", "fault_point", "latest_version", "roll_back",
           "check_version", "LOCK_NOTE_S"]

FORMAT_VERSION = 1
TABLE = "personas"
ENV_DB = "PERSONA_INDEX_DB"
DEFAULT_DB = "personas.lance"
#: a store directory holding this file is a reembed copy still being built
REEMBED_MARKER = ".reembed-incomplete.json"
#: hidden columns of a column replace in progress (see PersonaIndex.set_columns)
from .snapshot import TMP_NEW, TMP_OLD, TMP_PREFIX  # noqa: E402


def resolve_db(path: str | os.PathLike | None) -> str:
    """``path`` if given, else ``$PERSONA_INDEX_DB``, else ``./personas.lance``.

    >>> resolve_db("x.lance")
    'x.lance'
    """
    if path is not None:
        return str(path)
    return os.environ.get(ENV_DB) or DEFAULT_DB


def _lancedb():
    from ._lazy import quiet_libraries

    quiet_libraries()
    import lancedb

    return lancedb


@dataclass(frozen=True)
class Written:
    """What one :meth:`PersonaIndex.write` did: rows added, rows skipped
    because their id was stored already, and the table version after.

    >>> Written(added=3, skipped=1, table_version=2).added
    3
    """

    added: int
    skipped: int
    table_version: int


class PersonaIndex:
    """A persona store in a LanceDB directory.

    Parameters
    ----------
    path : str or Path, optional
        The store's directory (``$PERSONA_INDEX_DB`` or ``./personas.lance`` when
        omitted). It is created on the first write, not before, so a failed
        first ingest leaves nothing behind.
    embedder : Embedder or str, optional
        The embedder to use; a str is a model name for
        :func:`persona_index.embed.get_embedder`. When omitted, the store's
        recorded model (or the default MiniLM for a new store) is loaded on
        first use. A store built with another model raises
        :class:`EmbedderMismatchError`.
    must_exist : bool
        Raise :class:`StoreNotFoundError` if the store has no persona table yet.
    version : int, optional
        Read this table version instead of the latest (a manifest's replay).
    single_writer : bool
        On object storage (no file locks): the caller's promise that no other
        process writes meanwhile; needed there for writes and session draws.
    lock_timeout : float, optional
        Seconds a write or a session draw waits for its lock before it gives
        up with :class:`~persona_index.errors.LockTimeoutError` (default:
        wait; after 2 s a waiter says once on stderr what it waits for).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/demo.lance", HashEmbedder(dim=16))
    >>> idx.add([{"text": "a chemistry teacher in Kenya"}, {"text": "a welder in Chile"}])["added"]
    2
    >>> [h.text for h in idx.similar("a chemistry teacher in Kenya", k=1)]
    ['a chemistry teacher in Kenya']
    >>> idx.info()["count"], idx.snapshot().version == idx.info()["table_version"]
    (2, True)
    """

    def __init__(self, path=None, embedder=None, *, must_exist: bool = False,
                 version: int | None = None, single_writer: bool = False,
                 lock_timeout: float | None = None, _partial_ok: bool = False):
        self.path = resolve_db(path)
        self.single_writer = single_writer
        self.lock_timeout = lock_timeout
        self.pinned_version = version
        self._db = None
        self._current: Snapshot | None = None  # the latest snapshot handed out
        self._embedder = None
        self._query_embedder = None
        if isinstance(embedder, str):
            from .embed import get_embedder

            embedder = get_embedder(embedder)
        self._check_layout(_partial_ok)
        if must_exist and not self.exists:
            raise StoreNotFoundError(
                f"no persona store at {self.path!r} (create one by ingesting or generating "
                "personas, or point path=... at one)")
        if self.exists:
            meta = self.meta
            fv = meta.get("format_version")
            if fv != FORMAT_VERSION:
                raise FormatVersionError(
                    f"store {self.path!r} has format version {fv!r}; this persona-index "
                    f"reads format version {FORMAT_VERSION}")
            if embedder is not None:
                self._check_embedder(embedder, meta)
        self._embedder = embedder

    # -- opening ---------------------------------------------------------------
    def _check_layout(self, partial_ok: bool = False) -> None:
        """Refuse a local path that is not a store and cannot become one: the
        store path or its ``personas.lance`` a file, or a ``personas.lance``
        directory without a committed version (debris of a failed first
        write; removed under the writer lock by the next write)."""
        if not self.local:
            return
        root, table = Path(self.path), Path(self._uri)
        if root.exists() and not root.is_dir():
            raise BrokenStoreError(f"store {self.path!r} is a file, not a store directory")
        if not partial_ok and (root / REEMBED_MARKER).exists():
            raise BrokenStoreError(f"{self.path!r} is an unfinished reembed copy, not a store: "
                                   "run the reembed again to resume it")
        if table.exists() and not table.is_dir():
            raise BrokenStoreError(f"store {self.path!r}: {table} is a file, not a Lance table "
                                   "(move it away, or point path=... elsewhere)")

    def _reset_view(self) -> None:
        """Forget the cached snapshot (a rolled-back version may be re-used)."""
        self._current = None

    def guard(self, table: str = TABLE):
        """A :func:`verified_commit` block for one of the store's tables."""
        return verified_commit(self.path, f"{self.path.rstrip('/')}/{table}.lance", table,
                               on_undo=self._reset_view)

    @property
    def db(self):
        if self._db is None:
            lancedb = _lancedb()
            # interval 0: every read sees other processes' commits
            self._db = lancedb.connect(self.path, read_consistency_interval=timedelta(0))
        return self._db

    @property
    def local(self) -> bool:
        return "://" not in self.path

    @property
    def exists(self) -> bool:
        if self.local:  # no lancedb import to find out
            return latest_version(self._uri) is not None
        return TABLE in self.table_names()

    @property
    def _uri(self) -> str:
        """The Lance dataset of the persona table (LanceDB's layout: <db>/<table>.lance)."""
        return f"{self.path.rstrip('/')}/{TABLE}.lance"

    def table_names(self) -> list[str]:
        """The LanceDB tables in the store's directory (personas, sessions, ...)."""
        if self.local:
            root = Path(self.path)
            return sorted(p.name[:-len(".lance")] for p in root.glob("*.lance")
                          if latest_version(str(p)) is not None) if root.is_dir() else []
        res = self.db.list_tables()
        return list(getattr(res, "tables", res))

    @property
    def table(self):
        """The LanceDB table at the latest version (for writes and ANN search)."""
        if not self.exists:
            raise StoreNotFoundError(f"no persona store at {self.path!r}")
        return self.db.open_table(TABLE)

    def _dataset(self):
        """A pylance dataset at the pinned or the latest version."""
        if not self.exists:
            raise StoreNotFoundError(f"no persona store at {self.path!r}")
        try:
            if self.local:  # read with lance alone: lancedb's import costs a second
                import lance

                return lance.dataset(self._uri, version=self.pinned_version)
            tbl = self.table
            if self.pinned_version is not None:
                tbl.checkout(self.pinned_version)
            return tbl.to_lance()
        except StoreNotFoundError:
            raise
        except Exception as exc:
            if self.pinned_version is None:
                raise
            raise InvalidQueryError(f"store {self.path!r} has no version "
                                    f"{self.pinned_version}: {clean_error(exc)}") from None

    def snapshot(self) -> Snapshot:
        """The read view of the latest table version (or the pinned one): the
        same object while the version stays, so what it loaded stays warm.
        Hold on to it to read one version across several calls."""
        ds = self._dataset()
        if self._current is None or self._current.version != int(ds.version):
            self._current = Snapshot(ds, self.path)
        return self._current

    # -- what the latest version holds ----------------------------------------
    @property
    def version(self) -> int:
        return self.snapshot().version

    @property
    def meta(self) -> dict:
        return self.snapshot().meta

    @property
    def attributes(self) -> list[str]:
        return self.snapshot().attributes if self.exists else []

    @property
    def columns(self) -> list[str]:
        return self.snapshot().columns if self.exists else []

    def count(self, where: str | None = None) -> int:
        return self.snapshot().count(where) if self.exists else 0

    # -- embedder ----------------------------------------------------------------
    @staticmethod
    def _check_embedder(embedder, meta) -> None:
        if embedder.name != meta.get("model"):
            raise EmbedderMismatchError(
                f"store was built with model {meta.get('model')!r} (dim {meta.get('dim')}); "
                f"refusing to mix in {embedder.name!r}: use that model, or `reembed` a copy")
        if embedder.dim != meta.get("dim"):
            raise EmbedderMismatchError(
                f"store vectors have dim {meta.get('dim')}, embedder {embedder.name!r} gives "
                f"{embedder.dim}")

    @property
    def embedder(self):
        if self._embedder is None:
            from .embed import get_embedder

            model = self.meta.get("model") if self.exists else None
            self._embedder = get_embedder(model)
        return self._embedder

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.embedder.encode(list(texts), progress=progress)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a few query texts without torch where possible: the store's
        model exported to ONNX (:mod:`persona_index.onnx_embed`; cosine 1.0 to
        the sentence-transformers vectors on the shared personas), exported
        on first use when torch is installed; else the store's embedder."""
        if self._query_embedder is None:
            self._query_embedder = self._make_query_embedder()
        return self._query_embedder.encode(list(texts))

    def _make_query_embedder(self):
        if self._embedder is not None and not hasattr(self._embedder, "_source"):
            return self._embedder  # a custom embedder object: use it as given
        from . import onnx_embed

        model = self.meta.get("model") if self.exists else None
        dim = int(self.meta.get("dim", 0)) if self.exists else 0
        if onnx_embed.model_folder(model) is None or \
                os.environ.get("PERSONA_INDEX_QUERY_EMBEDDER") == "sentence-transformers":
            return self.embedder
        e = onnx_embed.OnnxEmbedder.cached(model, model, dim)
        if e is None:
            try:
                onnx_embed.export(model)
                e = onnx_embed.OnnxEmbedder.cached(model, model, dim)
            except Exception as exc:  # no torch, no onnxruntime, an export failure
                warn(f"queries use sentence-transformers (no ONNX export: "
                     f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        return e if e is not None else self.embedder

    # -- writing -----------------------------------------------------------------
    def writer_lock(self):
        """The store-wide writer lock (:func:`store_lock`): held around every
        check-and-commit, so that a present id is never written again,
        whichever process writes. Writers wait for it (after 2 s they say so
        on stderr), up to ``lock_timeout`` seconds when one was given.

        Object-storage stores have no shared file system to lock on: writing
        to one needs ``single_writer=True`` (the CLI's ``--single-writer``),
        the caller's promise that no other process writes at the same time.
        """
        return store_lock(self.path, "writer", what=f"the writer lock of store {self.path!r}",
                          timeout=self.lock_timeout, single_writer=self.single_writer)

    def write(self, batch, attributes: Sequence[str] = (), fields: dict | None = None) -> Written:
        """Append one Arrow table of complete rows (``id``, ``text``,
        ``vector`` and any other columns).

        ``fields``: ``{column: source field name}`` for the batch's columns
        that hold a source field, named as planned. Under the lock they are
        renamed to the columns the store's field mapping gives (see
        :func:`persona_index.text.assign_columns`), and new fields are added
        to the mapping (metadata ``fields``) in the commit of the rows: a
        concurrent writer that planned the same column for another field
        gets the next free one.

        Under the writer lock, rows whose id is already stored (by this or any
        other process) are dropped first, so writes are idempotent by id. New
        columns are added to the schema (null for old rows) and new
        ``attributes`` registered in the same commit as the rows; columns the
        batch lacks are null for its rows. The caller checks types beforehand
        (:func:`persona_index.ingest.check_against_store`)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        _, first = np.unique(np.asarray(batch.column("id").to_pylist(), dtype=object),
                             return_index=True)
        repeats = batch.num_rows - len(first)
        if repeats:  # an id twice within the batch: the first row counts
            batch = batch.take(pa.array(np.sort(first)))
        with self.writer_lock(), self.guard():
            if not self.exists:
                if batch.num_rows == 0:
                    return Written(0, repeats, 0)
                if Path(self._uri).exists() and self.local:  # debris of a failed first write
                    roll_back(self._uri, None)
                batch, attributes, mapping = _map_fields(batch, attributes, fields, None, ())
                self._create(batch, attributes, mapping)
                return Written(batch.num_rows, repeats, self.version)
            snap = self.snapshot()  # the latest version: nobody else commits under the lock
            have = snap.present_ids(batch.column("id").to_pylist())
            if have:
                batch = batch.filter(pc.invert(pc.is_in(batch.column("id"),
                                                        value_set=pa.array(sorted(have)))))
            if batch.num_rows == 0:
                return Written(0, len(have) + repeats, snap.version)
            batch, attributes, mapping = _map_fields(batch, attributes, fields,
                                                     snap.meta.get("fields"), snap.columns)
            known = set(snap.columns)
            new = [pa.field(f.name, f.type) for f in batch.schema if f.name not in known]
            meta = dict(snap.meta)
            if mapping is not None:
                meta["fields"] = mapping
            meta["attributes"] = snap.attributes + [a for a in attributes
                                                    if a not in snap.attributes]
            schema = pa.schema(list(snap.schema.remove_metadata()) + new)
            cols = [batch.column(f.name).cast(f.type) if f.name in batch.schema.names
                    else pa.nulls(batch.num_rows, f.type) for f in schema]
            rows = pa.Table.from_arrays(cols, schema=schema)
            if new or meta != snap.meta:
                self._commit_with_schema(snap, rows, schema.with_metadata(
                    {META_KEY: json.dumps(meta)}))
            else:
                self.table.add(rows)
            return Written(batch.num_rows, len(have) + repeats, self.version)

    def _commit_with_schema(self, snap: Snapshot, rows, schema) -> None:
        """See :func:`persona_index.commits.commit_with_schema`."""
        commit_with_schema(self, snap, rows, schema)

    def _create(self, first: "pa.Table", attributes: Sequence[str], fields: dict | None = None) -> None:
        meta = {"format_version": FORMAT_VERSION, "model": self.embedder.name,
                "dim": int(self.embedder.dim), "attributes": list(attributes),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if fields is not None:
            meta["fields"] = fields
        schema = first.schema.with_metadata({META_KEY: json.dumps(meta)})
        # created with its rows in one step: a reader never sees an empty table
        self.db.create_table(TABLE, data=first.cast(schema), schema=schema)

    def set_columns(self, values, *, attributes: Sequence[str] = (), replace: bool = False,
                    expect_version: int | None = None) -> int:
        """Add (or with ``replace``, rewrite) columns keyed by ``id``: ``values``
        is an Arrow table with ``id`` and the new columns, one row per stored
        persona. Refuses to overwrite an existing column unless ``replace``,
        and refuses when the store moved past ``expect_version`` (new rows
        would be left untagged). Under the writer lock; returns the version.

        A new column and its attribute registration are one commit. A
        replace never shows a reader an attribute without its column: the new
        values are merged under temporary names (``_pi_new_NAME``), then one
        commit swaps the names (the old column becomes ``_pi_old_NAME``, the
        new one ``NAME``), then the old column is dropped. Every commit is
        verified and, on any failure, all of them are undone; a process killed
        in between leaves hidden ``_pi_`` columns that the next
        ``set_columns`` removes first."""
        with self.writer_lock(), self.guard():
            snap = self.snapshot()
            if expect_version is not None and snap.version != expect_version:
                raise ConcurrencyError(
                    f"the store moved from version {expect_version} to {snap.version} meanwhile; "
                    "run again to cover the new personas")
            if self._drop_leftovers():  # the personas are the same: no new check needed
                snap = self.snapshot()
            cols = [c for c in values.schema.names if c != "id"]
            clash = [c for c in cols if c in snap.columns]
            if clash and not replace:
                raise InvalidQueryError(
                    f"column(s) {clash} exist already; pass replace=True to overwrite them")
            bad = [c for c in clash if c in RESERVED]
            if bad:
                raise InvalidQueryError(f"column(s) {bad} are the store's own and cannot be replaced")
            meta = dict(snap.meta, attributes=snap.attributes
                        + [a for a in attributes if a not in snap.attributes])
            if not clash:
                self._merge_columns(snap, values, meta)
                return self.version
            staged = values.rename_columns([c if c == "id" else TMP_NEW + c
                                            for c in values.schema.names])
            self._merge_columns(snap, staged, meta)
            fault_point("tag:merged")
            self._dataset().alter_columns(
                *[{"path": c, "name": TMP_OLD + c} for c in clash],
                *[{"path": TMP_NEW + c, "name": c} for c in cols])
            fault_point("tag:swapped")
            self._dataset().drop_columns([TMP_OLD + c for c in clash])
            return self.version

    def _drop_leftovers(self) -> None:
        """Remove the hidden columns of a replace that was killed midway."""
        if not self.exists:
            return False
        names = [c for c in self._dataset().schema.names if c.startswith(TMP_PREFIX)]
        if names:
            self._dataset().drop_columns(names)
        return bool(names)

    def _merge_columns(self, snap: Snapshot, values, meta: dict) -> None:
        """See :func:`persona_index.commits.merge_columns`."""
        merge_columns(self, snap, values, meta)

    def add(self, records: Sequence[dict], *, vectors: np.ndarray | None = None,
            attributes: Sequence[str] = (), source: str = "python", licence: str | None = None) -> dict:
        """Add personas: each record has ``text`` (or ``persona``) and any other
        fields (stored as plain string columns, or attributes when named in
        ``attributes``). ``vectors``, one unit row per record, skips the
        embedder (they must come from the store's model). Idempotent by id:
        personas already stored are skipped, also under concurrent writers.
        No near-duplicate check (that is :func:`persona_index.ingest.ingest_records`).

        Returns ``{"added": n, "skipped": n, "table_version": v}``.

        Examples
        --------
        >>> import tempfile, numpy as np
        >>> from persona_index.embed import HashEmbedder
        >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=8))
        >>> v = np.eye(8, dtype=np.float32)[:2]
        >>> idx.add([{"text": "a nurse in Kenya", "region": "Africa"},
        ...          {"text": "a welder in Chile", "region": "South America"}],
        ...         vectors=v, attributes=["region"])["added"]
        2
        >>> idx.add([{"text": "A nurse in  Kenya"}], vectors=v[:1])["added"]  # same id
        0
        """
        import pyarrow as pa

        texts, extra, seen = [], [], {}
        for i, r in enumerate(records):
            t = r.get("text", r.get("persona"))
            if not isinstance(t, str) or not t.strip():
                raise InvalidQueryError(f"record {i}: no text (a 'text' or 'persona' string)")
            texts.append(t.strip())
            extra.append({k: v for k, v in r.items() if k not in ("text", "persona", "vector")})
        ids = [persona_id(t) for t in texts]
        keep = [i for i, pid in enumerate(ids) if seen.setdefault(pid, i) == i]
        if vectors is None:
            vectors = self.embed([texts[i] for i in keep])
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise InvalidQueryError(f"vectors has shape {vectors.shape}; want ({len(texts)}, dim)")
            vectors = vectors[keep]
        dim = vectors.shape[1]
        if self.exists and dim != self.meta.get("dim"):
            raise EmbedderMismatchError(f"vectors have dim {dim}, the store {self.meta.get('dim')}")
        cols = {"id": pa.array([ids[i] for i in keep], pa.string()),
                "text": pa.array([texts[i] for i in keep], pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(
                    pa.array(np.ascontiguousarray(vectors).reshape(-1), pa.float32()), dim),
                "source": pa.array([source] * len(keep), pa.string()),
                "source_line": pa.array([i + 1 for i in keep], pa.int64()),
                "licence": pa.array([licence] * len(keep), pa.string())}
        names = sorted({k for e in extra for k in e})
        for name in names:
            cols[name] = pa.array([as_text(extra[i].get(name)) for i in keep], pa.string())
        w = self.write(pa.table(cols), attributes=[a for a in attributes if a in names])
        return {"added": w.added, "skipped": len(texts) - w.added, "table_version": w.table_version}

    def delete(self, *, ids: Sequence[str] | None = None, where: str | None = None) -> int:
        """Delete personas by id or by a where clause; returns how many went."""
        with self.writer_lock(), self.guard():
            before = self.count()
            if ids is not None:
                if len(ids) == 0:
                    return 0
                quoted = ",".join("'" + i.replace("'", "''") + "'" for i in ids)
                self.table.delete(f"id IN ({quoted})")
            elif where is not None:
                self.table.delete(where)
            else:
                raise InvalidQueryError("delete needs ids or a where clause")
            return before - self.count()

    # -- reading (each call reads one snapshot) ------------------------------
    def similar(self, query: str | None = None, *, id: str | None = None, k: int = 10,
                where: str | None = None, vector=None, device: str = "auto") -> Hits:
        """The ``k`` personas most similar (cosine) to a text, a stored persona
        (``id``) or a unit ``vector``.

        Exact. By ``id`` the persona itself is left out of its own results.
        ``where`` is a LanceDB SQL filter on the attribute columns. ``device``
        runs the ranking in numpy or torch (see :mod:`persona_index.kernels`).
        """
        return self._query(query, id, vector, k, where, +1, device)

    def distant(self, query: str | None = None, *, id: str | None = None, k: int = 10,
                where: str | None = None, vector=None, device: str = "auto") -> Hits:
        """The ``k`` personas least similar (cosine) to a text, id or vector."""
        return self._query(query, id, vector, k, where, -1, device)

    def _query(self, query, id, vector, k, where, sign, device="auto") -> Hits:
        given = sum(x is not None for x in (query, id, vector))
        if given != 1:
            raise InvalidQueryError("give one of a query text, an id or a vector")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
        snap = self.snapshot()
        if query is not None:
            if not isinstance(query, str) or not query.strip():
                raise InvalidQueryError(f"query text must be a non-empty string, got {query!r}")
            vector = self.embed_query([query])[0]
        return snap.query(id, vector, k, where, sign, device=device)

    def get(self, ids: Sequence[str] | str) -> list[dict]:
        """The personas with these ids (unknown ids are left out), no vectors."""
        return self.snapshot().get(ids)

    def vectors(self, where: str | None = None):
        """``(ids, X)``: the ids and ``(n, d)`` float32 vectors of the personas
        matching ``where`` (all when None), in store order."""
        return self.snapshot().vectors_of(where)

    def export(self, out: str | os.PathLike, fmt: str | None = None, *,
               where: str | None = None, vectors: bool = False) -> int:
        """Write the latest version (or its rows matching ``where``) to jsonl or
        parquet; see :meth:`Snapshot.export`."""
        return self.snapshot().export(out, fmt, where=where, vectors=vectors)

    def create_ann_index(self, index_type: str = "IVF_HNSW_SQ", **kwargs) -> None:
        """Build an optional ANN index (used only by ``similar_approx``); a
        commit like any other, under the writer lock and verified."""
        with self.writer_lock(), self.guard():
            self._create_ann_index(index_type, **kwargs)

    def _create_ann_index(self, index_type: str, **kwargs) -> None:
        self.table.create_index(metric="cosine", vector_column_name="vector",
                                index_type=index_type, **kwargs)

    def similar_approx(self, query: str, k: int = 10, where: str | None = None,
                       **search_kwargs) -> list[Hit]:
        """Approximate nearest neighbours through LanceDB's ANN index.

        Never used implicitly: exact :meth:`similar` is the default. Recall is
        measured in benchmarks/ on real persona embeddings."""
        q = self.embed([query])[0]
        s = self.table.search(q, vector_column_name="vector").metric("cosine").limit(k)
        if where:
            s = s.where(where, prefilter=True)
        for name, val in search_kwargs.items():
            s = getattr(s, name)(val)
        rows = s.to_list()
        attrs = self.attributes
        return [Hit(id=r["id"], text=r["text"], similarity=1.0 - float(r["_distance"]),
                    attributes={a: r.get(a) for a in attrs}, source=r.get("source"),
                    licence=r.get("licence")) for r in rows]

    def info(self) -> dict:
        """Count, model, dim, attributes, table version, format and index state,
        all from one snapshot."""
        snap = self.snapshot()
        meta = snap.meta
        try:
            indices = [{"name": getattr(i, "name", None),
                        "type": getattr(i, "index_type", None) or getattr(i, "type", None),
                        "columns": list(getattr(i, "field_names", None)
                                        or getattr(i, "columns", None) or [])}
                       for i in snap.dataset.describe_indices()]
        except Exception:  # pragma: no cover - another pylance
            indices = []
        n = snap.count()
        return {
            "path": self.path,
            "format_version": meta.get("format_version"),
            "count": n,
            "model": meta.get("model"),
            "dim": meta.get("dim"),
            "attributes": meta.get("attributes", []),
            "columns": snap.columns,
            # source field name -> column, in first-seen order; a store
            # written before mappings were stored: {} (its columns read as identity)
            "fields": meta.get("fields", {}),
            "table_version": snap.version,
            "indices": indices,
            "exact_search": "numpy matrix product over the warm vector column",
            "warm_index_bytes": n * (int(meta.get("dim", 0)) * 4 + 8 + 8 + 4 + 32)
                                + (n * 150 if n <= ROWS_CACHE_MAX else 0),
            "created": meta.get("created"),
        }


def _map_fields(batch, attributes, fields: dict | None, mapping: dict | None, columns):
    """``batch`` and ``attributes`` with planned columns renamed as the
    store's field mapping says, and the mapping grown by the batch's new
    fields (None: no fields given and no mapping stored)."""
    if not fields:
        return batch, attributes, mapping
    chosen, grown = assign_columns(list(fields.values()), mapping, columns)
    rename = {col: chosen[src] for col, src in fields.items()}
    if any(a != b for a, b in rename.items()):
        batch = batch.rename_columns([rename.get(n, n) for n in batch.schema.names])
        attributes = [rename.get(a, a) for a in attributes]
    return batch, attributes, grown
