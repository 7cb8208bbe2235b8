"""Reading a table version's vectors into memory: the whole warm matrix
(:func:`load_matrix`), or the ids and row addresses alone (:func:`load_ids`),
for a draw that reads only the rows it needs
(:meth:`persona_index.snapshot.Snapshot.vectors_at`)."""

from __future__ import annotations

import numpy as np


def _fixed_mmap_threshold(nbytes: int = 1 << 20) -> None:
    """glibc only: allocations of ``nbytes`` or more get their own mmap and go
    back to the OS when freed. Under the default (dynamic) threshold the page
    buffers Lance frees on its worker threads pile up in per-thread arenas,
    about 200-350 MB at 10^6 x 384 (the scale benchmark measures the load).
    Process-wide; a no-op where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(-3, nbytes)
    except (OSError, AttributeError):
        pass


def load_matrix(dataset, dim: int, dtype: str = "float32"):
    """``(ids, vectors, row_addresses)`` of a Lance dataset, streamed into one
    preallocated ``dtype`` array (float32, or float16 at half the bytes):
    peak memory is the matrix plus a few batches.

    The id and address columns are copied out of each batch, not viewed: a
    Lance batch crosses into Arrow as one allocation, so a view of its small
    id column would keep its vectors alive too (a second copy of the matrix
    by the end of the scan).

    >>> import tempfile, lance, pyarrow as pa
    >>> v = np.eye(4, dtype=np.float32)[:3]
    >>> t = pa.table({"id": ["a", "b", "c"],
    ...               "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 4)})
    >>> ids, X, addresses = load_matrix(lance.write_dataset(t, tempfile.mkdtemp() + "/t.lance"), 4)
    >>> ids.to_pylist(), np.array_equal(X, v), X.flags.writeable
    (['a', 'b', 'c'], True, False)
    """
    import pyarrow as pa

    _fixed_mmap_threshold()
    n = dataset.count_rows()
    vectors = np.empty((n, dim), dtype=np.dtype(dtype))
    ids, addrs, at = [], [], 0
    for b in dataset.to_batches(columns=["id", "vector"], with_row_address=True,
                                batch_size=65536, batch_readahead=2, fragment_readahead=1):
        m = b.num_rows
        vectors[at:at + m] = b.column("vector").flatten().to_numpy(
            zero_copy_only=False).reshape(m, dim)
        ids.append(pa.concat_arrays([b.column("id")]))  # a copy (new buffers)
        addrs.append(b.column("_rowaddr").to_numpy().copy())
        at += m
        del b
    vectors = vectors[:at]
    vectors.flags.writeable = False
    id_arr = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    return id_arr, vectors, (np.concatenate(addrs) if addrs else np.zeros(0, np.uint64))


def load_ids(dataset):
    """``(ids, row_addresses)`` of a Lance dataset, in the order
    :func:`load_matrix` reads them (the same scan, without the vectors).

    >>> import tempfile, lance, pyarrow as pa
    >>> v = np.eye(4, dtype=np.float32)[:3]
    >>> t = pa.table({"id": ["a", "b", "c"],
    ...               "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 4)})
    >>> ds = lance.write_dataset(t, tempfile.mkdtemp() + "/t.lance")
    >>> ids, addresses = load_ids(ds)
    >>> ids.to_pylist() == load_matrix(ds, 4)[0].to_pylist(), len(addresses)
    (True, 3)
    """
    import pyarrow as pa

    ids, addrs = [], []
    for b in dataset.to_batches(columns=["id"], with_row_address=True, batch_size=65536):
        ids.append(pa.concat_arrays([b.column("id")]))
        addrs.append(b.column("_rowaddr").to_numpy().copy())
    id_arr = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    return id_arr, (np.concatenate(addrs) if addrs else np.zeros(0, np.uint64))


def take_vectors(dataset, positions, dim: int) -> np.ndarray:
    """The stored float32 vectors at row ``positions`` of a dataset (a Lance
    take), in the order given: what a snapshot reads without its warm matrix,
    in this process or in another (a Ray task holding the pickled dataset)."""
    pos = np.asarray(positions, dtype=np.int64)
    if len(pos) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    col = dataset.take(pos, columns=["vector"]).column("vector").combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(pos), dim).astype(
        np.float32, copy=False)
