"""Scale-out on Ray (the optional ``ray`` extra): an existing engine, not a home-made one.

* :func:`ingest_file_ray` embeds on a pool of long-lived Ray actors (GPU
  actors when ``use_gpu``), the expensive step; parsing, validation, dedup
  and the Lance commits stay in the driver and run in file order, so the
  result equals a single-process ingest of the same file (same ids,
  attributes, keep-first choice; vectors equal up to float rounding).
* :func:`distributed_farthest`: farthest-point per partition in parallel Ray
  tasks, then farthest-point over the union of the partition picks
  (composable coresets for k-center: the union's radius is within a small
  factor of the optimum).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._lazy import attempt_import
from .ingest import DEFAULT_BATCH, DEFAULT_NEAR_DUP, _Report, _write_pass, iter_file, plan_records
from .samplers.farthest import farthest_point
from .store import PersonaIndex


class _Precomputed:
    """An embedder answering from vectors computed elsewhere (by the actor pool)."""

    def __init__(self, inner, table: dict):
        self.name, self._inner, self.table = inner.name, inner, table

    @property
    def dim(self):
        return self._inner.dim

    def encode(self, texts, **_):
        return np.stack([self.table[t] for t in texts]).astype(np.float32)

    def count_over_window(self, texts):
        return self._inner.count_over_window(texts)


class _EmbedActor:
    def __init__(self, model):
        from persona_index.embed import get_embedder

        self.e = get_embedder(model)

    def encode(self, texts):
        return self.e.encode(list(texts))


def _ray(num_workers):
    ray = attempt_import("ray", "ray")
    if not ray.is_initialized():
        ray.init(num_cpus=max(2, num_workers), include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    return ray


def ingest_file_ray(index: PersonaIndex, path: str, *, num_workers: int = 2, use_gpu: bool = False,
                    window: int = 65536, fmt: str | None = None, licence: str | None = None,
                    text_field: str | None = None, attrs: Sequence[str] | None = None,
                    near_dedup: bool = True, near_dup_threshold: float = DEFAULT_NEAR_DUP,
                    batch_size: int = DEFAULT_BATCH, report: str | None = None, progress: bool = False):
    """Like :func:`persona_index.ingest.ingest_file`, embedding on Ray actors.

    The file is processed in windows of ``window`` rows (bounded memory): each
    window's distinct texts are embedded in chunks by a pool of
    ``num_workers`` actors (created once, the model loaded once per actor),
    then deduplicated and committed in file order by the driver.

    Needs the ``ray`` extra; without it the call fails before reading anything.

    Examples
    --------
    >>> import tempfile
    >>> from unittest import mock
    >>> from persona_index.embed import HashEmbedder
    >>> index = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(16))
    >>> with mock.patch.dict("sys.modules", {"ray": None}):  # as if ray were not installed
    ...     ingest_file_ray(index, "personas.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: ray is needed for this; install it with `pip install 'persona-index[ray]'` (...)
    >>> index.exists
    False
    """
    ray = _ray(num_workers)
    from ray.util import ActorPool
    path = str(path)
    plan = plan_records(iter_file(path, fmt), path=path, text_field=text_field, attrs=attrs)
    embedder = index.embedder
    model = None if embedder.name == "all-MiniLM-L6-v2" else embedder.name
    tf = plan.text_field

    actor = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(_EmbedActor)
    pool = ActorPool([actor.remote(model) for _ in range(num_workers)])

    def embed_window(rows):
        texts = sorted({r[tf].strip() for _, r in rows if isinstance(r.get(tf), str) and r[tf].strip()})
        chunks = [texts[i:i + 512] for i in range(0, len(texts), 512)]
        out = {}
        for chunk, vecs in zip(chunks, pool.map(lambda a, c: a.encode.remote(c), chunks)):
            out.update(zip(chunk, vecs))
        return out

    def windows():
        buf = []
        for item in iter_file(path, fmt):
            buf.append(item)
            if len(buf) >= window:
                yield buf
                buf = []
        if buf:
            yield buf

    summary = None
    rep = _Report(report)  # one report for the whole run, not one per window
    try:
        for rows in windows():
            pre = _Precomputed(embedder, embed_window(rows))
            s = _write_pass(index, lambda: iter(rows), plan, source=path, licence=licence,
                            near_dedup=near_dedup, threshold=near_dup_threshold,
                            batch_size=batch_size, report=None, progress=progress,
                            extra_columns={}, embedder=pre, rep=rep)
            if summary is None:
                summary = s
            else:
                for f in ("read", "added", "exact_duplicates", "near_duplicates", "rejected",
                          "over_token_window", "batches", "seconds", "embed_seconds"):
                    setattr(summary, f, getattr(summary, f) + getattr(s, f))
                summary.version_after = s.version_after
    finally:
        rep.close()
    summary.examples = rep.examples
    return summary


def distributed_farthest(X: np.ndarray, k: int, *, partitions: int = 8, seed=None,
                         per_partition: int | None = None) -> np.ndarray:
    """Two-level k-center: ``per_partition`` (default k) farthest-point picks in
    each of ``partitions`` parallel Ray tasks, then ``k`` picks over their union.

    Needs the ``ray`` extra (it starts a local Ray runtime if none is running);
    without it the call fails with an install hint. The single-process
    equivalent is :func:`persona_index.samplers.farthest.farthest_point`.

    Examples
    --------
    >>> from unittest import mock
    >>> X = np.eye(4, dtype=np.float32)
    >>> with mock.patch.dict("sys.modules", {"ray": None}):  # as if ray were not installed
    ...     distributed_farthest(X, 2, partitions=2, seed=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: ray is needed for this; install it with `pip install 'persona-index[ray]'` (...)
    """
    ray = _ray(2)
    rng = np.random.default_rng(seed)
    n = len(X)
    bounds = np.linspace(0, n, partitions + 1).astype(int)
    per = per_partition or k

    @ray.remote
    def part(block, offset, s):
        sub = farthest_point(block, min(per, len(block)), rng=np.random.default_rng(s))
        return sub + offset

    seeds = rng.integers(2**32, size=partitions)
    refs = [part.remote(X[a:b], a, int(s)) for a, b, s in zip(bounds[:-1], bounds[1:], seeds)]
    union = np.concatenate(ray.get(refs))
    return union[farthest_point(X[union], k, rng=rng)]
