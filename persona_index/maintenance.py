"""Store-to-store maintenance: re-embedding a copy with another model."""

from __future__ import annotations

import sys


from .errors import InvalidQueryError
from .store import PersonaIndex


def reembed(src: PersonaIndex, new_path: str, model: str, *, batch_size: int = 1024,
            progress: bool = False) -> dict:
    """Copy every row of ``src`` into a new store at ``new_path``, embedded by
    ``model``. Ids, texts, attributes and provenance are kept as they are; the
    copy records the new model, so the two are never mixed.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> d = tempfile.mkdtemp()
    >>> src = PersonaIndex(d + "/a.lance", HashEmbedder(dim=16))
    >>> _ = src.add([{"text": "a nurse", "region": "Africa"}, {"text": "a potter"}],
    ...             attributes=["region"])
    >>> r = reembed(src, d + "/b.lance", "hash-8")
    >>> r["copied"], r["model"], PersonaIndex(d + "/b.lance").info()["attributes"]
    (2, 'hash-8', ['region'])
    """
    import pyarrow as pa
    from tqdm.auto import tqdm

    dst = PersonaIndex(new_path, model)
    if dst.exists:
        raise InvalidQueryError(f"{new_path!r} already holds a store; reembed writes a new one")
    snap = src.snapshot()  # copy one version, whatever is committed meanwhile
    cols = [c for c in snap.columns if c != "vector"]
    n = 0
    with tqdm(total=snap.count(), disable=not progress, file=sys.stderr, desc="reembed") as bar:
        for b in snap.iter_batches(cols, batch_size=batch_size):
            t = pa.Table.from_batches([b])
            vecs = dst.embedder.encode(t.column("text").to_pylist())
            dim = vecs.shape[1]
            vec = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim)
            t = t.append_column("vector", vec)
            dst.write(t, attributes=snap.attributes)
            n += t.num_rows
            bar.update(t.num_rows)
    return {"copied": n, "from": src.path, "to": new_path, "model": dst.embedder.name,
            "dim": dst.embedder.dim}
