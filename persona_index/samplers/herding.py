"""herding: kernel herding with a spread term, the default strategy.

Kernel herding (Chen, Welling & Smola 2010) picks, one at a time, the persona
that most reduces the maximum mean discrepancy between the batch and the
pool: with the kernel ``k(x, y) = exp((x . y - 1) / tau)``, pick ``t + 1``
maximises

    h_t(x) = mu(x) - K_t(x) / (t + 1),

where ``mu(x)`` is x's mean kernel value over the pool (how typical x is)
and ``K_t(x)`` the sum of its kernel values to the personas chosen so far
(how well its region is already represented). Herding alone is
representative but under-spreads small batches, so each step adds ``beta``
times the standardised distance to the nearest chosen persona (the
farthest-point criterion): the pick maximises ``z(h_t) + beta * z(d_t)``,
both z-scores taken over the candidates not yet chosen. Low budgets thus
get typical personas from distinct regions, larger ones spread further
(the TypiClust / ProbCover observation).

Cost. ``mu`` needs every candidate's mean kernel value over the pool; it is
averaged over ``reference`` seeded pool rows (all rows up to 4,096; the
benchmark reports the error at 10^6). Each pick updates every candidate's
``K`` and ``d`` (one matrix-vector product); pools larger than
``candidates`` (default ``max(16384, 16 k)``) draw a seeded uniform
candidate subsample of that size, so the cost does not grow with N beyond
the reference term. Chosen from the benchmark at 10^6 x 384; see the README
for its coverage against uniform there. Ties break by the lowest index.
"""

from __future__ import annotations

import numpy as np

from ..kernels import spread_weight  # noqa: F401 (the weight, one definition for both kernels)


REFERENCE = 4096
MIN_CANDIDATES = 16384
CANDIDATES_PER_PICK = 16
#: candidates per pick before issue 25's time goal (manifests without ``candidates_per_pick``)
LEGACY_CANDIDATES_PER_PICK = 32
#: the default rule: the spread weight rises linearly from 0 to ``beta`` as the batch fills
BETA, RAMP = 1.0, "linear"
RAMPS = ("linear", "none")
#: how engine="ray" splits the work: the first is the default
ROUNDS = ("gather", "coreset")
#: the rule before issue 25 (a constant spread weight of 0.5): manifests written
#: without ``ramp`` replay with it, and the stratified strategy herds inside strata with it
CONSTANT_RULE = {"beta": 0.5, "ramp": "none", "candidates_per_pick": LEGACY_CANDIDATES_PER_PICK}


def recorded_params(params: dict) -> dict:
    """Herding parameters as a manifest records them: the default's rule
    (``beta``, ``ramp``, ``candidates_per_pick``) written out where not given,
    so the manifest replays it after the default changes (:func:`legacy_params`
    reads a manifest without them as the rule of its time).

    Examples
    --------
    >>> recorded_params({"tau": 0.3})
    {'tau': 0.3, 'beta': 1.0, 'ramp': 'linear', 'candidates_per_pick': 16}
    >>> recorded_params({"engine": "ray"})["rounds"]
    'gather'
    """
    out = {**params, "beta": params.get("beta", BETA), "ramp": params.get("ramp", RAMP),
           "candidates_per_pick": params.get("candidates_per_pick", CANDIDATES_PER_PICK)}
    if out.get("engine") == "ray":
        out["rounds"] = out.get("rounds", ROUNDS[0])
    return out


def legacy_params(params: dict | None) -> dict:
    """Herding parameters as a manifest written before they were recorded
    meant them: no ``ramp`` recorded is the constant rule
    (:data:`CONSTANT_RULE`, beta 0.5 unless the manifest names one); no
    ``candidates_per_pick``, the 32 per pick of then; a Ray draw without
    ``rounds``, the coreset rounds. What is recorded is kept.

    Examples
    --------
    >>> legacy_params({}), legacy_params({"beta": 0.7})  # doctest: +NORMALIZE_WHITESPACE
    ({'beta': 0.5, 'ramp': 'none', 'candidates_per_pick': 32},
     {'beta': 0.7, 'ramp': 'none', 'candidates_per_pick': 32})
    >>> legacy_params({"beta": 1.0, "ramp": "linear"})
    {'beta': 1.0, 'ramp': 'linear', 'candidates_per_pick': 32}
    >>> legacy_params({"beta": 1.0, "ramp": "linear", "candidates_per_pick": 16})
    {'beta': 1.0, 'ramp': 'linear', 'candidates_per_pick': 16}
    >>> legacy_params({"engine": "ray"})["rounds"]
    'coreset'
    >>> "rounds" in legacy_params({"ramp": "linear", "rounds": "gather"})  # no Ray, no rounds
    False
    """
    params = dict(params or {})
    if "ramp" not in params:
        params = {**CONSTANT_RULE, **params, "ramp": CONSTANT_RULE["ramp"]}
    params = {**params, "candidates_per_pick": params.get("candidates_per_pick",
                                                           LEGACY_CANDIDATES_PER_PICK)}
    if params.get("engine") == "ray" and "rounds" not in params:
        params["rounds"] = "coreset"  # the only Ray rounds before `rounds` was recorded
    if params.get("engine") != "ray":
        params.pop("rounds", None)  # meaningless without Ray (accepted for a while, never used)
    return params


def _kernel_(S: np.ndarray, tau: float) -> np.ndarray:
    """exp((S - 1) / tau), in place."""
    S -= 1.0
    S *= np.float32(1.0 / tau)
    np.exp(S, out=S)
    return S


def mean_kernel(X: np.ndarray, R: np.ndarray, tau: float, block: int = 8192,
                weights: np.ndarray | None = None) -> np.ndarray:
    """For each row of X, its mean kernel value over the rows of R (weighted
    by ``weights``, one non-negative mass per row of R, when given).

    Examples
    --------
    Each row meets itself (kernel 1) and an orthogonal row (``exp(-1 / tau)``):

    >>> I = np.eye(2, dtype=np.float32)
    >>> mean_kernel(I, I, tau=1.0).round(3)
    array([0.684, 0.684], dtype=float32)
    """
    out = np.empty(len(X), dtype=np.float32)
    RT = np.ascontiguousarray(R.T)
    w = None if weights is None else (np.asarray(weights, np.float64) / np.sum(weights)).astype(np.float32)
    for s in range(0, len(X), block):
        S = _kernel_(X[s:s + block] @ RT, tau)
        out[s:s + block] = S.mean(axis=1) if w is None else S @ w
    return out


def candidate_count(k: int, candidates: int | None = None,
                    per_pick: int = CANDIDATES_PER_PICK) -> int:
    """How many candidates herding draws ``k`` picks from (every row when the
    pool has no more): ``candidates``, by default ``max(16384, per_pick x k)``,
    and never fewer than ``k``.

    >>> candidate_count(100), candidate_count(2000), candidate_count(10, candidates=5)
    (16384, 32000, 10)
    """
    return max(int(candidates or max(MIN_CANDIDATES, int(per_pick) * k)), int(k))


def candidate_rows(n: int, k: int, candidates: int | None, rng,
                   per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """All rows, or a seeded sorted uniform subsample of ``candidates`` rows,
    by default ``max(16384, per_pick x k)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> candidate_rows(100, 5, None, rng).shape
    (100,)
    >>> c = candidate_rows(100_000, 10, None, rng)
    >>> c.shape, bool((np.diff(c) > 0).all())
    ((16384,), True)
    >>> candidate_rows(100_000, 2000, None, rng).shape  # 16 per pick
    (32000,)
    """
    m = candidate_count(k, candidates, per_pick)
    if m >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, m, replace=False))


def herding_rows(n: int, k: int, *, candidates: int | None = None, reference: int = REFERENCE,
                 rng=None, per_pick: int = CANDIDATES_PER_PICK) -> tuple[np.ndarray, np.ndarray]:
    """The rows herding works on: ``(candidate rows, reference rows)``, sorted.

    The candidates are :func:`candidate_rows`; the reference, the rows ``mu``
    is averaged over, all ``n`` up to ``reference``, else a seeded draw of
    that many. Both come from ``rng`` in that order, once per call, so the
    numpy and torch kernels work on the same rows by construction.

    Examples
    --------
    >>> c, r = herding_rows(100, 5)  # a small pool: every row, no randomness
    >>> len(c), len(r)
    (100, 100)
    >>> c, r = herding_rows(50_000, 10, reference=1000, rng=0)
    >>> len(c), len(r), bool((np.diff(r) > 0).all())
    (16384, 1000, True)
    """
    rng = np.random.default_rng(rng)
    cand = candidate_rows(n, k, candidates, rng, per_pick)
    r = min(n, int(reference))
    ref = np.arange(n) if r >= n else np.sort(rng.choice(n, r, replace=False))
    return cand, ref


def _herding(X: np.ndarray, cand: np.ndarray, ref: np.ndarray, k: int, tau: float, beta: float,
             prior: np.ndarray | None, weights: np.ndarray | None = None,
             bonus: np.ndarray | None = None, ramp: str = RAMP) -> np.ndarray:
    """The numpy kernel: ``k`` positions into ``cand``, in pick order. Assumes
    valid input (unit rows, ``k <= len(cand)``, ``weights`` one mass per row of
    ``ref`` or None); no randomness. ``bonus`` (one value per candidate) is
    added to the criterion at every pick."""
    n = len(X)
    # a float16 matrix (a half-size warm matrix) is read only at these rows,
    # converted once: numpy has no float16 BLAS path
    Xc = (X if len(cand) == n else X[cand]).astype(np.float32, copy=False)
    R = (X if len(ref) == n else X[ref]).astype(np.float32, copy=False)
    mu = mean_kernel(Xc, R, tau, weights=weights)
    m = len(cand)
    K = np.zeros(m, dtype=np.float32)
    d = np.full(m, np.inf, dtype=np.float32)
    t = 0
    if prior is not None and len(prior):
        for s in range(0, len(prior), 256):
            S = Xc @ prior[s:s + 256].T
            np.minimum(d, 1.0 - S.max(axis=1), out=d)
            K += _kernel_(S, tau).sum(axis=1)
        t = len(prior)
    free = np.ones(m, dtype=bool)
    picks = np.empty(k, dtype=np.int64)
    # with masses, every candidate stands for that many personas in the
    # z-scores too (the candidates are the rows the masses belong to)
    wz = None
    if weights is not None and len(cand) == len(ref) == n:
        wz = np.asarray(weights, dtype=np.float32)
    for j in range(k):
        b = np.float32(spread_weight(beta, ramp, j, k))
        h = mu - K / np.float32(t + 1)
        if np.isfinite(d[0]) and wz is not None:  # mass-weighted z-scores
            wf = wz * free
            W = wf.sum()
            mh, md = (wf @ h) / W, (wf @ d) / W
            sd_h, sd_d = np.sqrt(wf @ (h - mh) ** 2 / W), np.sqrt(wf @ (d - md) ** 2 / W)
            score = (h - mh) / (sd_h if sd_h > 0 else 1)
            score += b * (d - md) / (sd_d if sd_d > 0 else 1)
        elif np.isfinite(d[0]):  # z(h) + beta z(d), up to terms equal for all rows
            hf, df = h[free], d[free]
            sd_h, sd_d = hf.std(), df.std()
            score = (h - hf.mean()) / (sd_h if sd_h > 0 else 1)
            score += b * (d - df.mean()) / (sd_d if sd_d > 0 else 1)
        else:
            score = h
        if bonus is not None:  # on the z scale of the criterion, the first pick too
            if not np.isfinite(d[0]):
                sd_h = h[free].std()
                score = (h - h[free].mean()) / (sd_h if sd_h > 0 else 1)
            score = score + bonus
        score[~free] = -np.inf
        p = int(np.argmax(score))
        picks[j] = p
        free[p] = False
        sim = Xc @ Xc[p]
        np.minimum(d, 1.0 - sim, out=d)
        K += _kernel_(sim, tau)
        t += 1
    return picks


def herding_select(X, k: int, *, tau: float = 0.2, beta: float = BETA, ramp: str = RAMP, rng=None,
                   prior: np.ndarray | None = None, reference: int = REFERENCE,
                   candidates: int | None = None, stats: dict | None = None,
                   device: str = "numpy", weights: np.ndarray | None = None,
                   bonus: np.ndarray | None = None,
                   candidates_per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """Kernel herding with a standardised spread term (see the module docstring).

    Draws the candidate and reference rows once (:func:`herding_rows`), then
    runs the numpy kernel or its torch twin
    (:func:`persona_index.kernels.herding_torch`) on them.

    Parameters
    ----------
    X : (n, d) float32 unit vectors (a torch tensor for the torch kernels).
    k : picks to make, 1 <= k <= n (not checked here: see :func:`herding`).
    tau : kernel width; beta : weight of the standardised spread term.
    ramp : ``"linear"`` (the default): the spread weight rises from 0 at the
        first pick to ``beta`` at the last (:func:`spread_weight`), so a batch
        starts from typical personas and spreads as it fills; ``"none"``:
        ``beta`` throughout (the rule before issue 25, with ``beta=0.5``).
    rng : seed or numpy Generator: it draws the reference and candidate
        subsamples of large pools; small pools involve no randomness at all.
    prior : (m, d) vectors already chosen: the batch continues their herding
        sequence, filling what they left uncovered.
    candidates_per_pick : the candidate subsample is ``max(16384, candidates_per_pick
        x k)`` rows unless ``candidates`` is given (16; 32 before issue 25's time goal).
    stats : if a dict, receives ``candidates`` and ``reference`` (row counts).
    device : ``"numpy"``, ``"torch-cpu"`` or ``"cuda"`` (already resolved).
    weights : (n,) non-negative masses, one per row: how many personas each
        row stands for (the second round of the distributed default, whose
        rows are picks from partitions). ``mu`` is then the mass-weighted mean
        kernel over all ``n`` rows (no reference subsample).
    bonus : (n,) optional term added to each row's criterion at every pick
        (``curate`` puts ``w * z(score)`` there); the numpy kernel only.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> idx = herding_select(X, 10, rng=0)
    >>> len(set(idx.tolist()))
    10
    >>> np.array_equal(idx, herding_select(X, 10, rng=1))  # a small pool: no randomness
    True
    """
    n = len(X)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n,) or not np.all(weights >= 0) or not weights.sum() > 0:
            raise ValueError(f"weights must be {n} non-negative masses with a positive sum, got "
                             f"shape {weights.shape}")
        reference = n
    cand, ref = herding_rows(n, k, candidates=candidates, reference=reference, rng=rng,
                             per_pick=candidates_per_pick)
    extra = None if bonus is None else np.asarray(bonus, dtype=np.float32)[cand]
    pos = _kernel(X, cand, ref, k, tau=tau, beta=beta, ramp=ramp, prior=prior, device=device,
                  weights=weights, bonus=extra)
    if stats is not None:
        stats.update(candidates=int(len(cand)), reference=int(len(ref)))
    return cand[pos]


def _kernel(X, cand, ref, k, *, tau, beta, ramp, prior, device, weights=None, bonus=None):
    """The numpy kernel or its torch twin on rows ``cand`` / ``ref`` of ``X``:
    ``k`` positions into ``cand``. ``bonus``: one value per candidate (numpy only)."""
    if device == "numpy" or bonus is not None:
        return _herding(X, cand, ref, k, tau, beta, prior, weights, bonus, ramp)
    from ..kernels import herding_torch

    return herding_torch(X, cand, ref, k, tau=tau, beta=beta, ramp=ramp, prior=prior, device=device,
                         weights=weights)


def _take(X, rows):
    """One partition's part of :func:`gathered`: its rows among those the driver reads."""
    return X[rows]


def gathered(X: np.ndarray, k: int, *, partitions: int = 8, rng=None,
             prior: np.ndarray | None = None, tau: float = 0.2, beta: float = BETA,
             ramp: str = RAMP, reference: int = REFERENCE, candidates: int | None = None,
             device: str = "numpy", mapper=None,
             candidates_per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """The default with its reads spread over partitions: the same batch as
    ``herding_select(X, k, rng=rng, ...)``, row for row.

    The default only ever reads :func:`herding_rows`: the candidate subsample
    (``max(16384, 16 k)`` rows) and the reference (4,096 rows), drawn from the
    seed alone, whatever ``N``. The driver draws those row numbers; each of
    ``partitions`` contiguous row blocks sends back its rows among them
    (``mapper(fn, calls, shared)`` runs the blocks: in this process by
    default, as Ray tasks in :func:`persona_index.distributed.distributed_default`);
    the driver runs the kernel on what came back. The rows the driver needs
    are ``candidates + reference`` whatever ``N`` (with the pool in memory,
    as here, Ray's object store still holds all of ``X``; a reader of
    stored partitions would move only those rows).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((30_000, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> a = gathered(X, 20, partitions=4, rng=0, candidates=2000)
    >>> np.array_equal(a, herding_select(X, 20, rng=0, candidates=2000))
    True
    """
    n = len(X)
    cand, ref = herding_rows(n, k, candidates=candidates, reference=reference, rng=rng,
                             per_pick=candidates_per_pick)
    rows = np.union1d(cand, ref)
    parts = max(1, min(int(partitions), len(rows)))  # no empty tasks
    cuts = np.searchsorted(rows, np.linspace(0, n, parts + 1).astype(int))
    calls = [(rows[a:b],) for a, b in zip(cuts[:-1], cuts[1:])]
    G = np.concatenate((mapper or _local_map)(_take, calls, X))
    pos = _kernel(G, np.searchsorted(rows, cand), np.searchsorted(rows, ref), k, tau=tau,
                  beta=beta, ramp=ramp, prior=prior, device=device)
    return cand[pos]


def partition_picks(X: np.ndarray, k: int, *, seed=None, tau: float = 0.2, beta: float = BETA,
                    ramp: str = RAMP,
                    reference: int = REFERENCE, candidates: int | None = None,
                    block: int = 65536,
                    candidates_per_pick: int = CANDIDATES_PER_PICK) -> tuple[np.ndarray, np.ndarray]:
    """One partition's round of :func:`two_round`: ``k`` herding picks (rows
    of ``X``) and each pick's mass, the number of rows of ``X`` whose nearest
    pick it is (ties to the earlier pick). Masses sum to ``len(X)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> rows, mass = partition_picks(X, 12, seed=0)
    >>> len(set(rows.tolist())), int(mass.sum()), bool((mass >= 1).all())
    (12, 300, True)
    """
    k = min(int(k), len(X))
    rows = herding_select(X, k, tau=tau, beta=beta, ramp=ramp, rng=seed, reference=reference,
                          candidates=candidates, candidates_per_pick=candidates_per_pick)
    P = np.ascontiguousarray(X[rows].T.astype(np.float32, copy=False))
    mass = np.zeros(k, dtype=np.int64)
    for s in range(0, len(X), block):
        mass += np.bincount((X[s:s + block].astype(np.float32, copy=False) @ P).argmax(axis=1),
                            minlength=k)
    return rows, mass


def _block_picks(X, a: int, b: int, k: int, seed: int, kw: dict):
    rows, mass = partition_picks(X[a:b], k, seed=seed, **kw)
    return rows + a, mass


def _local_map(fn, calls, shared):
    return [fn(shared, *c) for c in calls]


def two_round(X: np.ndarray, k: int, *, partitions: int = 8, oversample: int = 2, rng=None,
              prior: np.ndarray | None = None, tau: float = 0.2, beta: float = BETA,
              ramp: str = RAMP,
              reference: int = REFERENCE, candidates: int | None = None,
              mapper=None, candidates_per_pick: int = CANDIDATES_PER_PICK) -> np.ndarray:
    """The default in two composable rounds (the distributed default).

    Round 1: ``partitions`` contiguous row blocks each run
    :func:`partition_picks` (herding for ``oversample * k`` picks, with
    masses). Round 2: herding over the union of the picks with the masses
    as ``weights`` (each pick stands for the rows it covers, in the
    typicality term and in the z-scores), candidates = the union; it
    continues ``prior``. Seeds: one per block and the driver's, all from
    ``rng``, so a seed gives the same batch on any executor.

    ``mapper(fn, calls, shared)`` runs round 1: ``[fn(shared, *c) for c in
    calls]`` by default (this process);
    :func:`persona_index.raymap.ray_map` runs the calls as Ray tasks
    (:func:`persona_index.distributed.distributed_default`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((2000, 8)).astype(np.float32)
    >>> X /= np.linalg.norm(X, axis=1, keepdims=True)
    >>> idx = two_round(X, 20, partitions=4, rng=0)
    >>> len(set(idx.tolist())), bool(idx.max() < 2000)
    (20, True)
    """
    rng = np.random.default_rng(rng)
    n = len(X)
    partitions = max(1, min(int(partitions), n))
    bounds = np.linspace(0, n, partitions + 1).astype(int)
    seeds = rng.integers(2**32, size=partitions)
    per = int(oversample) * int(k)
    kw = dict(tau=tau, beta=beta, ramp=ramp, reference=reference, candidates=candidates,
              candidates_per_pick=candidates_per_pick)
    calls = [(int(a), int(b), per, int(s), kw) for a, b, s in zip(bounds[:-1], bounds[1:], seeds)]
    got = (mapper or _local_map)(_block_picks, calls, X)
    union = np.concatenate([r for r, _ in got])
    mass = np.concatenate([m for _, m in got]).astype(np.float64)
    pos = herding_select(X[union], min(int(k), len(union)), rng=rng, weights=mass, prior=prior,
                         **{**kw, "candidates": len(union)})
    return union[pos]


def herding(X, k, *, rng, prior=None, attributes=None, tau=0.2, beta=BETA, ramp=RAMP,
            reference=REFERENCE,
            candidates=None, device="auto", engine="local", workers=2, partitions=8,
            rounds="gather", oversample=2, candidates_per_pick=CANDIDATES_PER_PICK):
    """The registered strategy: :func:`herding_select` with the registry's defaults;
    ``device`` picks numpy or its torch twin (:mod:`persona_index.kernels`).

    ``engine="ray"`` spreads it over ``partitions`` row blocks, each a Ray task
    (:func:`persona_index.raymap.ray_map`). ``rounds="gather"`` (the default):
    the blocks send the rows the default reads and the driver herds them
    (:func:`gathered`): the same batch as the local engine. ``rounds="coreset"``:
    each block herds ``oversample * k`` picks with masses and the driver herds
    their union (:func:`two_round`): another sampler, the one Ray manifests
    written before ``rounds`` existed replay with.

    Examples
    --------
    A small batch takes typical personas, spread over the cluster, and leaves
    the outliers alone:

    >>> rng = np.random.default_rng(0)
    >>> X = np.array([1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal((8, 3))  # a cluster
    >>> X = np.vstack([X, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # and two outliers, rows 8 and 9
    >>> X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    >>> idx = herding(X, 3, rng=np.random.default_rng(0))
    >>> bool((idx < 8).all()), len(set(idx.tolist()))
    (True, 3)
    """
    from ..kernels import resolve_device

    if rounds not in ROUNDS:
        raise ValueError(f"rounds must be one of {', '.join(ROUNDS)}, got {rounds!r}")
    if engine == "ray":
        from ..raymap import ray_map

        def mapper(fn, calls, shared):
            return ray_map(fn, calls, shared=shared, workers=workers)

        if rounds == "coreset":
            return two_round(X, k, partitions=partitions, oversample=oversample, rng=rng,
                             prior=prior, tau=tau, beta=beta, ramp=ramp, reference=reference,
                             candidates=candidates, mapper=mapper,
                             candidates_per_pick=candidates_per_pick)
        return gathered(X, k, partitions=partitions, rng=rng, prior=prior, tau=tau, beta=beta,
                        ramp=ramp, reference=reference, candidates=candidates,
                        device=resolve_device(device, X.size), mapper=mapper,
                        candidates_per_pick=candidates_per_pick)
    return herding_select(X, k, tau=tau, beta=beta, ramp=ramp, rng=rng, prior=prior,
                          reference=reference, candidates=candidates,
                          device=resolve_device(device, X.size),
                          candidates_per_pick=candidates_per_pick)
