"""Store-to-store maintenance: re-embedding a copy with another model."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from .commits import fault_point
from .errors import InvalidQueryError, warn
from .readers import DEFAULT_BATCH
from .store import REEMBED_MARKER, PersonaIndex


def partial_path(new_path: str) -> str:
    """Where :func:`reembed` builds its copy before renaming it to ``new_path``:
    a hidden sibling in the same folder (so the rename is atomic).

    >>> partial_path("/data/copy.lance")
    '/data/.copy.lance.reembed-partial'
    """
    p = Path(os.path.abspath(new_path))
    return str(p.parent / f".{p.name}.reembed-partial")


def reembed(src: PersonaIndex, new_path: str, model: str, *, batch_size: int = DEFAULT_BATCH,
            progress: bool = False) -> dict:
    """Copy every row of ``src`` into a new store at ``new_path``, embedded by
    ``model``. Ids, texts, attributes and provenance are kept as they are; the
    copy records the new model, so the two are never mixed.

    The copy is built in a hidden sibling (:func:`partial_path`) that carries
    a marker file (which no command opens as a store) and is renamed to
    ``new_path`` when complete. A rerun after an interruption resumes it when
    it copies the same source version with the same model (rows already
    copied are not embedded again), else removes it and starts clean; either
    way it says so in one line on stderr.

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
    >>> sorted(os.listdir(d))  # no partial copy left
    ['a.lance', 'b.lance']
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from tqdm.auto import tqdm

    from .embed import get_embedder

    tmp = partial_path(new_path)
    left = Path(new_path) / REEMBED_MARKER
    if left.exists() and not Path(tmp).exists():  # killed between the rename and the unlink
        left.unlink()
        done = PersonaIndex(new_path, must_exist=True)
        warn(f"an interrupted reembed into {new_path} had finished copying: marked complete")
        return {"copied": done.count(), "from": src.path, "to": new_path,
                "model": done.meta.get("model"), "dim": done.meta.get("dim")}
    if Path(new_path).exists() and any(Path(new_path).iterdir()):
        raise InvalidQueryError(f"{new_path!r} already holds a store (or other files); reembed "
                                "writes a new one")
    embedder = get_embedder(model)
    marker = Path(tmp) / REEMBED_MARKER
    want = {"from": os.path.abspath(src.path) if src.local else src.path,
            "model": embedder.name}
    snap = src.snapshot()
    have_ids: set = set()
    if Path(tmp).exists():
        try:
            old = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        same = {k: old.get(k) for k in want} == want and isinstance(old.get("version"), int)
        if same:
            src = PersonaIndex(src.path, version=old["version"], must_exist=True)
            snap = src.snapshot()  # the version the interrupted copy was made from
            done = PersonaIndex(tmp, must_exist=False, _partial_ok=True)
            if done.exists:
                have_ids = set(done.snapshot().ids.to_pylist())
            warn(f"resuming an interrupted reembed into {new_path} ({len(have_ids)} of "
                 f"{snap.count()} personas copied)")
        else:
            warn(f"an interrupted reembed of another source or model was left in {tmp}: "
                 "removed, starting again")
            shutil.rmtree(tmp)
    if not Path(tmp).exists():
        os.makedirs(tmp)
        marker.write_text(json.dumps({**want, "version": snap.version}), encoding="utf-8")
    dst = PersonaIndex(tmp, embedder, _partial_ok=True, lock_timeout=src.lock_timeout)
    cols = [c for c in snap.columns if c != "vector"]
    n = 0
    with tqdm(total=snap.count(), disable=not progress, file=sys.stderr, desc="reembed") as bar:
        for b in snap.iter_batches(cols, batch_size=batch_size):
            t = pa.Table.from_batches([b])
            bar.update(t.num_rows)
            n += t.num_rows
            if have_ids:
                t = t.filter(pc.invert(pc.is_in(t.column("id"), value_set=pa.array(sorted(have_ids)))))
                if t.num_rows == 0:
                    continue
            vecs = embedder.encode(t.column("text").to_pylist())
            dim = vecs.shape[1]
            vec = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()), dim)
            dst.write(t.append_column("vector", vec), attributes=snap.attributes)
            fault_point("reembed:batch")
    if Path(new_path).exists():  # an empty folder (checked above): rename replaces it
        os.rmdir(new_path)
    os.rename(tmp, new_path)
    marker = Path(new_path) / REEMBED_MARKER
    marker.unlink()
    return {"copied": n, "from": src.path, "to": new_path, "model": embedder.name,
            "dim": embedder.dim}
