"""Ray as an executor, and nothing else: start (or join) a local Ray runtime
and run one function over many argument tuples in Ray tasks.

It imports no other module of the package, so a strategy can offer a Ray
engine (:func:`persona_index.samplers.herding.two_round`) without an import
circle through :mod:`persona_index.distributed`.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ._lazy import attempt_import


def ray_runtime(workers: int = 2):
    """The ``ray`` module with a runtime up: the running one, else a local one
    with ``max(2, workers)`` CPUs. Needs the ``ray`` extra
    (:class:`~persona_index.errors.MissingDependencyError` names it).

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict("sys.modules", {"ray": None}):  # as if ray were not installed
    ...     ray_runtime()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: ray is needed for this; install it with `pip install 'persona-index[ray]'` (...)
    """
    ray = attempt_import("ray", "ray")
    if not ray.is_initialized():
        ray.init(num_cpus=max(2, workers), include_dashboard=False, log_to_driver=False,
                 ignore_reinit_error=True)
    return ray


def ray_map(fn: Callable, calls: Sequence[tuple], *, shared=None, workers: int = 2) -> list:
    """``[fn(shared, *c) for c in calls]``, each call a Ray task; ``shared``
    (a large array, say) goes into Ray's object store once and every task
    reads it from there. Results in the order of ``calls``.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict("sys.modules", {"ray": None}):
    ...     ray_map(max, [(1,), (2,)], shared=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: ray is needed for this; ...
    """
    ray = ray_runtime(workers)
    task = ray.remote(fn)
    ref = ray.put(shared)
    return ray.get([task.remote(ref, *c) for c in calls])
