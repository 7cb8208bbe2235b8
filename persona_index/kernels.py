"""Torch kernels for the heavy array work, and the choice of numpy or torch per call.

Four kernels have a torch twin here that mirrors the numpy one step by step
(same algorithm, same tie rule), so that on a CPU the picks are identical to
numpy's wherever the data has no float near-ties. Kernels take rows; the
strategies choose them: the seeded candidate and reference draws happen once,
in the strategy's module, and both kernels get the same rows (nothing here
imports a sampler). The kernels:

* :func:`farthest_point_torch`: the blocked greedy k-center of
  :func:`persona_index.samplers.farthest.farthest_point`;
* :func:`herding_torch`: the default strategy's kernel
  (:func:`persona_index.samplers.herding.herding_select` draws its rows);
* :func:`knn_distance_torch`: inverse-density's k-NN distances
  (:func:`persona_index.samplers.density.knn_distance` draws the reference rows);
* :func:`top_k_torch`: exact similar / distant over a matrix kept resident on
  the device (:meth:`persona_index.snapshot.Snapshot.rank`).

Devices
-------
Every entry point takes ``device``, one of :data:`DEVICES`:

``"numpy"``
    the numpy kernels (never imports torch);
``"torch-cpu"``
    the torch kernels on the CPU (what the tests compare with numpy);
``"cuda"``
    the torch kernels on torch's current CUDA device (``CUDA_VISIBLE_DEVICES``
    picks which); :class:`~persona_index.errors.DeviceError` if torch sees none;
``"auto"`` (the default)
    the value of ``$PERSONA_INDEX_DEVICE`` when it is set, else ``"cuda"`` when
    torch is *already imported* in this process, sees a CUDA device and the
    matrix has at least :data:`AUTO_CUDA_MIN_ELEMENTS` elements (n x d), else
    ``"numpy"``.

Choosing never imports torch by itself: importing it costs seconds, more than
the work it would speed up on a CPU (a cold ``similar`` query must stay
torch-free). So on a CPU-only process ``auto`` is numpy, and a process that has
loaded torch anyway (it embedded with sentence-transformers) gets the GPU for
large inputs for free; anyone else asks for it with ``device="cuda"``,
``--device cuda`` or ``PERSONA_INDEX_DEVICE=cuda``.

Examples
--------
>>> resolve_device("numpy"), resolve_device("auto", size=10)
('numpy', 'numpy')
>>> resolve_device("gpu")
Traceback (most recent call last):
...
persona_index.errors.DeviceError: unknown device 'gpu'; valid: auto, numpy, torch-cpu, cuda
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from .errors import DeviceError
from .samplers.registry import DEVICES

#: ``auto`` takes CUDA only for a matrix of at least this many elements (n x d:
#: about 11k personas of 384 dimensions); below, launch and copy costs dominate
AUTO_CUDA_MIN_ELEMENTS = 1 << 22
#: the environment variable that sets what ``auto`` means
DEVICE_ENV = "PERSONA_INDEX_DEVICE"
#: elements of one (rows x columns) product block on CUDA (2 GiB in float32)
_CUDA_BLOCK_ELEMENTS = 1 << 29

__all__ = ["DEVICES", "AUTO_CUDA_MIN_ELEMENTS", "DEVICE_ENV", "resolve_device", "cuda_available",
           "farthest_point_torch", "herding_torch", "knn_distance_torch", "top_k_torch",
           "top_k_numpy", "as_tensor"]


def _torch():
    from ._lazy import attempt_import

    return attempt_import("torch", "embed")


def cuda_available() -> bool:
    """Whether torch sees a CUDA device. Imports torch: call it only once a
    torch device was asked for, or when torch is already loaded.

    Examples
    --------
    >>> isinstance(cuda_available(), bool)
    True
    """
    try:
        torch = _torch()
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str | None = "auto", size: int = 0) -> str:
    """The kernel family a call runs on: ``"numpy"``, ``"torch-cpu"`` or ``"cuda"``.

    Parameters
    ----------
    device : one of :data:`DEVICES` (None means ``"auto"``); see the module
        docstring for what ``auto`` picks.
    size : elements of the matrix the call works on (``X.size``), for ``auto``.

    ``auto`` never imports torch; ``"torch-cpu"`` and ``"cuda"`` do (a
    :class:`~persona_index.errors.MissingDependencyError` names the extra when
    it is not installed), and ``"cuda"`` raises
    :class:`~persona_index.errors.DeviceError` when torch sees no GPU.

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> resolve_device("auto", size=10**9) in ("numpy", "cuda")  # cuda only if torch is loaded
    True
    >>> with mock.patch.dict(os.environ, {"PERSONA_INDEX_DEVICE": "torch-cpu"}):
    ...     resolve_device("auto"), resolve_device("numpy")
    ('torch-cpu', 'numpy')
    """
    if device is None:
        device = "auto"
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; valid: {', '.join(DEVICES)}")
    if device == "auto":
        env = os.environ.get(DEVICE_ENV, "").strip()
        if env and env != "auto":
            if env not in DEVICES:
                raise DeviceError(f"${DEVICE_ENV}={env!r} is not a device; valid: "
                                  f"{', '.join(DEVICES)}")
            device = env
        elif size >= AUTO_CUDA_MIN_ELEMENTS and "torch" in sys.modules and cuda_available():
            return "cuda"
        else:
            return "numpy"
    if device == "numpy":
        return device
    torch = _torch()
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device 'cuda' was asked for but torch {torch.__version__} sees no CUDA "
                          f"device (built for CUDA {torch.version.cuda}); use auto, numpy or "
                          "torch-cpu")
    return device


def _torch_device(device: str) -> str:
    if device == "torch-cpu":
        return "cpu"
    if device == "cuda":
        return "cuda"
    raise DeviceError(f"the torch kernels run on 'torch-cpu' or 'cuda', got {device!r}")


def as_tensor(X, device: str = "torch-cpu", dtype=None):
    """``X`` (numpy or torch) as a torch tensor on ``device`` (``"torch-cpu"``,
    ``"cuda"``), converted to ``dtype`` if given. A numpy array is shared, not
    copied, on the CPU (read-only arrays too: the kernels never write to it).

    Examples
    --------
    >>> X = np.eye(2, dtype=np.float32)
    >>> X.flags.writeable = False
    >>> t = as_tensor(X)
    >>> t.dtype, tuple(t.shape), t.device.type
    (torch.float32, (2, 2), 'cpu')
    """
    torch = _torch()
    dev = _torch_device(device)
    if isinstance(X, torch.Tensor):
        t = X
    else:
        X = np.ascontiguousarray(X)
        with warnings.catch_warnings():  # read-only snapshot matrices: we only read them
            warnings.filterwarnings("ignore", message=".*not writ.*")
            t = torch.from_numpy(X)
    if t.device.type != dev:
        t = t.to(dev)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t


def _index(torch, idx, dev):
    return torch.as_tensor(np.asarray(idx, dtype=np.int64), device=dev)


def _max_similarity_(torch, X, C, out, block: int) -> None:
    """out = max(out, max over rows of C of X @ c), chunked over the rows of X."""
    n = X.shape[0]
    CT = C.T
    for s in range(0, n, block):
        e = min(n, s + block)
        torch.maximum(out[s:e], (X[s:e] @ CT).amax(dim=1).float(), out=out[s:e])


def farthest_point_torch(X, k: int, *, start: int | None = None, prior=None, rng=None,
                         front: int | None = None, block: int | None = None,
                         device: str = "torch-cpu", dtype=None, stats: dict | None = None
                         ) -> np.ndarray:
    """Blocked greedy k-center in torch: :func:`~persona_index.samplers.farthest.farthest_point`
    step by step (the same front-runners, passes and lowest-index tie rule).

    Parameters
    ----------
    X : (n, d) float32 unit vectors, numpy or a torch tensor (already on the
        device: no copy).
    k, start, prior, rng, front, stats : as in ``farthest_point``; ``rng`` (a
        numpy Generator) draws the start exactly as there.
    block : rows per chunk of a full pass (default 65,536 on the CPU; on CUDA
        as many as keep a chunk's product under 2^29 elements).
    device : ``"torch-cpu"`` or ``"cuda"``.
    dtype : torch dtype of the matrix (default: X's); ``torch.float16`` halves
        the bytes a pass reads on a GPU, at fp16 rounding of the similarities.

    Returns
    -------
    (k,) int64 numpy array of row indices, in pick order.

    Examples
    --------
    >>> from persona_index.samplers.farthest import farthest_point
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.standard_normal((500, 16)).astype(np.float32)
    >>> Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    >>> a = farthest_point_torch(Y, 20, start=7, front=32)
    >>> a[:5].tolist(), np.array_equal(a, farthest_point(Y, 20, start=7, front=32))
    ([7, 412, 396, 228, 405], True)
    """
    torch = _torch()
    dev = _torch_device(device)
    Xt = as_tensor(X, device, dtype)
    n = int(Xt.shape[0])
    maxsim = torch.full((n,), float("-inf"), dtype=torch.float32, device=dev)

    def rows_per_block(p: int) -> int:
        if block is not None:
            return int(block)
        if dev == "cpu":
            return 65536
        return max(4096, _CUDA_BLOCK_ELEMENTS // max(p, 1))

    chosen: list[int] = []
    pending: list[int] = []
    if prior is not None and len(prior):
        P = as_tensor(prior, device, Xt.dtype)
        for s in range(0, len(P), 256):
            C = P[s:s + 256]
            _max_similarity_(torch, Xt, C, maxsim, rows_per_block(len(C)))
    else:
        first = int(rng.integers(n)) if start is None else int(start)
        chosen.append(first)
        pending.append(first)
    L = min(n, front or max(256, 8 * k))
    passes = 0
    inf = float("inf")
    while len(chosen) < k:
        if pending:
            _max_similarity_(torch, Xt, Xt[_index(torch, pending, dev)], maxsim,
                             rows_per_block(len(pending)))
            passes += 1
            pending = []
        maxsim[_index(torch, chosen, dev)] = inf
        if L >= n:
            F = torch.arange(n, device=dev)
            T = inf
        else:
            vals, idx = torch.topk(maxsim, L + 1, largest=False, sorted=True)
            T = float(vals[L])
            F = torch.sort(idx[:L]).values  # ascending rows: argmin's first hit is the lowest index
        F_host = F.cpu().numpy()
        XF = Xt[F]
        fs = maxsim[F].clone()
        made = 0
        while len(chosen) < k:
            m = torch.min(fs, dim=0)
            val, j = float(m.values), int(m.indices)
            if not val < T:  # cannot be sure nobody outside F is better
                break
            pick = int(F_host[j])
            chosen.append(pick)
            pending.append(pick)
            made += 1
            torch.maximum(fs, (XF @ Xt[pick]).float(), out=fs)
            fs[j] = inf
        if made < 4 and L < n:  # ties at the threshold, or too few picks per pass
            L = min(n, L * 2)
    if stats is not None:
        stats.update(passes=passes, front=L)
    return np.asarray(chosen[:k], dtype=np.int64)


def _kernel(torch, S, tau: float):
    """exp((S - 1) / tau), in place, in the steps of herding's numpy ``_kernel_``."""
    S -= 1.0
    S *= float(np.float32(1.0 / tau))
    return torch.exp_(S)


def _mean_kernel(torch, X, R, tau: float, block: int = 8192, weights=None):
    out = torch.empty(X.shape[0], dtype=torch.float32, device=X.device)
    RT = R.T
    w = None
    if weights is not None:  # normalised in float64 then float32, as the numpy kernel does
        w = torch.as_tensor((np.asarray(weights, np.float64) / np.sum(weights)).astype(np.float32),
                            device=X.device)
    for s in range(0, X.shape[0], block):
        S = _kernel(torch, X[s:s + block] @ RT, tau)
        out[s:s + block] = S.mean(dim=1) if w is None else S @ w
    return out


def _masked_mean_std(torch, v, free, count: int):
    """Mean and (population) standard deviation of ``v[free]``, with no
    host sync (``count`` is how many are free); a zero deviation becomes 1."""
    mean = torch.where(free, v, 0.0).sum() / count
    dev = torch.where(free, v - mean, 0.0)
    sd = torch.sqrt((dev * dev).sum() / count)
    return mean, torch.where(sd > 0, sd, torch.ones_like(sd))


def spread_weight(beta: float, ramp: str, j: int, k: int) -> float:
    """The spread weight at pick ``j`` (0-based) of ``k``: ``beta`` throughout
    (``ramp="none"``), or ``beta * j / k`` (``"linear"``), in float32 so the numpy
    and torch kernels weigh alike (herding's default rule and its constant rule,
    :mod:`persona_index.samplers.herding`).

    Examples
    --------
    >>> spread_weight(1.0, "linear", 0, 4), spread_weight(1.0, "linear", 2, 4)
    (0.0, 0.5)
    >>> spread_weight(0.5, "none", 3, 4)
    0.5
    """
    if ramp == "none":
        return float(np.float32(beta))
    return float(np.float32(beta) * np.float32(j) / np.float32(k))


def herding_torch(X, cand: np.ndarray, ref: np.ndarray, k: int, *, tau: float = 0.2,
                  beta: float = 1.0, ramp: str = "linear", prior=None,
                  device: str = "torch-cpu", weights=None) -> np.ndarray:
    """Kernel herding with a spread term in torch, on rows the caller chose:
    the twin of herding's numpy kernel, step by step.

    Parameters
    ----------
    X : (n, d) float32 unit vectors, numpy or a torch tensor.
    cand, ref : sorted int row arrays (candidates, reference rows), as
        :func:`persona_index.samplers.herding.herding_rows` draws them.
    k, tau, beta, ramp, prior, weights : as in
        :func:`~persona_index.samplers.herding.herding_select` (``weights``:
        one mass per row of ``ref``).

    Returns
    -------
    (k,) int64 numpy array of positions into ``cand``, in pick order. Each
    pick runs on the device with no host round trip (the picks come back
    once, at the end). Ties break by the lowest index, as ``argmax`` does.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> rows = np.arange(200)
    >>> herding_torch(X, rows, rows, 10)[:5].tolist()
    [111, 31, 66, 10, 177]
    """
    torch = _torch()
    dev = _torch_device(device)
    Xt = as_tensor(X, device)
    n = int(Xt.shape[0])
    # a float16 matrix (the half-size warm matrix) is converted at these rows only
    Xc = (Xt if len(cand) == n else Xt[_index(torch, cand, dev)]).float()
    R = (Xt if len(ref) == n else Xt[_index(torch, ref, dev)]).float()
    mu = _mean_kernel(torch, Xc, R, tau, weights=weights)
    m = len(cand)
    K = torch.zeros(m, dtype=torch.float32, device=dev)
    d = torch.full((m,), float("inf"), dtype=torch.float32, device=dev)
    t = 0
    if prior is not None and len(prior):
        P = as_tensor(prior, device, torch.float32)
        for s in range(0, len(P), 256):
            S = Xc @ P[s:s + 256].T
            torch.minimum(d, 1.0 - S.amax(dim=1), out=d)
            K += _kernel(torch, S, tau).sum(dim=1)
        t = len(P)
    free = torch.ones(m, dtype=torch.bool, device=dev)
    picks = torch.empty(k, dtype=torch.int64, device=dev)
    wz = None
    if weights is not None and len(cand) == len(ref) == n:
        wz = torch.as_tensor(np.asarray(weights, dtype=np.float32), device=dev)
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float32, device=dev)
    for j in range(k):
        b = spread_weight(beta, ramp, j, k)
        h = mu - K / float(np.float32(t + 1))
        if t > 0 and wz is not None:  # mass-weighted z-scores, as the numpy kernel
            wf = wz * free
            W = wf.sum()
            mh, md = (wf @ h) / W, (wf @ d) / W
            sh, sd = torch.sqrt(wf @ (h - mh) ** 2 / W), torch.sqrt(wf @ (d - md) ** 2 / W)
            sh = torch.where(sh > 0, sh, torch.ones_like(sh))
            sd = torch.where(sd > 0, sd, torch.ones_like(sd))
            score = (h - mh) / sh
            score += b * (d - md) / sd
        elif t > 0:  # d is finite once anything is chosen: z(h) + beta z(d)
            mh, sh = _masked_mean_std(torch, h, free, m - j)
            md, sd = _masked_mean_std(torch, d, free, m - j)
            score = (h - mh) / sh
            score += b * (d - md) / sd
        else:
            score = h
        score = torch.where(free, score, neg_inf)
        p = torch.argmax(score)
        picks[j] = p
        free[p] = False
        sim = Xc @ Xc[p]
        torch.minimum(d, 1.0 - sim, out=d)
        K += _kernel(torch, sim, tau)
        t += 1
    return picks.cpu().numpy()


def knn_distance_torch(X, ref_idx: np.ndarray, n_neighbors: int = 10, *,
                       block: int | None = None, device: str = "torch-cpu") -> np.ndarray:
    """Mean cosine distance of each row to its ``n_neighbors`` nearest rows
    among ``ref_idx`` (itself excluded), in torch: the twin of inverse-density's
    numpy kernel, on reference rows the caller chose
    (:func:`persona_index.samplers.density.reference_rows`). Float32 numpy out.

    Examples
    --------
    >>> X = np.eye(3, dtype=np.float32)
    >>> knn_distance_torch(X, np.arange(3), 1).tolist()  # orthogonal rows: distance 1
    [1.0, 1.0, 1.0]
    """
    torch = _torch()
    dev = _torch_device(device)
    Xt = as_tensor(X, device, torch.float32)
    n = int(Xt.shape[0])
    kk = min(n_neighbors, len(ref_idx) - 1)
    if kk < 1:
        return np.ones(n, dtype=np.float32)
    R = Xt[_index(torch, ref_idx, dev)].T
    pos = np.full(n, -1, dtype=np.int64)
    pos[ref_idx] = np.arange(len(ref_idx))
    pos_t = torch.as_tensor(pos, device=dev)
    block = block or (8192 if dev == "cpu" else max(8192, _CUDA_BLOCK_ELEMENTS // len(ref_idx)))
    out = torch.empty(n, dtype=torch.float32, device=dev)
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float32, device=dev)
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = Xt[s:e] @ R
        rows = torch.arange(e - s, device=dev)
        col = pos_t[s:e]
        has = col >= 0
        safe = col.clamp(min=0)
        # a point is not its own neighbour (rows outside the reference keep their values)
        sims[rows, safe] = torch.where(has, neg_inf, sims[rows, safe])
        top = torch.topk(sims, kk, dim=1, largest=True, sorted=False).values
        out[s:e] = 1.0 - top.mean(dim=1)
    return out.cpu().numpy()


def top_k_numpy(X: np.ndarray, q: np.ndarray, k: int, *, sign: int = +1,
                candidates: np.ndarray | None = None):
    """``(positions, similarities)`` of the ``k`` rows of ``X`` most (``sign=+1``)
    or least (``-1``) similar to ``q``, among ``candidates`` (positions) if given;
    ties broken by position. The numpy reference for :func:`top_k_torch`.

    Examples
    --------
    >>> X = np.eye(4, dtype=np.float32)
    >>> q = np.array([0.0, 0.8, 0.6, 0.0], dtype=np.float32)
    >>> top_k_numpy(X, q, 2)[0].tolist(), top_k_numpy(X, q, 2, sign=-1)[0].tolist()
    ([1, 2], [0, 3])
    """
    sims = X @ q
    scores = sims if candidates is None else sims[candidates]
    k_eff = min(int(k), len(scores))
    if k_eff == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    key = -sign * scores
    if k_eff < len(key):  # everything up to the k-th value, ties at it included
        kth = np.partition(key, k_eff - 1)[k_eff - 1]
        top = np.flatnonzero(key <= kth)
    else:
        top = np.arange(len(key))
    top = top[np.lexsort((top, key[top]))][:k_eff]
    pos = top if candidates is None else np.asarray(candidates)[top]
    return pos.astype(np.int64), sims[pos]


def top_k_torch(X, q, k: int, *, sign: int = +1, candidates: np.ndarray | None = None,
                device: str = "torch-cpu", cache: dict | None = None):
    """:func:`top_k_numpy` in torch, over a matrix kept resident on the device.

    Parameters
    ----------
    X : (n, d) float32 numpy matrix (or a tensor).
    q : (d,) unit query vector.
    candidates : positions to rank among (a filter), or None for all rows.
    cache : a dict owned by whoever owns ``X`` (a snapshot): the device copy
        of ``X`` is kept in it, so a GPU reads the matrix from its own memory
        from the second query on. Only for a matrix that never changes.

    Returns
    -------
    ``(positions, similarities)``: int64 and float32 numpy arrays, best first.

    Examples
    --------
    >>> X = np.eye(4, dtype=np.float32)
    >>> q = np.array([0.0, 0.8, 0.6, 0.0], dtype=np.float32)
    >>> cache = {}
    >>> pos, sims = top_k_torch(X, q, 2, cache=cache)
    >>> pos.tolist(), [round(float(s), 2) for s in sims], list(cache)
    ([1, 2], [0.8, 0.6], ['cpu'])
    >>> top_k_torch(X, q, 2, sign=-1, candidates=np.array([1, 2, 3]), cache=cache)[0].tolist()
    [3, 2]
    """
    torch = _torch()
    dev = _torch_device(device)
    if cache is not None and dev in cache:
        Xt = cache[dev]
    else:
        Xt = as_tensor(X, device, torch.float32)
        if cache is not None:
            cache[dev] = Xt
    qt = as_tensor(np.asarray(q, dtype=np.float32).reshape(-1), device)
    sims = Xt @ qt
    scores = sims if candidates is None else sims[_index(torch, candidates, dev)]
    k_eff = min(int(k), int(scores.shape[0]))
    if k_eff == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    key = -scores if sign > 0 else scores
    if k_eff < key.shape[0]:  # everything up to the k-th value, ties at it included
        kth = torch.topk(key, k_eff, largest=False, sorted=True).values[-1]
        sel = torch.nonzero(key <= kth).flatten()
    else:
        sel = torch.arange(key.shape[0], device=dev)
    sel_h, key_h = sel.cpu().numpy(), key[sel].cpu().numpy()
    top = sel_h[np.lexsort((sel_h, key_h))][:k_eff]
    pos = top if candidates is None else np.asarray(candidates)[top]
    sims_h = sims[_index(torch, pos, dev)].cpu().numpy()
    return pos.astype(np.int64), sims_h
