"""The OpenAI-compatible test server: it lives in the package
(``python -m persona_index.synthesis.mock``); tests and benchmarks import it
from here or from there, it is the same server."""

from persona_index.synthesis.mock import MockServer, MockState  # noqa: F401
