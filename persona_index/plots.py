"""A picture of coverage: the pool's 2-D map with a batch on it.

:func:`coverage_map` projects the pool to its first two principal
components (fitted on at most 50,000 rows, the same eigen-decomposition as
the cell-coverage grid), shades the map by how many personas lie in each
hexagon (log scale), and draws the batch on top in the left panel and a
uniform batch of the same size (seed 0, what ``coverage --compare-uniform``
draws first) in the right one; the title carries both batches' k-center
radius, Vendi score and cell coverage. matplotlib is the ``plots`` extra and
is imported on first use (Agg backend: no display needed).

Examples
--------
>>> import tempfile, os
>>> from persona_index import PersonaIndex
>>> from persona_index.embed import HashEmbedder
>>> d = tempfile.mkdtemp()
>>> idx = PersonaIndex(d + "/p.lance", HashEmbedder(dim=16))
>>> _ = idx.add([{"text": f"persona {i}"} for i in range(200)])
>>> ids = idx.snapshot().ids.to_pylist()[:12]
>>> info = coverage_map(idx, ids, d + "/map.png")
>>> png_size(d + "/map.png"), info["n"], info["pool"]
((1200, 540), 12, 200)
"""

from __future__ import annotations

import os
import struct
from typing import Sequence

import numpy as np

#: the picture's size in inches and its resolution: 1200 x 540 pixels
FIGSIZE = (12.0, 5.4)
DPI = 100


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG file's IHDR header.

    >>> import tempfile, zlib
    >>> p = tempfile.mkdtemp() + "/x.png"
    >>> ihdr = struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0)
    >>> _ = open(p, "wb").write(b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + ihdr)
    >>> png_size(p)
    (3, 2)
    """
    with open(path, "rb") as fh:
        head = fh.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG file")
    return struct.unpack(">II", head[16:24])


def project_2d(X: np.ndarray, fit_rows: int = 50000) -> np.ndarray:
    """``(n, 2)``: the rows of ``X`` on the first two principal components of
    (at most ``fit_rows`` of) them, signs fixed as the cell grid fixes them.

    >>> X = np.array([[1, 0, 0], [-1, 0, 0], [0, 0.1, 0], [0, -0.1, 0]], dtype=np.float32)
    >>> np.round(project_2d(X).astype(float), 3).tolist()
    [[1.0, 0.0], [-1.0, 0.0], [0.0, 0.1], [0.0, -0.1]]
    """
    rng = np.random.default_rng(12345)
    fit = X if len(X) <= fit_rows else X[np.sort(rng.choice(len(X), fit_rows, replace=False))]
    fit = fit.astype(np.float64)
    mean = fit.mean(axis=0)
    centred = fit - mean
    _, vecs = np.linalg.eigh(centred.T @ centred)
    comps = vecs[:, ::-1].T[:2]
    comps = comps * np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])[:, None]
    return ((X.astype(np.float64) - mean) @ comps.T).astype(np.float32)


def coverage_map(index, ids: Sequence[str], out, *, where: str | None = None,
                 seed: int = 0) -> dict:
    """Draw the map of ``index``'s pool (the rows matching ``where``) with
    the personas ``ids`` on it, next to a uniform batch of the same size
    drawn with ``seed``; write a PNG to ``out`` (atomically). Returns
    ``{"title", "width", "height", "n", "pool"}``."""
    from ._lazy import attempt_import
    from .errors import SamplingError
    from .metrics import coverage_reports
    from .samplers.base import sample

    attempt_import("matplotlib", "plots")
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    snap = index.snapshot()
    pool = snap.positions(where) if where else np.arange(len(snap.vectors))
    where_in_pool = {int(p): i for i, p in enumerate(pool)}
    local = [where_in_pool.get(snap.position_of_id(i) if snap.position_of_id(i) is not None
                               else -1) for i in ids]
    missing = [i for i, p in zip(ids, local) if p is None]
    if missing:
        raise SamplingError(f"{len(missing)} id(s) are not in the pool, e.g. {missing[:3]}")
    if not local:
        raise SamplingError("no ids to draw")
    X = snap.vectors[pool]
    batch = np.asarray(local, dtype=np.int64)
    uniform = sample(X, len(batch), "uniform", seed=seed)
    reps = coverage_reports([batch, uniform], X)
    P = project_2d(X)
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE, dpi=DPI, sharex=True, sharey=True)
    for ax, sel, rep, name in ((axes[0], batch, reps[0], "this batch"),
                               (axes[1], uniform, reps[1], f"uniform batch (seed {seed})")):
        ax.hexbin(P[:, 0], P[:, 1], gridsize=45, bins="log", cmap="Greys", mincnt=1,
                  linewidths=0)
        ax.scatter(P[sel, 0], P[sel, 1], s=28, c="#d62728", edgecolors="white", linewidths=0.6,
                   zorder=3)
        ax.set_title(f"{name}: k-center radius {rep['kcenter_radius']:.3f}, "
                     f"Vendi {rep['vendi']:.1f}, cells {rep['cell_coverage']:.2f}", fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("PC 2")
    title = (f"{len(batch)} personas on the pool of {len(X):,} (grey: personas per hexagon, "
             "log scale; PCA map)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = os.fspath(out)
    tmp = out + ".partial.png"
    try:
        fig.savefig(tmp, dpi=DPI, format="png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    w, h = png_size(out)
    return {"title": title, "width": w, "height": h, "n": int(len(batch)), "pool": int(len(X)),
            "batch": {k: reps[0][k] for k in ("kcenter_radius", "vendi", "cell_coverage")},
            "uniform": {k: reps[1][k] for k in ("kcenter_radius", "vendi", "cell_coverage")}}
