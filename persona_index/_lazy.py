"""Import heavy optional modules on first use, with an install hint."""

from __future__ import annotations

import importlib
import os

from .errors import MissingDependencyError


def attempt_import(module: str, extra: str):
    """Import ``module`` or raise MissingDependencyError naming ``extra``.

    Examples
    --------
    >>> attempt_import("json", "embed").dumps([1])
    '[1]'
    >>> attempt_import("no_such_module_xyz", "plots")
    Traceback (most recent call last):
    ...
    persona_index.errors.MissingDependencyError: no_such_module_xyz is needed for this; install it with `pip install 'persona-index[plots]'` (No module named 'no_such_module_xyz')
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            f"{module} is needed for this; install it with "
            f"`pip install 'persona-index[{extra}]'` ({exc})"
        ) from exc


def quiet_libraries() -> None:
    """Silence hub lookups, progress bars and WARN lines of our dependencies.

    Only sets variables the user has not set.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"TRANSFORMERS_VERBOSITY": "info"}, clear=True):
    ...     quiet_libraries()
    ...     os.environ["HF_HUB_OFFLINE"], os.environ["TRANSFORMERS_VERBOSITY"]
    ('1', 'info')
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("LANCEDB_LOG", "error")
    os.environ.setdefault("LANCE_LOG", "error")
