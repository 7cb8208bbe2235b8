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
* :func:`distributed_default`: the default strategy (herding) in two rounds:
  each partition runs it for ``oversample * k`` picks in a Ray task and
  reports each pick's mass (how many of the partition's rows have it as
  their nearest pick); the driver runs mass-weighted herding over the union.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings

import numpy as np

from ._lazy import attempt_import
from .errors import IngestWarning
from .ingest import IngestOptions, IngestSummary, ingest_records
from .plan import prepare_file, warn
from .samplers.farthest import farthest_point
from .samplers.herding import REFERENCE, herding_select
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


def partition_picks(X: np.ndarray, k: int, *, seed=None, tau: float = 0.2, beta: float = 0.5,
                    reference: int = REFERENCE, candidates: int | None = None,
                    block: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """One partition's round of :func:`distributed_default`: ``k`` herding
    picks (rows of ``X``) and each pick's mass, the number of rows of ``X``
    whose nearest pick it is (ties to the lowest pick). Masses sum to ``len(X)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> rows, mass = partition_picks(X, 12, seed=0)
    >>> len(set(rows.tolist())), int(mass.sum()), bool((mass >= 1).all())
    (12, 300, True)
    """
    k = min(int(k), len(X))
    rows = herding_select(X, k, tau=tau, beta=beta, rng=seed, reference=reference,
                          candidates=candidates)
    P = np.ascontiguousarray(X[rows].T)
    mass = np.zeros(k, dtype=np.int64)
    for s in range(0, len(X), block):
        mass += np.bincount((X[s:s + block] @ P).argmax(axis=1), minlength=k)
    return rows, mass


def distributed_default(X: np.ndarray, k: int, *, partitions: int = 8, oversample: int = 2,
                        seed=None, workers: int = 2, tau: float = 0.2, beta: float = 0.5,
                        reference: int = REFERENCE, candidates: int | None = None,
                        prior: np.ndarray | None = None) -> np.ndarray:
    """The default strategy in two composable rounds on Ray.

    Round 1: ``partitions`` contiguous row blocks, each a Ray task running
    :func:`partition_picks` (herding for ``oversample * k`` picks, with masses).
    Round 2, on the driver: herding over the union of the picks, its typicality
    term ``mu`` weighted by the masses (so each pick stands for the rows it
    covers), candidates = the union. Seeds: one per partition and one for the
    driver, all from ``seed`` (``np.random.default_rng``), so a seed gives the
    same batch whatever the number of workers. ``prior`` (vectors already
    drawn) is continued by the driver's round.

    Needs the ``ray`` extra (it starts a local Ray runtime with ``workers``
    CPUs if none is running). Returns ``k`` distinct row indices into ``X``.

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
    ray = _ray(workers)
    rng = np.random.default_rng(seed)
    n = len(X)
    partitions = max(1, min(int(partitions), n))
    bounds = np.linspace(0, n, partitions + 1).astype(int)
    seeds = rng.integers(2**32, size=partitions)
    per = int(oversample) * int(k)
    kw = dict(tau=tau, beta=beta, reference=reference, candidates=candidates)

    @ray.remote
    def part(block, offset, s):
        rows, mass = partition_picks(block, per, seed=int(s), **kw)
        return rows + offset, mass

    X_ref = ray.put(X) if n * X.shape[1] >= 1 << 20 else None
    if X_ref is not None:
        @ray.remote
        def part_of(Xall, a, b, s):
            rows, mass = partition_picks(Xall[a:b], per, seed=int(s), **kw)
            return rows + a, mass

        refs = [part_of.remote(X_ref, int(a), int(b), s)
                for a, b, s in zip(bounds[:-1], bounds[1:], seeds)]
    else:
        refs = [part.remote(X[a:b], int(a), s) for a, b, s in zip(bounds[:-1], bounds[1:], seeds)]
    got = ray.get(refs)
    union = np.concatenate([r for r, _ in got])
    mass = np.concatenate([m for _, m in got]).astype(np.float64)
    pos = herding_select(X[union], min(int(k), len(union)), rng=rng, weights=mass, prior=prior,
                         **{**kw, "candidates": len(union)})
    return union[pos]
