"""Zero-shot tagging: give each persona the nearest label by embedding.

Free-text pools (Persona Hub) have no attribute columns; tagging makes one,
so stratified sampling works on them. Each persona gets the label whose
embedding is most similar to its own, and the margin over the runner-up (a
small margin means an uncertain tag), stored as columns ``NAME`` and
``NAME_margin``; ``NAME`` is registered as an attribute.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import InvalidQueryError
from .store import PersonaIndex
from .text import RESERVED, column_name


def tag(index: PersonaIndex, name: str, labels: Sequence[str], *, template: str = "{label}",
        replace: bool = False, block: int = 65536, progress: bool = False) -> dict:
    """Tag every persona with its nearest label; returns counts per label.

    Parameters
    ----------
    template : how a label is phrased before embedding, e.g. ``"a person who
        works in {label}"`` (default: the label as is).
    replace : overwrite an existing ``NAME`` column (refused otherwise: tagging
        ``region`` must not silently replace the regions a file came with).
    progress : a bar on stderr when it takes over 2 s (redrawn every second).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> e = HashEmbedder(dim=16)
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", e)
    >>> near = e.encode(["medicine", "medicine", "craft"])  # vectors equal to the labels'
    >>> _ = idx.add([{"text": "a nurse"}, {"text": "a surgeon"}, {"text": "a potter"}], vectors=near)
    >>> tag(idx, "field", ["medicine", "craft"])["counts"]
    {'medicine': 2, 'craft': 1}
    >>> sorted(r["field"] for r in idx.get(idx.snapshot().ids.to_pylist()))
    ['craft', 'medicine', 'medicine']
    """
    import pyarrow as pa

    labels = [l.strip() for l in labels if l and l.strip()]
    if len(labels) < 2:
        raise InvalidQueryError(f"tagging needs at least two labels, got {labels}")
    if len(set(labels)) != len(labels):
        raise InvalidQueryError(f"duplicate labels in {labels}")
    col = column_name(name)
    if col in RESERVED or col != name:
        raise InvalidQueryError(f"attribute name {name!r} must be a plain column name like {col!r}")
    try:
        phrases = [template.format(label=l) for l in labels]
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise InvalidQueryError(f"label template {template!r} does not fit: its only slot is "
                                f"{{label}} ({type(exc).__name__}: {exc})") from None
    from .progress import progress_bar

    with progress_bar(None, "tag", enabled=progress, unit="personas") as bar:
        bar.set_description_str("tag: embedding the labels", refresh=False)
        L = index.embed(phrases)
        bar.set_description_str("tag: reading the vectors", refresh=False)
        m = index.snapshot()  # tag exactly the personas of this version
        X = m.vectors
        bar.total = len(X)  # (reset() and a refreshing description would draw at once)
        bar.set_description_str("tag: nearest labels", refresh=False)
        best = np.empty(len(X), dtype=np.int64)
        margin = np.empty(len(X), dtype=np.float32)
        step = min(block, 8192)  # small steps: the bar moves
        for s in range(0, len(X), step):
            sims = X[s:s + step] @ L.T
            top2 = np.argsort(-sims, axis=1)[:, :2]
            rows = np.arange(len(sims))
            best[s:s + step] = top2[:, 0]
            margin[s:s + step] = sims[rows, top2[:, 0]] - sims[rows, top2[:, 1]]
            bar.update(len(sims))
    # the bar ends before the write: a writer waiting for the store's lock says
    # so on a line of its own
    new = pa.table({"id": m.ids,
                    col: pa.array(np.asarray(labels, dtype=object)[best], pa.string()),
                    f"{col}_margin": pa.array(margin, pa.float32())})
    index.set_columns(new, attributes=[col], replace=replace, expect_version=m.version)
    counts = np.bincount(best, minlength=len(labels))
    return {"attribute": col, "tagged": int(len(X)),
            "counts": {l: int(c) for l, c in zip(labels, counts)},
            "median_margin": float(np.median(margin)) if len(margin) else None}
