"""persona-index: an embedded persona index with a coverage-aware sampler.

The public API, re-exported here. Heavy dependencies (torch,
sentence-transformers, lancedb) are imported on first use, not here.
"""

from .errors import *  # noqa: F401,F403
from .ingest import IngestOptions, ingest_file, ingest_records
from .metrics import coverage_report
from .samplers.base import sample
from .sampling import coverage_of, draw, replay
from .store import Hit, PersonaIndex

__version__ = "0.1.0"

__all__ = ["PersonaIndex", "Hit", "sample", "draw", "replay", "coverage_of", "coverage_report",
           "ingest_file", "ingest_records", "IngestOptions", "__version__"]
