"""Progress bars on stderr that stay out of the way of quick work.

A bar shows only once the work has run for :data:`DELAY` seconds, and then
redraws at least every :data:`INTERVAL` seconds even while its counter
stands still (a model loading, one big matrix product): the elapsed time
moves, so a user sees that the work goes on. stdout stays clean for pipes and
JSON.

Examples
--------
>>> import io, contextlib
>>> err = io.StringIO()
>>> with contextlib.redirect_stderr(err):
...     with progress_bar(3, "demo") as bar:
...         bar.update(3)  # done well within DELAY: nothing is drawn
>>> bar.n, err.getvalue()
(3, '')
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time

#: seconds before a bar appears (shorter work shows none)
DELAY = 2.0
#: the most seconds between two redraws of a shown bar
INTERVAL = 1.0


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it",
                 delay: float = DELAY, interval: float = INTERVAL):
    """A tqdm bar on stderr, shown after ``delay`` s and redrawn by a
    background thread at least every ``interval`` s until the block ends."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled,
               delay=delay, mininterval=min(0.2, interval), leave=False, dynamic_ncols=True)
    stop = threading.Event()
    start = time.monotonic()

    def tick():
        while not stop.wait(interval):
            if time.monotonic() - start >= delay:
                with contextlib.suppress(Exception):  # a closed stream must not kill the work
                    bar.refresh()

    t = threading.Thread(target=tick, daemon=True, name="progress")
    if enabled:
        t.start()
    try:
        yield bar
    finally:
        stop.set()
        if enabled:
            t.join()
        shown = enabled and time.monotonic() - start >= delay
        bar.close()
        if shown:  # what is printed next (an error, a summary) starts on a line of its own
            with contextlib.suppress(Exception):
                sys.stderr.write("\n")
                sys.stderr.flush()


def ticks(bar) -> list:
    """The redraw times of a bar (for tests): wraps its ``refresh``."""
    seen: list = []
    refresh = bar.refresh

    def counted(*a, **kw):
        seen.append(time.monotonic())
        return refresh(*a, **kw)

    bar.refresh = counted
    return seen
