"""persona-index: an embedded persona index with a coverage-aware sampler.

The public API, re-exported here. Heavy dependencies (torch,
sentence-transformers, lancedb) are imported on first use, not here.
"""

from .errors import *  # noqa: F401,F403
from .samplers.base import sample
from .store import Hit, PersonaIndex

__version__ = "0.1.0"

__all__ = ["PersonaIndex", "Hit", "sample", "__version__"]
