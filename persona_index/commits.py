"""Commits that read back whole: :func:`verified_commit` undoes the commits
of a block that fails or does not read back (disk full, a file-size limit),
the Lance commits that change a table's schema together with its rows
(:func:`commit_with_schema`, :func:`merge_columns`), and the fault points
tests/test_faults.py kills a process at (:func:`fault_point`).

The functions that commit take the :class:`~persona_index.store.PersonaIndex`
handle (``index``) whose writer lock the caller holds."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .errors import PersonaIndexError, StoreWriteError, clean_error, write_cause
from .snapshot import META_KEY

__all__ = ["fault_point", "latest_version", "roll_back", "check_version", "verified_commit",
           "commit_with_schema", "merge_columns"]


# -- fault injection (tests) -----------------------------------------------------
_FAULT_HITS: dict = {}


def fault_point(name: str) -> None:
    """A named point where tests/test_faults.py kills this process (SIGKILL)
    when ``$PERSONA_INDEX_FAULT`` is ``NAME`` or ``NAME#K`` (the K-th time it
    is reached). Costs one environment lookup otherwise."""
    want = os.environ.get("PERSONA_INDEX_FAULT")
    if not want or not want.startswith(name):
        return
    point, _, k = want.partition("#")
    if point != name:
        return
    _FAULT_HITS[name] = _FAULT_HITS.get(name, 0) + 1
    if _FAULT_HITS[name] >= int(k or 1):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# -- verified commits ------------------------------------------------------------
_MAX_U64 = 2**64 - 1


def _manifests(uri: str) -> dict:
    """{version: manifest file} of a local Lance table (both naming schemes)."""
    vdir = Path(uri) / "_versions"
    out = {}
    if not vdir.is_dir():
        return out
    for p in vdir.glob("*.manifest"):
        try:
            n = int(p.stem)
        except ValueError:
            continue
        out[_MAX_U64 - n if n > 2**63 else n] = p
    return out


def latest_version(uri: str) -> int | None:
    """The highest committed version of a local Lance table (None: no table).

    >>> latest_version("/nonexistent/t.lance") is None
    True
    """
    m = _manifests(uri)
    return max(m) if m else None


def roll_back(uri: str, before: int | None) -> bool:
    """Remove every version of a local table after ``before`` (the whole table
    when ``before`` is None): the caller holds the lock its writers take, so
    those versions are its own. Their data files stay (a reader that opened
    one keeps reading); nothing needs disk space. True when anything went."""
    import shutil

    if before is None:
        if Path(uri).exists():
            shutil.rmtree(uri, ignore_errors=True)
            return True
        return False
    gone = False
    for v, p in sorted(_manifests(uri).items(), reverse=True):
        if v > before:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
            gone = True
    if gone:
        with contextlib.suppress(FileNotFoundError):
            (Path(uri) / "_versions" / "latest_version_hint.json").unlink()
    return gone


def check_version(uri: str, before: int | None = None) -> str | None:
    """Why the latest version of a local table does not read back whole, or
    None when it does: its manifest opens, and every data and deletion file of
    the fragments it added or changed since ``before`` is on disk with the
    size the manifest records (a write cut short by a file-size limit is
    committed by pylance 14 with the file cut: tests/test_faults.py)."""
    import lance

    try:
        ds = lance.dataset(uri)
        old = {}
        if before is not None and ds.version != before:
            old = {f.fragment_id: f.metadata.to_json()
                   for f in lance.dataset(uri, version=before).get_fragments()}
        elif before is not None:
            return None
        for f in ds.get_fragments():
            md = f.metadata
            if old.get(f.fragment_id) == md.to_json():
                continue
            for df in md.files:
                p = Path(uri) / "data" / df.path
                want = getattr(df, "file_size_bytes", None)
                have = p.stat().st_size if p.exists() else None
                if have is None:
                    return f"data file {df.path} is missing"
                if want and have != want:
                    return f"data file {df.path} holds {have} of {want} bytes"
            if md.deletion_file is not None:
                f.count_rows()  # reads the deletion file
    except Exception as exc:  # the manifest or a deletion file does not read
        return clean_error(exc)
    return None


@contextlib.contextmanager
def verified_commit(store_path: str, uri: str, what: str, on_undo=None):
    """Commits made inside the block must read back whole, else they are
    undone: every version after the one the block started from is removed
    (the caller holds the lock the table's writers take) and
    :class:`StoreWriteError` names the store and the cause (disk full, file
    too large, a cut file). Any other error inside the block also undoes its
    commits before it propagates. Local tables only; elsewhere a no-op.

    Examples
    --------
    >>> import tempfile, lance, pyarrow as pa
    >>> uri = tempfile.mkdtemp() + "/t.lance"
    >>> _ = lance.write_dataset(pa.table({"a": [1]}), uri)
    >>> with verified_commit("s", uri, "t"):
    ...     _ = lance.write_dataset(pa.table({"a": [2]}), uri, mode="append")
    >>> try:
    ...     with verified_commit("s", uri, "t"):
    ...         _ = lance.write_dataset(pa.table({"a": [3]}), uri, mode="append")
    ...         raise OSError(28, "No space left on device")
    ... except StoreWriteError as e:
    ...     print(e)
    store 's': disk full while writing t; nothing of it was committed (t is at version 2)
    >>> lance.dataset(uri).count_rows()
    2
    """
    if "://" in str(uri):
        yield
        return
    before = latest_version(uri)

    def undo():
        if roll_back(uri, before) and on_undo is not None:
            on_undo()
        return (f"{what} is at version {before}" if before is not None
                else f"{what} was not created")

    try:
        yield
        fault_point("commit")
    except BaseException as exc:
        state = undo()
        if isinstance(exc, PersonaIndexError) or not isinstance(exc, Exception):
            raise
        cause = write_cause(exc)
        if isinstance(exc, OSError) or cause != clean_error(exc) or "LanceError(IO)" in str(exc):
            raise StoreWriteError(f"store {store_path!r}: {cause} while writing {what}; "
                                  f"nothing of it was committed ({state})") from None
        raise
    problem = check_version(uri, before)
    if problem:
        state = undo()
        raise StoreWriteError(f"store {store_path!r}: the {what} commit did not read back whole "
                              f"({problem}; disk full or a file-size limit?); it was undone ({state})")


# -- schema changes committed with their rows -------------------------------------
def commit_with_schema(index, snap, rows, schema) -> None:
    """Rows, new columns and new metadata in one Lance commit (a Merge of
    the old fragments and one new fragment under the new schema), so a
    reader sees all of it or none. Needs the stored field ids to be the
    ones a fresh schema gets (true unless a column was ever dropped, e.g.
    by ``tag --replace``); otherwise, and on object storage, the schema
    change commits first and the rows after, and a failed append rolls
    the schema change back."""
    import lance
    from lance.fragment import write_fragments
    from lance.schema import LanceSchema

    ds = snap.dataset
    fresh = _fresh_field_ids(schema)
    stored = _field_ids(ds.lance_schema)
    if index.local and fresh[:len(stored)] == stored:
        # written as if for a new dataset (no schema check against the old
        # one); the commit gives the new fragments their ids
        frags = write_fragments(rows, index._uri, schema=schema, mode="overwrite",
                                data_storage_version=ds.data_storage_version)
        op = lance.LanceOperation.Merge([f.metadata for f in ds.get_fragments()] + frags,
                                        LanceSchema.from_pyarrow(schema))
        lance.LanceDataset.commit(index._uri, op, read_version=snap.version)
        return
    tbl = index.table
    new = [f for f in schema if f.name not in snap.columns]
    if new:
        tbl.add_columns({f.name: f"CAST(NULL AS {_sql_type(f.type)})" for f in new})
    index._dataset().update_schema_metadata(
        {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in schema.metadata.items()}, replace=False)
    try:
        index.table.add(rows.replace_schema_metadata(None))
    except BaseException:
        index.table.restore(snap.version)
        raise


def merge_columns(index, snap, values, meta: dict) -> None:
    """Join ``values`` on id into every fragment and commit the new
    columns with the new metadata: one commit when the stored field ids
    are the ones a fresh schema gets (see :func:`commit_with_schema`)."""
    import lance
    from lance.schema import LanceSchema

    ds = snap.dataset
    if not index.local:
        ds.merge(values, left_on="id", right_on="id")
        index._dataset().update_schema_metadata({META_KEY: json.dumps(meta)}, replace=False)
        return
    frags, lschema = [], None
    for f in ds.get_fragments():
        md, lschema = f.merge(values, "id")
        frags.append(md)
    schema = lschema.to_pyarrow().with_metadata({META_KEY: json.dumps(meta)})
    one_commit = _fresh_field_ids(schema) == _field_ids(lschema)
    out = lance.LanceDataset.commit(index._uri, lance.LanceOperation.Merge(
        frags, LanceSchema.from_pyarrow(schema) if one_commit else lschema),
        read_version=snap.version)
    if not one_commit and meta != snap.meta:
        out.update_schema_metadata({META_KEY: json.dumps(meta)}, replace=False)


def _field_ids(lance_schema) -> list:
    """(name, id) of every field of a Lance schema, depth first."""
    def walk(fields):
        for f in fields:
            yield f.name(), f.id()
            yield from walk(f.children())

    return list(walk(lance_schema.fields()))


def _fresh_field_ids(schema) -> list:
    """The field ids a new Lance dataset would give an Arrow schema."""
    from lance.schema import LanceSchema

    return _field_ids(LanceSchema.from_pyarrow(schema))


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
