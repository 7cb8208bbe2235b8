"""Bulk embedding faster than ``SentenceTransformer.encode`` on a GPU.

On a GPU, ``encode`` of a small model such as MiniLM-L6 is bound by the host:
it tokenises each batch in the Python thread that then waits for the GPU, so
the GPU idles while the host tokenises and the host idles while the GPU runs.
:class:`FastEncoder` takes the model object as it is (its tokenizer, its
modules, its pooling and normalisation) and changes only how the work is fed:

* tokenisation runs on a pool of host threads through the fast tokenizer's
  batch API (the Rust tokenizer releases the GIL), over large chunks;
* the next chunk is tokenised and padded while the GPU embeds the current one;
* batches are length-bucketed: each chunk is sorted by token count, so a
  batch pads to the length of texts of about its own length;
* on CUDA the model runs in fp16 (a private copy; the model passed in is left
  as it was).

The vectors are the model's own (same pooling, same ``Normalize``): with fp32
on a CPU they match ``encode`` to float rounding; fp16 on a GPU keeps cosine
>= 0.999 to fp32 (the ``gpu`` benchmark section measures both the speed ratio
and the cosine on the device).

Examples
--------
>>> from persona_index.embed import get_embedder
>>> model = get_embedder().model
>>> texts = ["a nurse in Kenya", "a welder in Chile who restores old motorbikes", "a judge"]
>>> V = FastEncoder(model, batch_size=2).encode(texts)
>>> V.shape, V.dtype, bool(((V * model.encode(texts)).sum(axis=1) > 0.9999).all())
((3, 384), dtype('float32'), True)
"""

from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ._lazy import attempt_import
from .errors import DeviceError


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int = 0):
    """``(input_ids, attention_mask)``: token id lists right-padded into two
    ``(b, longest)`` int64 arrays, without a Python loop per token.

    Examples
    --------
    >>> ids, mask = pad_batch([[101, 7, 102], [101, 102]])
    >>> ids.tolist(), mask.tolist()
    ([[101, 7, 102], [101, 102, 0]], [[1, 1, 1], [1, 1, 0]])
    """
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    width = int(lens.max()) if len(lens) else 0
    mask = np.arange(width)[None, :] < lens[:, None]
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    if width:
        ids[mask] = np.fromiter((t for s in seqs for t in s), dtype=np.int64,
                                count=int(lens.sum()))
    return ids, mask.astype(np.int64)


class FastEncoder:
    """Embed many texts with a loaded ``SentenceTransformer`` (see the module docstring).

    Parameters
    ----------
    model : a ``sentence_transformers.SentenceTransformer`` with a fast
        (Rust) tokenizer, on the device it should run on.
    fp16 : run a half-precision copy of the model; default: on CUDA only
        (on a CPU half precision is slow and is refused).
    batch_size : texts per forward pass (default 512 on CUDA, 64 on a CPU).
    chunk : texts tokenised and length-sorted together (default 16,384).
    workers : tokenising threads (default: the CPU count, at most 8).

    Examples
    --------
    >>> from persona_index.embed import get_embedder
    >>> enc = FastEncoder(get_embedder().model)
    >>> enc.fp16, enc.batch_size, enc.encode([]).shape
    (False, 64, (0, 384))
    """

    def __init__(self, model, *, fp16: bool | None = None, batch_size: int | None = None,
                 chunk: int = 16384, workers: int | None = None):
        torch = attempt_import("torch", "embed")
        from tokenizers import Tokenizer

        self.torch = torch
        self.device = model.device
        cuda = self.device.type == "cuda"
        self.fp16 = cuda if fp16 is None else bool(fp16)
        if self.fp16 and not cuda:
            raise DeviceError(f"fp16 embedding runs on CUDA only; the model is on {self.device}")
        self.model = copy.deepcopy(model).half() if self.fp16 else model
        self.model.eval()
        self.batch_size = int(batch_size or (512 if cuda else 64))
        self.chunk = int(chunk)
        self.workers = int(workers or min(8, os.cpu_count() or 1))
        hf_tok = model.tokenizer
        if not getattr(hf_tok, "is_fast", False):
            raise TypeError(f"{type(hf_tok).__name__} is not a fast tokenizer")
        # a private copy of the Rust tokenizer: the model's own keeps its settings
        self._tok = Tokenizer.from_str(hf_tok.backend_tokenizer.to_str())
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=int(model.max_seq_length))
        self.pad_id = int(hf_tok.pad_token_id or 0)
        probe = model.preprocess(["a"]) if hasattr(model, "preprocess") else model.tokenize(["a"])
        self._token_types = "token_type_ids" in probe
        # keys such as ``modality`` that the modules read besides the tensors
        self._extra = {k: v for k, v in probe.items() if not isinstance(v, torch.Tensor)}
        self.dim = int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                       else model.get_sentence_embedding_dimension())

    # -- host side: tokenise, sort by length, pad --------------------------------
    def _encode_ids(self, texts: list) -> list:
        return [e.ids for e in self._tok.encode_batch(texts)]

    def _prepare(self, pool, texts: list, offset: int) -> list:
        """The batches of one chunk: ``(rows, input_ids, attention_mask)``, rows
        being positions in the whole input, shortest texts first."""
        step = -(-len(texts) // self.workers)
        parts = [texts[s:s + step] for s in range(0, len(texts), step)]
        ids = [x for part in pool.map(self._encode_ids, parts) for x in part]
        lens = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lens, kind="stable")
        out = []
        for s in range(0, len(order), self.batch_size):
            rows = order[s:s + self.batch_size]
            input_ids, mask = pad_batch([ids[i] for i in rows], self.pad_id)
            out.append((rows + offset, input_ids, mask))
        return out

    # -- device side ----------------------------------------------------------
    def _embed(self, batches: list):
        torch = self.torch
        cuda = self.device.type == "cuda"
        rows, embs = [], []
        for r, input_ids, mask in batches:
            ids_t, mask_t = torch.from_numpy(input_ids), torch.from_numpy(mask)
            if cuda:
                ids_t = ids_t.pin_memory().to(self.device, non_blocking=True)
                mask_t = mask_t.pin_memory().to(self.device, non_blocking=True)
            feats = {"input_ids": ids_t, "attention_mask": mask_t, **self._extra}
            if self._token_types:
                feats["token_type_ids"] = torch.zeros_like(ids_t)
            out = self.model(feats)["sentence_embedding"]
            rows.append(r)
            embs.append(out.float())
        return np.concatenate(rows), torch.cat(embs).cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` float32 unit vectors of ``texts``, in input order."""
        texts = list(texts)
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        starts = list(range(0, n, self.chunk))
        with ThreadPoolExecutor(self.workers) as pool, ThreadPoolExecutor(1) as feeder, \
                self.torch.inference_mode():
            nxt = feeder.submit(self._prepare, pool, texts[:self.chunk], 0)
            for i, s in enumerate(starts):
                batches = nxt.result()
                if i + 1 < len(starts):  # tokenise the next chunk while this one embeds
                    t = starts[i + 1]
                    nxt = feeder.submit(self._prepare, pool, texts[t:t + self.chunk], t)
                rows, emb = self._embed(batches)
                out[rows] = emb
        return out
