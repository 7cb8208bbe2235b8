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
* :func:`distributed_default`: the default strategy (herding) over
  partitions in Ray tasks: by default each partition sends the rows the
  default reads and the driver herds them (the single-machine batch, row for
  row); ``rounds="coreset"`` is the composable two-round selection (each
  partition herds ``oversample * k`` picks with masses, the driver herds
  their union).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings

import numpy as np

from .errors import IngestOptionError, IngestWarning
from .ingest import IngestOptions, IngestSummary, ingest_records
from .plan import prepare_file, warn
from .samplers.farthest import farthest_point
from .samplers.herding import (  # noqa: F401 (re-exported)
    BETA,
    CANDIDATES_PER_PICK,
    RAMP,
    REFERENCE,
    partition_picks,
    two_round,
)
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
    from .raymap import ray_runtime

    return ray_runtime(num_workers)


def ingest_file_ray(index: PersonaIndex, path: str, options: IngestOptions | None = None, *,
                    num_workers: int = 2, use_gpu: bool = False, window: int = 65536,
                    **overrides) -> IngestSummary:
    """Like :func:`persona_index.ingest.ingest_file`, embedding on Ray actors.

    The file is validated once, as a whole (:func:`persona_index.plan.prepare_file`),
    then processed in windows of ``window`` rows (bounded memory): each
    window's distinct texts are embedded in chunks by a pool of
    ``num_workers`` actors (created once, the model loaded once per actor),
    then ingested in file order by the driver through the public
    :func:`persona_index.ingest.ingest_records`, with the actors' vectors as its
    embedder. The windows' summaries add up with :meth:`IngestSummary.merge`.
    ``options`` and ``overrides``: as for ``ingest_file``.

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
    if (options and options.vectors_field) or overrides.get("vectors_field"):
        raise IngestOptionError("precomputed vectors (vectors_field) need no embedding: ingest "
                                "them in one process (ingest_file), not on Ray")
    ray = _ray(num_workers)
    from ray.util import ActorPool

    path = str(path)
    prep = prepare_file(index, path, options, **overrides)
    # the windows are read as the plan read them: schema, template and bands applied once
    opts = dataclasses.replace(prep.options, schema=None, template=None, bands=None)
    embedder = index.embedder
    model = None if embedder.name == "all-MiniLM-L6-v2" else embedder.name
    tf = prep.plan.text_field
    actor = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0)(_EmbedActor)
    pool = ActorPool([actor.remote(model) for _ in range(num_workers)])

    def embed_window(rows):
        texts = sorted({r[tf].strip() for _, r in rows if isinstance(r.get(tf), str) and r[tf].strip()})
        chunks = [texts[i:i + 512] for i in range(0, len(texts), 512)]
        out = {}
        for chunk, vecs in zip(chunks, pool.map(lambda a, c: a.encode.remote(c), chunks)):
            out.update(zip(chunk, vecs))
        return out

    summary = None
    own = isinstance(opts.report, (str, os.PathLike))
    report = open(opts.report, "w", encoding="utf-8") if own else opts.report  # one for the run
    try:
        with warnings.catch_warnings():  # warned once below, for the whole run
            warnings.simplefilter("ignore", IngestWarning)
            for rows in _windows(prep.records(), window):
                s = ingest_records(index, rows, opts, plan=prep.plan, source=path, report=report,
                                   embedder=_Precomputed(embedder, embed_window(rows)))
                summary = s if summary is None else summary.merge(s)
    finally:
        if own:
            report.close()
    for message in summary.warnings():
        warn(message)
    return summary


def _windows(records, size: int):
    it = iter(records)
    while rows := list(itertools.islice(it, size)):
        yield rows


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


def distributed_default(X: np.ndarray, k: int, *, partitions: int = 8, rounds: str = "gather",
                        oversample: int = 2, seed=None, workers: int = 2, tau: float = 0.2,
                        beta: float = BETA, ramp: str = RAMP, reference: int = REFERENCE,
                        candidates: int | None = None, prior: np.ndarray | None = None,
                        candidates_per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """The default with its partitions in Ray tasks.

    ``rounds="gather"``: :func:`persona_index.samplers.herding.gathered` with
    Ray as its executor: each partition sends the rows the default reads (the
    seeded candidate and reference rows), the driver herds them, so the batch
    is the single-machine default's, row for row. ``rounds="coreset"``:
    :func:`persona_index.samplers.herding.two_round` (each partition herds
    ``oversample * k`` picks with masses, the driver herds their union), whose
    picks equal the local two-round's but not the single-machine default's.
    ``workers``: the local runtime's CPUs when none is running.

    Needs the ``ray`` extra (it starts a local Ray runtime with ``workers``
    CPUs if none is running). Returns ``k`` distinct row indices into ``X``;
    ``k`` must be between 1 and ``len(X)`` (``ValueError``).

    Examples
    --------
    >>> from unittest import mock
    >>> X = np.eye(4, dtype=np.float32)
    >>> with mock.patch.dict("sys.modules", {"ray": None}):  # as if ray were not installed
    ...     distributed_default(X, 2, partitions=2, seed=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: ray is needed for this; install it with `pip install 'persona-index[ray]'` (...)
    """
    from .samplers.herding import herding

    if not 1 <= int(k) <= len(X):
        raise ValueError(f"k must be between 1 and the pool's {len(X)} rows, got {k}")
    return herding(X, k, rng=np.random.default_rng(seed), prior=prior, tau=tau, beta=beta, ramp=ramp,
                   reference=reference, candidates=candidates, device="numpy", engine="ray",
                   workers=workers, partitions=partitions, rounds=rounds, oversample=oversample,
                   candidates_per_pick=candidates_per_pick)
