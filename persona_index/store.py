"""PersonaIndex: personas, their attributes and embeddings in a LanceDB table.

The store is a local directory (or any URI Lance opens) holding a table
``personas``: one row per persona, keyed by a content hash of its normalised
text. Exact similar/distant queries run as one numpy matrix product over the
vector column, which is loaded once per table version and kept warm (LanceDB's
own flat search measured slower on the same data: the store section of the
benchmark report has the ratio). Attribute filters are LanceDB SQL ``where`` clauses, evaluated
by Lance and applied to the product as a mask.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pyarrow is imported where it is used
    import pyarrow as pa

from .errors import (ConcurrencyError, EmbedderMismatchError, FormatVersionError,
                     InvalidFilterError, InvalidQueryError, StoreNotFoundError)

FORMAT_VERSION = 1
TABLE = "personas"
META_KEY = "persona_index"
ENV_DB = "PERSONA_INDEX_DB"
DEFAULT_DB = "personas.lance"
#: up to this many rows, query results come from a warm copy of the text and
#: attribute columns (about 150 bytes a persona)
ROWS_CACHE_MAX = 2_000_000
#: columns every store has; everything else is an attribute or a plain column
RESERVED = ("id", "text", "vector", "source", "source_line", "licence")


def resolve_db(path: str | os.PathLike | None) -> str:
    """``path`` if given, else ``$PERSONA_INDEX_DB``, else ``./personas.lance``."""
    if path is not None:
        return str(path)
    return os.environ.get(ENV_DB) or DEFAULT_DB


def _lancedb():
    from ._lazy import quiet_libraries

    quiet_libraries()
    import lancedb

    return lancedb


@dataclass
class Hit:
    """One query result."""

    id: str
    text: str
    similarity: float
    attributes: dict = field(default_factory=dict)
    source: str | None = None
    licence: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "similarity": round(self.similarity, 6),
                **self.attributes, "source": self.source, "licence": self.licence}


def _table_of(rows: list):
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def _pandas_of(rows: list):
    try:
        import pandas  # noqa: F401
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("to_pandas() needs pandas: pip install pandas") from None
    return _table_of(rows).to_pandas()


class Hits(list):
    """Query results: a list of :class:`Hit`, also as an Arrow table or a
    pandas frame (one row per hit: id, text, similarity, attributes, source,
    licence)."""

    def rows(self) -> list:
        return [h.to_dict() for h in self]

    def to_arrow(self):
        return _table_of(self.rows())

    def to_pandas(self):
        return _pandas_of(self.rows())


class _Matrix:
    """The vector column at one table version, warm in memory."""

    def __init__(self, version: int, ids, vectors: np.ndarray, addresses: np.ndarray):
        self.version = version
        self.ids = ids  # pyarrow StringArray, scan order
        self.vectors = vectors  # (n, d) float32, read-only view of Arrow memory
        order = np.argsort(addresses, kind="stable")
        self.sorted_addresses = addresses[order]
        self.order = order
        self._id_pos: dict | None = None

    @property
    def nbytes(self) -> int:
        return int(self.vectors.nbytes + self.ids.nbytes
                   + self.sorted_addresses.nbytes + self.order.nbytes)

    def positions_of_addresses(self, addresses: np.ndarray) -> np.ndarray:
        """Matrix positions of row addresses; addresses this version does not
        hold (rows committed by another process meanwhile) are left out."""
        if len(self.sorted_addresses) == 0:
            return np.zeros(0, dtype=np.int64)
        at = np.searchsorted(self.sorted_addresses, addresses)
        at_c = np.minimum(at, len(self.sorted_addresses) - 1)
        known = self.sorted_addresses[at_c] == addresses
        return self.order[at_c[known]]

    def position_of_id(self, pid: str) -> int | None:
        if self._id_pos is None:
            self._id_pos = {v: i for i, v in enumerate(self.ids.to_pylist())}
        return self._id_pos.get(pid)


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

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/demo.lance", HashEmbedder(dim=16))
    >>> idx.add([{"text": "a chemistry teacher in Kenya"}, {"text": "a welder in Chile"}])["added"]
    2
    >>> [h.text for h in idx.similar("a chemistry teacher in Kenya", k=1)]
    ['a chemistry teacher in Kenya']
    """

    def __init__(self, path=None, embedder=None, *, must_exist: bool = False,
                 version: int | None = None, single_writer: bool = False):
        self.path = resolve_db(path)
        self.single_writer = single_writer
        self.last_write_skipped = 0
        self.pinned_version = version
        self._db = None
        self._table = None
        self._matrix: _Matrix | None = None
        self._filters: OrderedDict = OrderedDict()
        self._attr_cache: dict = {}
        self._snap = None  # (version, dataset, schema) of the latest version seen
        self._hold = None  # a snapshot held for the length of one query
        self._rows = None  # (version, Arrow table of the non-vector columns)
        self._embedder = None
        self._query_embedder = None
        if isinstance(embedder, str):
            from .embed import get_embedder

            embedder = get_embedder(embedder)
        if must_exist and not self.exists:
            raise StoreNotFoundError(
                f"no persona store at {self.path!r} (create one with `persona-index ingest` "
                "or `persona-index generate`, or point --db / $PERSONA_INDEX_DB at one)")
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

    # -- connection ----------------------------------------------------------
    @property
    def db(self):
        if self._db is None:
            lancedb = _lancedb()
            # interval 0: every read sees other processes' commits
            self._db = lancedb.connect(self.path, read_consistency_interval=timedelta(0))
        return self._db

    @property
    def exists(self) -> bool:
        if self._table is not None:
            return True
        if "://" not in self.path:  # a local store: no lancedb import to find out
            return (Path(self._uri) / "_versions").is_dir()
        return TABLE in self._table_names()

    @property
    def _uri(self) -> str:
        """The Lance dataset of the persona table (LanceDB's layout: <db>/<table>.lance)."""
        return f"{self.path.rstrip('/')}/{TABLE}.lance"

    def table_names(self) -> list[str]:
        """The LanceDB tables in the store's directory (personas, sessions, ...)."""
        return self._table_names()

    def _table_names(self) -> list[str]:
        if "://" not in self.path:
            root = Path(self.path)
            return sorted(p.name[:-len(".lance")] for p in root.glob("*.lance")
                          if (p / "_versions").is_dir()) if root.is_dir() else []
        res = self.db.list_tables()
        return list(getattr(res, "tables", res))

    @property
    def table(self):
        if self._table is None:
            if not self.exists:
                raise StoreNotFoundError(f"no persona store at {self.path!r}")
            self._table = self.db.open_table(TABLE)
            if self.pinned_version is not None:
                try:
                    self._table.checkout(self.pinned_version)
                except Exception as exc:
                    raise InvalidQueryError(f"store {self.path!r} has no version "
                                            f"{self.pinned_version}: {str(exc).splitlines()[0]}") from None
        return self._table

    def _snapshot(self):
        """(version, dataset, schema) at the latest version, cached per version:
        one cheap version check per call instead of re-reading the schema."""
        if self._hold is not None:
            return self._hold
        if "://" not in self.path:
            # local stores are read with lance alone (lancedb's import costs about a
            # second of every command); a fresh open sees other processes' commits
            import lance

            if not self.exists:
                raise StoreNotFoundError(f"no persona store at {self.path!r}")
            try:
                ds = lance.dataset(self._uri, version=self.pinned_version)
            except Exception as exc:
                raise InvalidQueryError(f"store {self.path!r} has no version "
                                        f"{self.pinned_version}: {clean_error(exc)}") from None
            if self._snap is None or self._snap[0] != int(ds.version):
                self._snap = (int(ds.version), ds, ds.schema)
            return self._snap
        v = int(self.table.version)
        if self._snap is None or self._snap[0] != v:
            # version, data and schema from one dataset object: reading the
            # version first and the data after could pair them across a commit
            ds = self.table.to_lance()
            self._snap = (int(ds.version), ds, ds.schema)
        return self._snap

    @property
    def dataset(self):
        """The Lance dataset at the latest version (pylance)."""
        return self._snapshot()[1]

    @property
    def version(self) -> int:
        return self._snapshot()[0]

    @property
    def meta(self) -> dict:
        md = self._snapshot()[2].metadata or {}
        raw = md.get(META_KEY.encode())
        if raw is None:
            raise FormatVersionError(
                f"{self.path!r} holds a '{TABLE}' table that persona-index did not write "
                "(no format metadata)")
        return json.loads(raw)

    def _update_meta(self, **changes) -> None:
        meta = self.meta
        meta.update(changes)
        self.dataset.update_schema_metadata({META_KEY: json.dumps(meta)}, replace=False)
        self._table = None
        self._snap = None

    # -- embedder ------------------------------------------------------------
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
                import sys

                print(f"note: queries use sentence-transformers (no ONNX export: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]})", file=sys.stderr)
        return e if e is not None else self.embedder

    # -- schema --------------------------------------------------------------
    @property
    def attributes(self) -> list[str]:
        return list(self.meta.get("attributes", [])) if self.exists else []

    @property
    def columns(self) -> list[str]:
        return list(self._snapshot()[2].names) if self.exists else []

    def _create(self, first: "pa.Table", attributes: Sequence[str]) -> None:
        meta = {"format_version": FORMAT_VERSION, "model": self.embedder.name,
                "dim": int(self.embedder.dim), "attributes": list(attributes),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        schema = first.schema.with_metadata({META_KEY: json.dumps(meta)})
        self._table = self.db.create_table(TABLE, schema=schema)
        self._table.add(first.cast(schema))

    # -- writing -------------------------------------------------------------
    @contextlib.contextmanager
    def writer_lock(self):
        """The store-wide writer lock: held around every check-and-commit, so
        that a present id is never written again, whichever process writes.
        Writers wait for it (they do not fail fast).

        Object-storage stores have no shared file system to lock on: writing
        to one needs ``single_writer=True`` (the CLI's ``--single-writer``),
        the caller's promise that no other process writes at the same time.
        """
        if "://" in self.path:
            if not self.single_writer:
                raise ConcurrencyError(
                    f"{self.path!r} is on object storage, where persona-index cannot lock: "
                    "writes and session draws need --single-writer (single_writer=True), a "
                    "promise that no other process writes to this store meanwhile")
            yield
            return
        from filelock import FileLock

        lockdir = Path(self.path) / ".locks"
        lockdir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lockdir / "writer.lock")):
            self._table = None  # see what other processes committed
            self._snap = None
            yield

    def texts_of(self, ids: Sequence[str]) -> dict:
        """id -> text for the stored ones among ``ids`` (a filtered scan)."""
        if not self.exists or not len(ids):
            return {}
        import pyarrow as pa
        import pyarrow.compute as pc

        want = pa.array(sorted(set(ids)), pa.string())
        out = {}
        for b in self.dataset.to_batches(columns=["id", "text"]):
            m = pc.is_in(b.column(0), value_set=want)
            if pc.any(m).as_py():
                f = b.filter(m)
                out.update(zip(f.column(0).to_pylist(), f.column(1).to_pylist()))
        return out

    def present_ids(self, ids: Sequence[str]) -> set:
        """Which of ``ids`` are stored at the latest version (a scan of the id
        column; no warm matrix is built)."""
        if not self.exists or not len(ids):
            return set()
        import pyarrow as pa
        import pyarrow.compute as pc

        want = pa.array(list(ids), pa.string())
        found: set = set()
        for b in self.dataset.to_batches(columns=["id"]):
            col = b.column(0)
            found.update(col.filter(pc.is_in(col, value_set=want)).to_pylist())
        return found

    def write(self, batch, attributes: Sequence[str] = ()) -> int:
        """Append one Arrow table of complete rows; returns the table version.

        Under the writer lock, rows whose id is already stored (by this or any
        other process) are dropped first, so writes are idempotent by id. New
        columns are added to the schema (null for old rows); columns the batch
        lacks are null for its rows. The caller checks types beforehand
        (:func:`persona_index.ingest.check_against_store`)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        with self.writer_lock():
            if self.exists:
                have = self.present_ids(batch.column("id").to_pylist())
                if have:
                    batch = batch.filter(pc.invert(pc.is_in(batch.column("id"),
                                                            value_set=pa.array(sorted(have)))))
                self.last_write_skipped = len(have)
            else:
                self.last_write_skipped = 0
            if batch.num_rows == 0:
                return self.version if self.exists else 0
            if not self.exists:
                self._create(batch, attributes)
                return self.version
            tbl = self.table
            have = {f.name: f.type for f in tbl.schema}
            new = [f for f in batch.schema if f.name not in have]
            if new:
                tbl.add_columns({f.name: f"CAST(NULL AS {_sql_type(f.type)})" for f in new})
                self._table = None
                self._snap = None
                tbl = self.table
            missing_attrs = [a for a in attributes if a not in self.attributes]
            if missing_attrs:
                self._update_meta(attributes=self.attributes + missing_attrs)
                tbl = self.table
            schema = self._snapshot()[2]
            cols = []
            for f in schema:
                if f.name in batch.schema.names:
                    cols.append(batch.column(f.name).cast(f.type))
                else:
                    cols.append(pa.nulls(batch.num_rows, f.type))
            tbl.add(pa.Table.from_arrays(cols, schema=schema.remove_metadata()))
            self._table = None
            self._snap = None
            return self.version

    def set_columns(self, values, *, attributes: Sequence[str] = (), replace: bool = False,
                    expect_version: int | None = None) -> int:
        """Add (or with ``replace``, rewrite) columns keyed by ``id``: ``values``
        is an Arrow table with ``id`` and the new columns, one row per stored
        persona. Refuses to overwrite an existing column unless ``replace``,
        and refuses when the store moved past ``expect_version`` (new rows
        would be left untagged). Under the writer lock; returns the version.

        Lance has no single commit for rewriting a column and its schema
        metadata, so a replace is two or three commits (drop, merge, metadata)
        made under the writer lock: no other writer interleaves, but a reader
        may see an intermediate version."""
        with self.writer_lock():
            if expect_version is not None and self.version != expect_version:
                raise ConcurrencyError(
                    f"the store moved from version {expect_version} to {self.version} meanwhile; "
                    "run again to cover the new personas")
            cols = [c for c in values.schema.names if c != "id"]
            clash = [c for c in cols if c in self.columns]
            if clash and not replace:
                raise InvalidQueryError(
                    f"column(s) {clash} exist already; pass replace (--replace) to overwrite them")
            bad = [c for c in clash if c in RESERVED]
            if bad:
                raise InvalidQueryError(f"column(s) {bad} are the store's own and cannot be replaced")
            if clash:
                self.dataset.drop_columns(clash)
                self._snap = None
            self.dataset.merge(values, left_on="id", right_on="id")
            self._table = None
            self._snap = None
            missing = [a for a in attributes if a not in self.attributes]
            if missing:
                self._update_meta(attributes=self.attributes + missing)
            return self.version

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

        from .ingest import _as_str, persona_id

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
            cols[name] = pa.array([_as_str(extra[i].get(name)) for i in keep], pa.string())
        before = self.count() if self.exists else 0
        version = self.write(pa.table(cols), attributes=[a for a in attributes if a in names])
        added = self.count() - before
        return {"added": int(added), "skipped": len(texts) - int(added), "table_version": version}

    # -- reading -------------------------------------------------------------
    def count(self, where: str | None = None) -> int:
        if not self.exists:
            return 0
        if where is None:
            return int(self.dataset.count_rows())
        return int(len(self.positions(where)))

    def matrix(self) -> _Matrix:
        """ids and vectors at the latest version, loaded once and kept warm."""
        version = self.version
        if self._matrix is None or self._matrix.version != version:
            import pyarrow as pa

            ds = self.dataset
            dim = int(self.meta["dim"])
            n = ds.count_rows()
            # stream into one preallocated array: peak memory is the matrix plus
            # one batch, not two copies of the column
            vectors = np.empty((n, dim), dtype=np.float32)
            ids, addrs, at = [], [], 0
            for b in ds.to_batches(columns=["id", "vector"], with_row_address=True,
                                   batch_size=65536, batch_readahead=2, fragment_readahead=1):
                m = b.num_rows
                vectors[at:at + m] = b.column("vector").flatten().to_numpy(
                    zero_copy_only=False).reshape(m, dim)
                ids.append(b.column("id"))
                addrs.append(b.column("_rowaddr").to_numpy())
                at += m
            vectors = vectors[:at]
            vectors.flags.writeable = False
            id_arr = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
            self._matrix = _Matrix(version, id_arr, vectors,
                                   np.concatenate(addrs) if addrs else np.zeros(0, np.uint64))
            self._filters.clear()
        return self._matrix

    def attribute_columns(self, names: Sequence[str]) -> dict:
        """Whole attribute columns (object arrays, matrix order), cached per version."""
        m = self.matrix()
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise InvalidQueryError(f"unknown attribute(s) {missing}; the store has "
                                    f"{self.attributes}")
        need = [n for n in names if (m.version, n) not in self._attr_cache]
        if need:
            t = self.dataset.to_table(columns=need)
            for n in need:
                self._attr_cache[(m.version, n)] = np.asarray(t.column(n).to_pylist(), dtype=object)
        return {n: self._attr_cache[(m.version, n)] for n in names}

    def vectors(self, where: str | None = None):
        """``(ids, X)``: the ids (list of str) and the ``(n, d)`` float32 vectors
        of the personas matching ``where`` (all when None), in store order."""
        m = self.matrix()
        if where is None:
            return m.ids.to_pylist(), m.vectors
        pos = self.positions(where)
        return m.ids.take(pos).to_pylist(), m.vectors[pos]

    def positions(self, where: str) -> np.ndarray:
        """Positions (into :meth:`matrix`) of the rows matching a SQL ``where``.

        Results are cached per table version (a small LRU), so a repeated
        filter costs nothing after its first use."""
        m = self.matrix()
        key = where.strip()
        if key in self._filters:
            self._filters.move_to_end(key)
            return self._filters[key]
        if not key:
            raise InvalidFilterError("empty where clause")
        try:
            # in parentheses: DataFusion otherwise runs the longest valid prefix
            # of a clause and silently drops trailing garbage ("... AMD x = 1")
            t = self.dataset.to_table(columns=["id"], filter=f"({key})", with_row_address=True)
        except Exception as exc:  # lance raises ValueError/OSError with a long trace
            raise InvalidFilterError(f"bad where clause {where!r}: {clean_error(exc)}") from None
        pos = np.sort(m.positions_of_addresses(t.column("_rowaddr").to_numpy()))
        self._filters[key] = pos
        if len(self._filters) > 32:
            self._filters.popitem(last=False)
        return pos

    def take(self, positions: Sequence[int], columns: Sequence[str] | None = None):
        """Rows at matrix positions, as an Arrow table (in the order given).

        Without ``columns``: every column but the vector, served from a warm
        copy of those columns while the store has at most ``ROWS_CACHE_MAX``
        rows (a Lance take costs milliseconds, an Arrow take microseconds)."""
        pos = np.asarray(positions, dtype=np.int64)
        if columns is None:
            cols = [c for c in self.columns if c != "vector"]
            m = self.matrix()
            if len(m.vectors) <= ROWS_CACHE_MAX:
                if self._rows is None or self._rows[0] != m.version:
                    self._rows = (m.version, self.dataset.to_table(columns=cols).combine_chunks())
                return self._rows[1].take(pos)
        else:
            cols = list(columns)
        return self.dataset.take(pos, columns=cols)

    def get(self, ids: Sequence[str] | str) -> list[dict]:
        """The personas with these ids (unknown ids are left out), no vectors."""
        if isinstance(ids, str):
            ids = [ids]
        m = self.matrix()
        pos = [p for p in (m.position_of_id(i) for i in ids) if p is not None]
        if not pos:
            return []
        return self.take(pos).to_pylist()

    def has_ids(self, ids: Sequence[str]) -> np.ndarray:
        """Boolean mask: which of ``ids`` are stored."""
        if not self.exists or len(ids) == 0:
            return np.zeros(len(ids), dtype=bool)
        import pyarrow as pa
        import pyarrow.compute as pc

        return pc.is_in(pa.array(list(ids), pa.string()),
                        value_set=self.matrix().ids).to_numpy(zero_copy_only=False)

    # -- queries -------------------------------------------------------------
    def _query_vector(self, query, id, vector=None):
        if vector is not None:
            if query is not None or id is not None:
                raise InvalidQueryError("give one of a query text, an id or a vector")
            v = np.asarray(vector, dtype=np.float32).reshape(-1)
            if v.shape[0] != int(self.meta["dim"]):
                raise InvalidQueryError(f"query vector has dim {v.shape[0]}, the store {self.meta['dim']}")
            return v, None
        if (query is None) == (id is None):
            raise InvalidQueryError("give either a query text or an id, not both or neither")
        if id is not None:
            pos = self.matrix().position_of_id(id)
            if pos is None:
                raise InvalidQueryError(f"no persona with id {id!r} in {self.path!r}")
            return self.matrix().vectors[pos], pos
        if not isinstance(query, str) or not query.strip():
            raise InvalidQueryError(f"query text must be a non-empty string, got {query!r}")
        return self.embed_query([query])[0], None

    @contextlib.contextmanager
    def pinned(self):
        """Within the block every read (matrix, filters, rows, attributes,
        version) sees the one table version current at its start, whatever
        other processes commit meanwhile. Nested blocks keep the outer one."""
        if self._hold is not None:
            yield self
            return
        self._hold = self._snapshot()
        try:
            yield self
        finally:
            self._hold = None

    def _rank(self, query, id, k, where, sign, vector=None):
        if self._table is None and not self.exists:
            raise StoreNotFoundError(f"no persona store at {self.path!r}")
        with self.pinned():  # one version check for the whole query
            return self._rank_at(query, id, k, where, sign, vector)

    def _rank_at(self, query, id, k, where, sign, vector):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
        if self._table is None and not self.exists:
            raise StoreNotFoundError(f"no persona store at {self.path!r}")
        q, self_pos = self._query_vector(query, id, vector)
        m = self.matrix()
        sims = m.vectors @ q
        cand = self.positions(where) if where else None
        if self_pos is not None:
            cand = np.arange(len(sims)) if cand is None else cand
            cand = cand[cand != self_pos]
        scores = sims if cand is None else sims[cand]
        k_eff = min(int(k), len(scores))
        if k_eff == 0:
            return []
        key = -sign * scores
        top = np.argpartition(key, k_eff - 1)[:k_eff] if k_eff < len(key) else np.arange(len(key))
        top = top[np.lexsort((top, key[top]))]  # by score, ties by position
        pos = top if cand is None else cand[top]
        return self._hits(pos, sims[pos])

    def _hits(self, pos, sims) -> "Hits":
        rows = self.take(pos).to_pylist()
        attrs = self.attributes
        return Hits(Hit(id=r["id"], text=r["text"], similarity=float(s),
                    attributes={a: r.get(a) for a in attrs},
                    source=r.get("source"), licence=r.get("licence"))
                for r, s in zip(rows, sims))

    def similar(self, query: str | None = None, *, id: str | None = None, k: int = 10,
                where: str | None = None, vector=None) -> list[Hit]:
        """The ``k`` personas most similar (cosine) to a text, a stored persona
        (``id``) or a unit ``vector``.

        Exact. By ``id`` the persona itself is left out of its own results.
        ``where`` is a LanceDB SQL filter on the attribute columns.
        """
        return self._rank(query, id, k, where, +1, vector)

    def distant(self, query: str | None = None, *, id: str | None = None, k: int = 10,
                where: str | None = None, vector=None) -> list[Hit]:
        """The ``k`` personas least similar (cosine) to a text, id or vector."""
        return self._rank(query, id, k, where, -1, vector)

    # -- maintenance ---------------------------------------------------------
    def delete(self, *, ids: Sequence[str] | None = None, where: str | None = None) -> int:
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

    def iter_batches(self, columns: Sequence[str] | None = None, where: str | None = None,
                     batch_size: int = 8192):
        """Stream the store as Arrow record batches (bounded memory)."""
        yield from self.dataset.to_batches(columns=list(columns) if columns else None,
                                           filter=where, batch_size=batch_size)

    def export(self, out: str | os.PathLike, fmt: str | None = None, *,
               where: str | None = None, vectors: bool = False) -> int:
        """Write the store (or the rows matching ``where``) to jsonl or parquet.

        The format comes from ``fmt`` or the file's suffix. Returns the row count.
        """
        import pyarrow.parquet as pq

        out = str(out)
        fmt = fmt or ("parquet" if out.endswith(".parquet") else "jsonl")
        if fmt not in ("jsonl", "parquet"):
            raise InvalidQueryError(f"unknown export format {fmt!r}: use jsonl or parquet")
        cols = [c for c in self.columns if vectors or c != "vector"]
        n = 0
        tmp = out + ".partial"
        try:
            if fmt == "parquet":
                writer = None
                for b in self.iter_batches(cols, where):
                    writer = writer or pq.ParquetWriter(tmp, b.schema)
                    writer.write_batch(b)
                    n += b.num_rows
                if writer is None:

                    pq.write_table(self.dataset.schema.empty_table().select(cols), tmp)
                else:
                    writer.close()
            else:
                with open(tmp, "w", encoding="utf-8") as fh:
                    for b in self.iter_batches(cols, where):
                        for row in b.to_pylist():
                            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                        n += b.num_rows
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return n

    def create_ann_index(self, index_type: str = "IVF_HNSW_SQ", **kwargs) -> None:
        """Build an optional ANN index (used only by ``similar_approx``)."""
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
        """Count, model, dim, attributes, table version, format and index state."""
        if not self.exists:
            raise StoreNotFoundError(f"no persona store at {self.path!r}")
        meta = self.meta
        try:
            indices = [{"name": getattr(i, "name", None),
                        "type": getattr(i, "index_type", None) or getattr(i, "type", None),
                        "columns": list(getattr(i, "field_names", None)
                                        or getattr(i, "columns", None) or [])}
                       for i in self.dataset.describe_indices()]
        except Exception:  # pragma: no cover - another pylance
            indices = []
        n = self.count()
        return {
            "path": self.path,
            "format_version": meta.get("format_version"),
            "count": n,
            "model": meta.get("model"),
            "dim": meta.get("dim"),
            "attributes": meta.get("attributes", []),
            "columns": self.columns,
            "table_version": self.version,
            "indices": indices,
            "exact_search": "numpy matrix product over the warm vector column",
            "warm_index_bytes": n * (int(meta.get("dim", 0)) * 4 + 8 + 8 + 4 + 32)
                                + (n * 150 if n <= ROWS_CACHE_MAX else 0),
            "created": meta.get("created"),
        }


def clean_error(exc) -> str:
    """The first line of a Lance/DataFusion error, without the Rust source
    paths of the build that raised it."""
    import re

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r",?\s*(?:at\s+)?/[\w./-]+\.rs(?::\d+)*(?::\d+)?", "", msg)
    msg = re.sub(r"\s+", " ", msg).strip()
    return msg[:300]


def _sql_type(t) -> str:
    import pyarrow as pa

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "STRING"
