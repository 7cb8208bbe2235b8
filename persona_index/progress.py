"""Progress bars on stderr that stay out of the way of quick work.

A bar shows only once the work has run for :data:`DELAY` seconds, and
redraws at most every :data:`INTERVAL` seconds (and at least that often
while its counter moves), so stdout stays clean for pipes and JSON.

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

import sys

#: seconds before a bar appears (shorter work shows none)
DELAY = 2.0
#: the most seconds between two redraws of a moving bar
INTERVAL = 1.0


def progress_bar(total: int | None, desc: str, *, enabled: bool = True, unit: str = "it"):
    """A tqdm bar on stderr (a context manager), shown after :data:`DELAY` s."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled,
                delay=DELAY, mininterval=0.2, maxinterval=INTERVAL, leave=False,
                dynamic_ncols=True)
