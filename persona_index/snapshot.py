"""Snapshot: one immutable read view of the persona table at one Lance version.

Every read (similar/distant, a draw, coverage, the ingest dedup index,
tagging, export) takes a snapshot and reads only through it, so the matrix,
a filter's positions, the attribute columns and the version a manifest
records all come from one table version, whatever other processes commit
meanwhile. Because a snapshot never changes, what it loads (the warm vector
matrix, filter positions, attribute columns, rows) is simply kept on it: no
cache needs invalidating. :meth:`PersonaIndex.snapshot
<persona_index.store.PersonaIndex.snapshot>` hands out the one for the latest
version (the same object while the version stays).

Examples
--------
>>> import tempfile
>>> import numpy as np
>>> from persona_index import PersonaIndex
>>> from persona_index.embed import HashEmbedder
>>> idx = PersonaIndex(tempfile.mkdtemp() + "/s.lance", HashEmbedder(dim=8))
>>> _ = idx.add([{"text": "a nurse", "region": "Africa"}, {"text": "a welder", "region": "Asia"}],
...             vectors=np.eye(8, dtype=np.float32)[:2], attributes=["region"])
>>> snap = idx.snapshot()
>>> _ = idx.add([{"text": "a judge", "region": "Asia"}], vectors=np.eye(8, dtype=np.float32)[2:3])
>>> snap.count(), idx.snapshot().count()  # the old view does not move
(2, 3)
>>> [h.text for h in snap.similar(vector=np.eye(8, dtype=np.float32)[1], k=1)]
['a welder']
>>> snap.count("region = 'Asia'"), snap.version < idx.snapshot().version
(1, True)
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import (FormatVersionError, InvalidFilterError, InvalidQueryError,
                     MissingDependencyError, clean_error)
from .warm import _fixed_mmap_threshold, load_ids, load_matrix, take_vectors  # noqa: F401 (load_matrix: re-exported)

META_KEY = "persona_index"
#: up to this many rows, query results come from a warm copy of the text and
#: attribute columns (about 150 bytes a persona)
ROWS_CACHE_MAX = 2_000_000


@dataclass
class Hit:
    """One query result: a persona and its cosine similarity to the query.

    >>> Hit("a1", "a nurse", 0.91234567, {"region": "Africa"}).to_dict()["similarity"]
    0.912346
    """

    id: str
    text: str
    similarity: float
    attributes: dict = field(default_factory=dict)
    source: str | None = None
    licence: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "similarity": round(self.similarity, 6),
                **self.attributes, "source": self.source, "licence": self.licence}


#: hidden column names of a column replace in progress (store.set_columns)
TMP_PREFIX = "_pi_"
TMP_NEW = "_pi_new_"
TMP_OLD = "_pi_old_"


def whole_clause(where: str | None) -> str | None:
    """A ``where`` clause as Lance must parse it: whole, in parentheses
    (DataFusion otherwise runs the longest valid prefix of a clause and drops
    trailing garbage such as ``... ANDX id = 'zz'``); an empty clause is an
    :class:`~persona_index.errors.InvalidFilterError`.

    >>> whole_clause("region = 'Asia'"), whole_clause(None)
    ("(region = 'Asia')", None)
    """
    if where is None:
        return None
    if not isinstance(where, str) or not where.strip():
        raise InvalidFilterError("empty where clause")
    return f"({where.strip()})"

def table_of(rows: list):
    """Rows (dicts) as an Arrow table.

    >>> table_of([{"id": "a", "n": 1}, {"id": "b", "n": 2}]).column("n").to_pylist()
    [1, 2]
    """
    import pyarrow as pa

    return pa.Table.from_pylist(rows)


def pandas_of(rows: list):
    """Rows (dicts) as a pandas frame (pandas is an optional install).

    >>> try:
    ...     print(pandas_of([{"id": "a"}]).shape)
    ... except MissingDependencyError:
    ...     print((1, 1))  # the same frame once pandas is installed
    (1, 1)
    """
    try:
        import pandas  # noqa: F401
    except ImportError:
        raise MissingDependencyError("to_pandas() needs pandas: pip install pandas") from None
    return table_of(rows).to_pandas()


class Hits(list):
    """Query results: a list of :class:`Hit`, also as an Arrow table or a
    pandas frame (one row per hit: id, text, similarity, attributes, source,
    licence).

    >>> Hits([Hit("a1", "a nurse", 0.9, {"region": "Africa"})]).to_arrow().column_names
    ['id', 'text', 'similarity', 'region', 'source', 'licence']
    """

    def rows(self) -> list:
        return [h.to_dict() for h in self]

    def _table_rows(self) -> list:
        return [{"similarity": h.similarity, "id": h.id, "text": h.text, **h.attributes}
                for h in self]

    def __repr__(self) -> str:
        """A table: similarity, id, text and attributes, the first ten hits."""
        from .display import REPR_WIDTH, clipped, text_table

        if not self:
            return "Hits([])"
        rows, more = clipped(self._table_rows())
        return (f"{len(self)} hits\n" + text_table(rows, max_width=REPR_WIDTH)
                + (f"\n{more}" if more else ""))

    def _repr_html_(self) -> str:
        from .display import clipped, html_table

        rows, more = clipped(self._table_rows())
        return html_table(rows, caption=f"{len(self)} hits" + (f" ({more})" if more else ""))

    def to_arrow(self):
        return table_of(self.rows())

    def to_pandas(self):
        return pandas_of(self.rows())


def read_meta(schema, path: str) -> dict:
    """The store's metadata (model, dim, attributes, format) from a table schema.

    >>> import pyarrow as pa
    >>> read_meta(pa.schema([("id", pa.string())], metadata={META_KEY: '{"dim": 8}'}), "p")
    {'dim': 8}
    >>> read_meta(pa.schema([("id", pa.string())]), "p.lance")
    Traceback (most recent call last):
    persona_index.errors.FormatVersionError: 'p.lance' holds a persona table that persona-index did not write (no format metadata)
    """
    raw = (schema.metadata or {}).get(META_KEY.encode())
    if raw is None:
        raise FormatVersionError(f"{path!r} holds a persona table that persona-index did not "
                                 "write (no format metadata)")
    return json.loads(raw)


#: the environment variable that sets the warm matrix's dtype: ``float32``
#: (the default) or ``float16`` (half the memory; queries re-rank exactly)
WARM_DTYPE_ENV = "PERSONA_INDEX_WARM_DTYPE"
WARM_DTYPES = ("float32", "float16")
#: a bound on |float16-path similarity - float32 similarity| for unit vectors:
#: rounding the row (and, on the torch path, the query and the result) to
#: float16 moves x . q by at most 2^-11 each (4.9e-4), plus float32
#: accumulation (d 2^-24: 2.3e-5 at d = 384); measured: at most 3.1e-4 on
#: 200k x 384 (tests/test_warm_fp16.py checks the bound on its fixture)
FP16_SIMILARITY_ERROR = 2e-3
#: rows per block when numpy multiplies a float16 matrix (converted to
#: float32 a block at a time: numpy has no float16 BLAS path)
FP16_BLOCK = 32768


def warm_dtype(value: str | None = None) -> str:
    """The warm matrix dtype: ``value`` if given, else ``$PERSONA_INDEX_WARM_DTYPE``,
    else ``"float32"``.

    Examples
    --------
    >>> warm_dtype("float16"), warm_dtype()
    ('float16', 'float32')
    >>> warm_dtype("int8")
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: warm_dtype='int8' is not one of float32, float16
    """
    v = value or os.environ.get(WARM_DTYPE_ENV, "").strip() or "float32"
    if v not in WARM_DTYPES:  # the environment variable's name when it came from there
        where = "warm_dtype" if value else WARM_DTYPE_ENV
        raise InvalidQueryError(f"{where}={v!r} is not one of {', '.join(WARM_DTYPES)}")
    return v


def matrix_dot(X: np.ndarray, q: np.ndarray, block: int = FP16_BLOCK) -> np.ndarray:
    """``X @ q`` as float32. A float16 ``X`` goes through torch's float16
    matrix-vector product when torch is installed (about float32 numpy's
    speed; numpy converts float16 at about 40 ns an element), else through
    numpy a ``block`` of rows at a time. Either way within
    :data:`FP16_SIMILARITY_ERROR` of the float32 product.

    Examples
    --------
    >>> X = np.eye(3, dtype=np.float16)
    >>> matrix_dot(X, np.array([0.5, 0.25, 1.0], dtype=np.float32), block=2).tolist()
    [0.5, 0.25, 1.0]
    """
    if X.dtype == np.float32:
        return X @ q
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import warnings

        import torch

        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not writ.*")  # we only read it
            t = torch.from_numpy(np.ascontiguousarray(X))
            return (t @ torch.from_numpy(np.asarray(q, np.float32).astype(np.float16))
                    ).float().numpy()
    out = np.empty(len(X), dtype=np.float32)
    for s in range(0, len(X), block):
        out[s:s + block] = X[s:s + block].astype(np.float32) @ q
    return out


def where_error(exc, columns: Sequence[str]) -> str:
    """What is wrong with a where clause, from Lance's error, in the user's
    terms: the store's own columns only (none of Lance's ``_rowid``,
    ``_rowaddr``, ...), no ``SELECT 1 FROM t WHERE`` wrapper, no Rust paths.

    >>> where_error(ValueError("Invalid user input: Schema error: No field named t. Valid "
    ...     "fields are id, text, _rowid, _rowaddr., /x/scanner.rs:839:33"), ["id", "text"])
    "no column 't'; the columns are id, text"
    >>> where_error(ValueError("Invalid user input: Error parsing statement: SELECT 1 FROM t "
    ...     "WHERE (a = ) (sql parser error: Expected: an expression, found: )), /x/sql.rs:1:2"),
    ...     ["a"])
    'cannot parse it (expected an expression)'
    """
    import re

    msg = clean_error(exc)
    m = re.search(r"No field named ([^.\s]+)", msg)
    if m:
        name = m.group(1).strip("'\"")
        near = re.search(r"Did you mean '([^']+)'", msg)
        hint = f" (did you mean {near.group(1)!r}?)" if near and near.group(1) in columns else ""
        return f"no column {name!r}{hint}; the columns are {', '.join(columns)}"
    m = re.search(r"sql parser error: (.*?)(?:, found:.*)?\)?$", msg)
    if m and "SELECT 1 FROM" in msg:
        return f"cannot parse it ({m.group(1).strip().rstrip(')').lower().replace(':', '')})"
    m = re.search(r"Invalid function '([^']+)'", msg)
    if m:
        return f"no function {m.group(1)!r}"
    m = re.search(r"Received literal (\w+)\((.*?)\) and could not convert to literal of type "
                  r"'(\w+)", msg)
    if m:
        kinds = {"utf8": "text", "largeutf8": "text", "int64": "integer", "float64": "number",
                 "float32": "number", "boolean": "true/false", "fixedsizelist": "vector"}
        lit, col = m.group(1).lower(), m.group(3).lower()
        return (f"the value {m.group(2)} ({kinds.get(lit, lit)}) does not fit a "
                f"{kinds.get(col, col)} column")
    msg = re.sub(r"SELECT 1 FROM t WHERE\s*", "", msg)
    msg = re.sub(r"(Invalid user input|Schema error|Error resolving filter expression|"
                 r"Error optimizing sql filter|LanceError\(\w+\)):\s*", "", msg)
    msg = re.sub(r"Valid fields are [^.]*\.", f"the columns are {', '.join(columns)}.", msg)
    return re.sub(r",?\s*_row\w+", "", msg).strip(" ,.")


class Snapshot:
    """The persona table at one Lance version, read-only.

    Cheap to make (it opens the version's manifest); the vector matrix, the
    rows and attribute columns load on first use and stay for the snapshot's
    life. Positions are indices into :attr:`vectors` (store scan order).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=8))
    >>> _ = idx.add([{"text": "a nurse", "region": "Africa"}, {"text": "a welder", "region": "Asia"}],
    ...             vectors=np.eye(8, dtype=np.float32)[:2], attributes=["region"])
    >>> snap = idx.snapshot()
    >>> snap.positions("region = 'Asia'").tolist(), snap.vectors.shape
    ([1], (2, 8))
    >>> [h.text for h in snap.similar(id=snap.ids[0].as_py(), k=1)]  # itself left out
    ['a welder']
    >>> snap.attribute_columns(["region"])["region"].tolist()
    ['Africa', 'Asia']
    """

    def __init__(self, dataset, path: str, warm_dtype_: str | None = None):
        self.dataset = dataset  # a pylance dataset checked out at one version
        self.path = path
        # float16 halves the warm matrix; rank() then re-ranks exactly in float32
        self.warm_dtype = warm_dtype(warm_dtype_)
        self.version = int(dataset.version)
        self.schema = dataset.schema
        self.meta = read_meta(self.schema, path)
        self._ids = self._vectors = None
        self._sorted_addresses = self._order = None
        self._id_pos: dict | None = None
        self._filters: OrderedDict = OrderedDict()
        self._attrs: dict = {}
        self._rows = None
        self._resident: dict = {}  # device -> the matrix kept there (persona_index.kernels)

    # -- what the version holds ----------------------------------------------
    @property
    def attributes(self) -> list[str]:
        return list(self.meta.get("attributes", []))

    @property
    def columns(self) -> list[str]:
        """The stored columns, less the hidden ones of a column replace in
        progress (``_pi_`` names, see :meth:`PersonaIndex.set_columns`)."""
        return [c for c in self.schema.names if not c.startswith(TMP_PREFIX)]

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    def count(self, where: str | None = None) -> int:
        if where is None:
            return int(self.dataset.count_rows())
        return int(len(self.positions(where)))

    # -- the warm matrix -----------------------------------------------------
    def _load(self) -> None:
        if self._vectors is None:
            ids, vectors, addresses = load_matrix(self.dataset, self.dim, self.warm_dtype)
            if self._ids is None:  # else the same ids, already indexed (load_ids)
                self._index(ids, addresses)
            self._vectors = vectors

    def _load_index(self) -> None:
        """The ids and row addresses without the vectors (same order as the matrix)."""
        if self._ids is None:
            self._index(*load_ids(self.dataset))

    def _index(self, ids, addresses) -> None:
        self._order = np.argsort(addresses, kind="stable")
        self._sorted_addresses = addresses[self._order]
        self._ids = ids

    @property
    def ids(self):
        """The ids (pyarrow StringArray) in matrix order (no vectors read)."""
        self._load_index()
        return self._ids

    @property
    def vectors_loaded(self) -> bool:
        """Whether the warm matrix is in memory (reads since then are free)."""
        return self._vectors is not None

    def vectors_at(self, positions) -> np.ndarray:
        """The vectors at matrix positions, in the order given, in the warm
        dtype: from the warm matrix when it is loaded, else read from the
        version (a Lance take, the rows only)."""
        pos = np.asarray(positions, dtype=np.int64)
        if self._vectors is not None:
            return self._vectors[pos]
        return self.exact_vectors(pos).astype(self.warm_dtype, copy=False)

    @property
    def vectors(self) -> np.ndarray:
        """The ``(n, d)`` unit vectors, read-only: float32, or float16 when the
        snapshot's :attr:`warm_dtype` is ``float16``."""
        self._load()
        return self._vectors

    @property
    def nbytes(self) -> int:
        """Bytes held warm: the matrix, ids, addresses and rows, those loaded."""
        held = (self._vectors, self._ids, self._sorted_addresses, self._order, self._rows)
        return int(sum(a.nbytes for a in held if a is not None))

    def positions_of_ids(self, ids: Sequence[str]) -> np.ndarray:
        """Matrix positions of ``ids``, in their order, those absent left out
        (one Arrow lookup: no dict over the whole pool, as
        :meth:`position_of_id` builds)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        got = pc.index_in(pa.array(list(ids), pa.string()), value_set=self.ids)
        return got.drop_null().to_numpy().astype(np.int64)

    def position_of_id(self, pid: str) -> int | None:
        if self._id_pos is None:
            self._id_pos = {v: i for i, v in enumerate(self.ids.to_pylist())}
        return self._id_pos.get(pid)

    def vectors_of(self, where: str | None = None):
        """``(ids, X)``: ids (list of str) and vectors of the rows matching ``where``."""
        if where is None:
            return self.ids.to_pylist(), self.vectors
        pos = self.positions(where)
        return self.ids.take(pos).to_pylist(), self.vectors[pos]

    # -- filters and columns -------------------------------------------------
    def positions(self, where: str) -> np.ndarray:
        """Sorted positions of the rows matching a SQL ``where`` (kept per
        clause: a repeated filter costs nothing after its first use)."""
        key = where.strip() if isinstance(where, str) else ""
        if key in self._filters:
            self._filters.move_to_end(key)
            return self._filters[key]
        if not key:
            raise InvalidFilterError("empty where clause")
        self._load_index()
        try:
            # in parentheses: DataFusion otherwise runs the longest valid prefix
            # of a clause and silently drops trailing garbage ("... AMD x = 1")
            t = self.dataset.to_table(columns=["id"], filter=whole_clause(key),
                                      with_row_address=True)
        except Exception as exc:  # lance raises ValueError/OSError with a long trace
            cols = [c for c in self.columns if c != "vector"]
            raise InvalidFilterError(f"bad where clause {where!r}: "
                                     f"{where_error(exc, cols)}") from None
        addresses = t.column("_rowaddr").to_numpy()
        if len(self._sorted_addresses):
            at = np.minimum(np.searchsorted(self._sorted_addresses, addresses),
                            len(self._sorted_addresses) - 1)
            pos = np.sort(self._order[at[self._sorted_addresses[at] == addresses]])
        else:
            pos = np.zeros(0, dtype=np.int64)
        self._filters[key] = pos
        if len(self._filters) > 32:
            self._filters.popitem(last=False)
        return pos

    def attribute_columns(self, names: Sequence[str]) -> dict:
        """Whole columns as object arrays in matrix order."""
        missing = [n for n in names if n not in self.columns]
        if missing:
            raise InvalidQueryError(f"unknown attribute(s) {missing}; the store has "
                                    f"{self.attributes}")
        need = [n for n in names if n not in self._attrs]
        if need:
            t = self.dataset.to_table(columns=need)
            for n in need:
                self._attrs[n] = np.asarray(t.column(n).to_pylist(), dtype=object)
        return {n: self._attrs[n] for n in names}

    def take(self, positions: Sequence[int], columns: Sequence[str] | None = None):
        """Rows at matrix positions as an Arrow table, in the order given.

        Without ``columns``: every column but the vector, from a warm copy of
        those columns while the version has at most ``ROWS_CACHE_MAX`` rows
        (a Lance take costs milliseconds, an Arrow take microseconds)."""
        pos = np.asarray(positions, dtype=np.int64)
        if columns is None:
            cols = [c for c in self.columns if c != "vector"]
            if self.count() <= ROWS_CACHE_MAX:
                if self._rows is None:
                    self._rows = self.dataset.to_table(columns=cols).combine_chunks()
                return self._rows.take(pos)
        else:
            cols = list(columns)
        return self.dataset.take(pos, columns=cols)

    def get(self, ids: Sequence[str] | str) -> list[dict]:
        """The personas with these ids (unknown ids are left out), no vectors."""
        if isinstance(ids, str):
            ids = [ids]
        pos = [p for p in (self.position_of_id(i) for i in ids) if p is not None]
        return self.take(pos).to_pylist() if pos else []

    # -- scans that need no warm matrix ---------------------------------------
    def present_ids(self, ids: Sequence[str]) -> set:
        """Which of ``ids`` are stored (a scan of the id column)."""
        if not len(ids):
            return set()
        import pyarrow as pa
        import pyarrow.compute as pc

        want = pa.array(list(ids), pa.string())
        found: set = set()
        for b in self.dataset.to_batches(columns=["id"]):
            col = b.column(0)
            found.update(col.filter(pc.is_in(col, value_set=want)).to_pylist())
        return found

    def texts_of(self, ids: Sequence[str]) -> dict:
        """id -> text for the stored ones among ``ids`` (a filtered scan)."""
        if not len(ids):
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

    def iter_batches(self, columns: Sequence[str] | None = None, where: str | None = None,
                     batch_size: int = 8192):
        """Stream the version as Arrow record batches (bounded memory); ``where``
        must parse as a whole (:func:`whole_clause`)."""
        it = self.dataset.to_batches(columns=list(columns) if columns else None,
                                     filter=whole_clause(where), batch_size=batch_size)
        try:
            first = next(iter(it), None)
        except Exception as exc:  # lance raises ValueError/OSError with a long trace
            raise InvalidFilterError(f"bad where clause {where!r}: {clean_error(exc)}") from None
        if first is not None:
            yield first
            yield from it

    # -- queries -------------------------------------------------------------
    def rank(self, vector, k: int, *, where: str | None = None, sign: int = +1,
             leave_out: int | None = None, device: str = "auto") -> Hits:
        """The ``k`` rows most (``sign=+1``) or least (``-1``) cosine-similar to a
        unit ``vector``, ties broken by position; ``leave_out`` a position.
        ``device`` (see :mod:`persona_index.kernels`): the torch kernels keep
        the matrix resident on the device for the snapshot's life."""
        from .kernels import resolve_device

        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k <= 0:
            raise InvalidQueryError(f"k must be a positive integer, got {k!r}")
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise InvalidQueryError(f"query vector has dim {q.shape[0]}, the store {self.dim}")
        dev = resolve_device(device, self.vectors.size)
        if self.vectors.dtype == np.float16:
            return self._rank_fp16(q, k, where=where, sign=sign, leave_out=leave_out)
        cand = self.positions(where) if where else None
        if leave_out is not None:
            cand = np.arange(len(self.vectors)) if cand is None else cand
            cand = cand[cand != leave_out]
        if dev != "numpy":
            from .kernels import top_k_torch

            pos, s = top_k_torch(self.vectors, q, k, sign=sign, candidates=cand, device=dev,
                                 cache=self._resident)
        else:  # the one numpy top-k (its tie rule: by score, then by position)
            from .kernels import top_k_numpy

            pos, s = top_k_numpy(self.vectors, q, k, sign=sign, candidates=cand)
        return self.hits(pos, s) if len(pos) else Hits()

    def exact_vectors(self, positions) -> np.ndarray:
        """The stored float32 vectors of matrix ``positions`` (read from Lance)."""
        return take_vectors(self.dataset, positions, self.dim)

    def _rank_fp16(self, q: np.ndarray, k: int, *, where, sign: int, leave_out) -> Hits:
        """rank() over a float16 matrix: approximate scores from the float16
        rows, then every row within twice :data:`FP16_SIMILARITY_ERROR` of the
        k-th approximate score is re-scored from its stored float32 vector, so
        the result is the float32 ranking (ties by position)."""
        approx = matrix_dot(self.vectors, q)
        cand = self.positions(where) if where else np.arange(len(approx))
        if leave_out is not None:
            cand = cand[cand != leave_out]
        k_eff = min(int(k), len(cand))
        if k_eff == 0:
            return Hits()
        key = -sign * approx[cand]
        kth = np.partition(key, k_eff - 1)[k_eff - 1]
        near = cand[key <= kth + 2 * FP16_SIMILARITY_ERROR]
        exact = self.exact_vectors(near) @ q
        ekey = -sign * exact
        order = np.lexsort((near, ekey))[:k_eff]
        return self.hits(near[order], exact[order])

    def _by_id(self, id: str) -> int:
        pos = self.position_of_id(id)
        if pos is None:
            raise InvalidQueryError(f"no persona with id {id!r} in {self.path!r}")
        return pos

    def similar(self, *, id: str | None = None, vector=None, k: int = 10,
                where: str | None = None, device: str = "auto") -> Hits:
        """The ``k`` personas most similar to a stored persona (``id``, left
        out of its own results) or a unit ``vector``."""
        return self.query(id, vector, k, where, +1, device=device)

    def distant(self, *, id: str | None = None, vector=None, k: int = 10,
                where: str | None = None, device: str = "auto") -> Hits:
        """The ``k`` personas least similar to ``id`` or ``vector``."""
        return self.query(id, vector, k, where, -1, device=device)

    def query(self, id, vector, k, where, sign, *, device: str = "auto") -> Hits:
        """``similar`` (``sign=+1``) or ``distant`` (``-1``) by id or vector."""
        if (id is None) == (vector is None):
            raise InvalidQueryError("give one of a query text, an id or a vector")
        if id is not None:
            pos = self._by_id(id)
            q = self.vectors[pos] if self.vectors.dtype == np.float32 else \
                self.exact_vectors([pos])[0]
            return self.rank(q, k, where=where, sign=sign, leave_out=pos, device=device)
        return self.rank(vector, k, where=where, sign=sign, device=device)

    def hits(self, positions, similarities) -> Hits:
        rows = self.take(positions).to_pylist()
        attrs = self.attributes
        return Hits(Hit(id=r["id"], text=r["text"], similarity=float(s),
                        attributes={a: r.get(a) for a in attrs},
                        source=r.get("source"), licence=r.get("licence"))
                    for r, s in zip(rows, similarities))

    # -- export ----------------------------------------------------------------
    def export(self, out: str | os.PathLike, fmt: str | None = None, *,
               where: str | None = None, vectors: bool = False) -> int:
        """Write this version (or its rows matching ``where``, a whole clause:
        trailing garbage is refused, as by :meth:`positions`) to jsonl or
        parquet; the format comes from ``fmt`` or the suffix. ``out`` is
        written as :func:`persona_index.outputs.output_file` writes: ``-`` is
        stdout, a special file (``/dev/stdout``, a FIFO) is written in place,
        a regular file atomically. Returns the row count."""
        import pyarrow.parquet as pq

        from .outputs import output_file

        out = str(out)
        fmt = fmt or ("parquet" if out.endswith(".parquet") else "jsonl")
        if fmt not in ("jsonl", "parquet"):
            raise InvalidQueryError(f"unknown export format {fmt!r}: use jsonl or parquet")
        cols = [c for c in self.columns if vectors or c != "vector"]
        batches = self.iter_batches(cols, where)
        first = next(batches, None)  # a bad clause fails here, before any file is made
        n = 0
        with output_file(out, mode="wb" if fmt == "parquet" else "w",
                         encoding=None if fmt == "parquet" else "utf-8") as fh:
            if fmt == "parquet":
                writer = pq.ParquetWriter(fh, first.schema if first is not None
                                          else self.schema.empty_table().select(cols).schema)
                for b in ([first] if first is not None else []):
                    writer.write_batch(b)
                    n += b.num_rows
                for b in batches:
                    writer.write_batch(b)
                    n += b.num_rows
                writer.close()
            else:
                for b in ([first] if first is not None else []):
                    fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in b.to_pylist()))
                    n += b.num_rows
                for b in batches:
                    fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in b.to_pylist()))
                    n += b.num_rows
        return n
