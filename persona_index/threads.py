"""BLAS threads sized to the work.

OpenBLAS threads spin while they wait. On a machine whose cores are busy
(another job, a second process of ours) a product split over every core
waits on the slowest one, and a small product spends more time in that
hand-off than in arithmetic: ``coverage --compare-uniform 5`` on 5,000
personas took 20-70 s with the default threads and 2-4 s with one thread
beside one CPU-bound process (issue #23), and on a 2-core machine with other
jobs running an SVD of 5,000 x 384 took 19.5 s on two threads against 1.3 s
on one. So: one thread below :data:`SMALL_MADDS` multiply-adds; above it,
the CPUs this process may run on less those the 1-minute load average says
are busy (at least one).

threadpoolctl limits the BLAS libraries loaded at the time of the call, so
:func:`blas_limit` is entered after the imports it is meant to cover (the
metrics import nothing heavier than numpy). Without threadpoolctl it does
nothing.

Examples
--------
>>> blas_threads(1e6)
1
>>> 1 <= blas_threads(1e12) <= usable_cpus()
True
>>> import numpy as np
>>> with blas_limit(1e6):
...     float((np.ones((4, 4)) @ np.ones(4)).sum())
16.0
"""

from __future__ import annotations

import contextlib
import math
import os

#: below this many multiply-adds a product runs on one BLAS thread
SMALL_MADDS = 5e7


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def idle_cpus() -> int:
    """The usable CPUs less the 1-minute load average (rounded up), at least 1."""
    cpus = usable_cpus()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not Unix
        return cpus
    return max(1, min(cpus, cpus - math.ceil(load - 0.5)))


def blas_threads(madds: float) -> int:
    """BLAS threads for a product of ``madds`` multiply-adds (see the module).

    ``$PERSONA_INDEX_BLAS_THREADS`` overrides the rule: a number of threads,
    or ``off`` to leave the libraries' own setting alone."""
    env = os.environ.get("PERSONA_INDEX_BLAS_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return 1 if madds < SMALL_MADDS else idle_cpus()


@contextlib.contextmanager
def blas_limit(madds: float):
    """Run the block with :func:`blas_threads` ``(madds)`` BLAS threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        threadpool_limits = None
    if threadpool_limits is None or os.environ.get("PERSONA_INDEX_BLAS_THREADS") == "off":
        yield
        return
    with threadpool_limits(limits=blas_threads(madds), user_api="blas"):
        yield
