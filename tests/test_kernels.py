"""The torch kernels against the numpy ones they mirror, and the device choice.

On a CPU the torch kernels must make the numpy kernels' picks exactly, on
fixtures without float near-ties (seeded gaussian data); on CUDA, where the
products round differently, the same picks or the same objective within 1e-5.
``device="auto"`` must never import torch by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from persona_index import kernels as K  # noqa: E402
from persona_index.errors import DeviceError, StrategyParameterError  # noqa: E402
from persona_index.samplers.base import sample  # noqa: E402
from persona_index.samplers.density import knn_distance  # noqa: E402
from persona_index.samplers.farthest import farthest_point, naive_farthest  # noqa: E402
from persona_index.samplers.herding import herding_select  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
DEVICES = ["torch-cpu"] + (["cuda"] if CUDA else [])


def unit(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def radius(X, idx):
    """k-center radius: the largest cosine distance from a row to its nearest pick."""
    return float((1.0 - (X @ X[idx].T).max(axis=1)).max())


def herding_objective(X, idx, tau=0.2):
    """MMD^2 between the picks and the pool under herding's kernel."""
    k = lambda A, B: np.exp((A @ B.T - 1.0) / tau)
    S = X[idx].astype(np.float64)
    Xd = X.astype(np.float64)
    return float(k(S, S).mean() - 2 * k(S, Xd).mean() + k(Xd, Xd).mean())


def same_or_close(a, b, objective, device, tol=1e-5):
    if device == "torch-cpu":
        assert np.array_equal(a, b), (a[:10], b[:10])
    elif not np.array_equal(a, b):  # CUDA: other rounding may break a near-tie differently
        assert abs(objective(a) - objective(b)) <= tol


# -- farthest-point ---------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,d,k,front,block,seed", [
    (300, 16, 20, None, 65536, 0),     # front covers the pool: a single pass
    (3000, 32, 100, 64, 500, 1),       # several passes, a front that has to widen, 6 blocks
    (2000, 24, 150, None, 64, 2),      # k larger than the block
    (5000, 48, 60, 128, 4096, 3),      # the last block shorter than the others
])
def test_farthest_torch_makes_the_numpy_picks(device, n, d, k, front, block, seed):
    X = unit(n, d, seed)
    ref_stats, stats = {}, {}
    a = farthest_point(X, k, start=5, front=front, block=block, stats=ref_stats)
    b = K.farthest_point_torch(X, k, start=5, front=front, block=block, device=device,
                               stats=stats)
    assert b.dtype == np.int64 and len(set(b.tolist())) == k
    same_or_close(a, b, lambda i: radius(X, i), device)
    if device == "torch-cpu":
        assert stats == ref_stats  # the same passes and the same final front
        assert np.array_equal(b, naive_farthest(X, k, 5))


@pytest.mark.parametrize("device", DEVICES)
def test_farthest_torch_with_a_prior_and_a_seeded_start(device):
    X = unit(1500, 16, 4)
    prior = unit(30, 16, 5)
    a = farthest_point(X, 40, prior=prior, front=64)
    b = K.farthest_point_torch(X, 40, prior=prior, front=64, device=device)
    same_or_close(a, b, lambda i: radius(np.vstack([X, prior]), i), device)
    ra, rb = np.random.default_rng(9), np.random.default_rng(9)
    a = farthest_point(X, 25, rng=ra)
    b = K.farthest_point_torch(X, 25, rng=rb, device=device)
    same_or_close(a, b, lambda i: radius(X, i), device)
    assert ra.random() == rb.random()  # the start drew from the generator the same way


def dyadic(n, d, seed):
    """Rows with entries in {-1/2, -1/4, 0, 1/4, 1/2}: every product is exact in
    float32, whatever the summation order, so ties are exact ties (many of them)."""
    return np.random.default_rng(seed).integers(-2, 3, size=(n, d)).astype(np.float32) / 4


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("front", [None, 16])
def test_farthest_exact_ties_go_to_the_lowest_index(device, front):
    X = dyadic(2000, 6, 0)  # 5^6 lattice points, many rows repeated and many values equal
    a = farthest_point(X, 80, start=3, front=front, block=256)
    b = K.farthest_point_torch(X, 80, start=3, front=front, block=256, device=device)
    assert np.array_equal(a, b)
    assert np.array_equal(a, naive_farthest(X, 80, 3))


@pytest.mark.parametrize("device", DEVICES)
def test_herding_exact_ties_go_to_the_lowest_index(device):
    X = dyadic(150, 8, 14)
    X = np.vstack([X, X[::-1]])  # every row twice, exactly: the lower copy must win
    a = herding_select(X, 40, rng=0)
    b = herding_select(X, 40, rng=0, device=device)
    assert np.array_equal(a, b)
    assert a[0] < 150  # the first pick's copies tie exactly: the lower one won


def test_a_wrong_kernel_would_be_caught():
    """The fixtures discriminate: picks a step off (the farthest row's
    runner-up) differ from the greedy picks, and so does the radius."""
    X = unit(3000, 32, 1)
    a = farthest_point(X, 100, start=5)
    maxsim = (X @ X[a[:10]].T).max(axis=1)
    maxsim[a[:10]] = np.inf
    assert np.argsort(maxsim)[1] != a[10]
    assert abs(radius(X, a) - radius(X, np.r_[a[:10], a[11:], np.argsort(maxsim)[1]])) > 1e-5


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_farthest_fp16_on_cuda_keeps_the_radius():
    X = unit(20000, 64, 6)
    a = K.farthest_point_torch(X, 200, start=0, device="cuda")
    b = K.farthest_point_torch(X, 200, start=0, device="cuda", dtype=torch.float16)
    assert len(set(b.tolist())) == 200
    assert radius(X, b) <= radius(X, a) * 1.02 + 1e-3


# -- herding ------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,d,k,kw,seed", [
    (200, 8, 10, {}, 0),                                   # all rows, no randomness
    (1500, 16, 40, {"candidates": 600, "reference": 300}, 1),  # seeded subsamples of both
    (800, 12, 60, {"tau": 0.5, "beta": 1.5}, 2),
    (800, 12, 60, {"beta": 0.5, "ramp": "none"}, 4),             # the constant rule
    (400, 8, 400, {}, 3),                                  # k = n: the whole pool, in order
])
def test_herding_torch_makes_the_numpy_picks(device, n, d, k, kw, seed):
    X = unit(n, d, seed)
    sa, sb = {}, {}
    a = herding_select(X, k, rng=seed, stats=sa, **kw)
    b = herding_select(X, k, rng=seed, device=device, stats=sb, **kw)
    assert sa == sb and len(set(b.tolist())) == k
    same_or_close(a, b, lambda i: herding_objective(X, i, kw.get("tau", 0.2)), device)


@pytest.mark.parametrize("device", DEVICES)
def test_herding_torch_continues_a_prior(device):
    X = unit(600, 10, 7)
    prior = X[:25] + 0.01
    prior /= np.linalg.norm(prior, axis=1, keepdims=True)
    a = herding_select(X, 30, rng=0, prior=prior)
    b = herding_select(X, 30, rng=0, prior=prior, device=device)
    same_or_close(a, b, lambda i: herding_objective(X, i), device)
    assert not np.array_equal(a, herding_select(X, 30, rng=0))  # the prior changes the picks


# -- inverse-density ------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,reference", [(500, None), (3000, 700)])
def test_knn_distances_agree(device, n, reference):
    X = unit(n, 16, 8)
    ra, rb = np.random.default_rng(1), np.random.default_rng(1)
    a = knn_distance(X, 7, reference=reference, rng=ra)
    b = knn_distance(X, 7, reference=reference, rng=rb, device=device)
    assert b.dtype == np.float32 and b.shape == (n,)
    np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
    assert ra.random() == rb.random()
    # and it is not trivially close: the self match left in would change every value
    assert np.abs(a - knn_distance(X, 6, reference=reference,
                                     rng=np.random.default_rng(1), device=device)).max() > 1e-3


@pytest.mark.parametrize("strategy,kw", [("inverse-density", {"n_neighbors": 5}),
                                         ("farthest", {}), ("herding", {"candidates": 500})])
def test_strategies_take_a_device_and_draw_the_same(strategy, kw):
    X = unit(1200, 16, 10)
    a = sample(X, 30, strategy, seed=3, device="numpy", **kw)
    b = sample(X, 30, strategy, seed=3, device="torch-cpu", **kw)
    c = sample(X, 30, strategy, seed=3, **kw)  # auto: numpy here
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_device_is_a_validated_parameter():
    with pytest.raises(StrategyParameterError, match="device='gpu' is not one of auto, numpy"):
        sample(np.eye(4, dtype=np.float32), 2, "farthest", seed=0, device="gpu")
    with pytest.raises(StrategyParameterError, match="takes no parameter 'device'"):
        sample(np.eye(4, dtype=np.float32), 2, "uniform", seed=0, device="numpy")


# -- exact similar / distant -----------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("sign", [+1, -1])
def test_top_k_agrees(device, sign):
    X = unit(4000, 32, 11)
    q = unit(1, 32, 12)[0]
    cand = np.sort(np.random.default_rng(0).choice(4000, 900, replace=False))
    cache = {}
    for k, c in ((10, None), (10, cand), (100, None), (1, cand)):
        pa, sa = K.top_k_numpy(X, q, k, sign=sign, candidates=c)
        pb, sb = K.top_k_torch(X, q, k, sign=sign, candidates=c, device=device, cache=cache)
        assert np.array_equal(pa, pb), (k, c is None)
        np.testing.assert_allclose(sa, sb, atol=1e-6)
        brute = np.argsort(-sign * (X @ q) if c is None else -sign * (X[c] @ q), kind="stable")
        want = brute[:k] if c is None else c[brute[:k]]
        assert np.array_equal(pa, want)
    for k, c in ((4000, None), (5000, cand)):  # everything, sorted: thousands of near-ties
        pa, sa = K.top_k_numpy(X, q, k, sign=sign, candidates=c)
        pb, sb = K.top_k_torch(X, q, k, sign=sign, candidates=c, device=device, cache=cache)
        assert sorted(pa) == sorted(pb) == sorted(np.arange(4000) if c is None else c)
        np.testing.assert_allclose(X[pa] @ q, X[pb] @ q, atol=1e-6)  # only near-ties swap
        assert np.all(np.diff(-sign * sb) >= -1e-6)
    assert list(cache) == [K._torch_device(device)]  # the matrix went to the device once


@pytest.mark.parametrize("device", DEVICES)
def test_top_k_breaks_ties_by_position(device):
    # exact arithmetic: every similarity is 0.5, 0.25 or 0, whatever the summation order
    X = np.zeros((12, 4), dtype=np.float32)
    X[:, 0] = [0.5, 0.25, 0.5, 0.0, 0.5, 0.25, 0.0, 0.5, 0.25, 0.0, 0.5, 0.25]
    q = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    for sign, k, want in ((+1, 3, [0, 2, 4]), (+1, 6, [0, 2, 4, 7, 10, 1]), (-1, 2, [3, 6])):
        assert K.top_k_numpy(X, q, k, sign=sign)[0].tolist() == want
        assert K.top_k_torch(X, q, k, sign=sign, device=device)[0].tolist() == want


@pytest.mark.parametrize("device", ["numpy", *DEVICES])
def test_snapshot_rank_uses_the_one_top_k_and_its_tie_rule(tmp_path, device):
    """Snapshot.rank on the tie fixture above gives the documented order on
    every device (it once had its own argpartition and returned [0, 2, 7])."""
    pytest.importorskip("lancedb", exc_type=ImportError)
    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder

    a = np.array([0.5, 0.25, 0.5, 0.0, 0.5, 0.25, 0.0, 0.5, 0.25, 0.0, 0.5, 0.25], dtype=np.float32)
    X = np.zeros((12, 4), dtype=np.float32)
    X[:, 0], X[:, 1] = a, np.sqrt(1 - a * a)  # unit rows; equal a -> identical rows, exact ties
    idx = PersonaIndex(tmp_path / "t.lance", HashEmbedder(dim=4))
    idx.add([{"text": f"persona {i}"} for i in range(12)], vectors=X)
    snap = idx.snapshot()
    pos_of = {snap.ids[i].as_py(): i for i in range(12)}
    q = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    want_all = {(+1, 3): [0, 2, 4], (+1, 6): [0, 2, 4, 7, 10, 1], (-1, 2): [3, 6]}
    for (sign, k), want in want_all.items():
        got = [pos_of[h.id] for h in snap.rank(q, k, sign=sign, device=device)]
        assert got == want, (sign, k, got)
        assert got == K.top_k_numpy(snap.vectors, q, k, sign=sign)[0].tolist()


def test_snapshot_queries_and_the_cli_take_a_device(tmp_path):
    pytest.importorskip("lancedb", exc_type=ImportError)
    from click.testing import CliRunner

    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder
    from persona_index_cli.main import cli

    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(dim=16))
    X = unit(300, 16, 13)
    idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(300)], vectors=X,
            attributes=["region"])
    snap = idx.snapshot()
    pid = snap.ids[7].as_py()
    for fn in ("similar", "distant"):
        for kw in ({"id": pid}, {"vector": X[3]}, {"vector": X[3], "where": "region = 'B'"}):
            a = [h.id for h in getattr(snap, fn)(k=8, device="numpy", **kw)]
            b = [h.id for h in getattr(snap, fn)(k=8, device="torch-cpu", **kw)]
            assert a == b and len(a) == 8, (fn, kw)
    assert "cpu" in snap._resident
    assert pid not in [h.id for h in idx.similar(id=pid, k=5, device="torch-cpu")]
    run = lambda *args: CliRunner().invoke(cli, ["--db", str(tmp_path / "p.lance"), *args])
    r1, r2 = (run("similar", "--id", pid, "-k", "5", "--json", "--device", d)
              for d in ("numpy", "torch-cpu"))
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    assert [h["id"] for h in json.loads(r1.output)] == [h["id"] for h in json.loads(r2.output)]
    s1, s2 = (run("sample", "-n", "12", "--strategy", "farthest", "--seed", "1", "--json",
                  "--device", d) for d in ("numpy", "torch-cpu"))
    assert s1.exit_code == 0 and s2.exit_code == 0, s1.output + s2.output
    m1, m2 = json.loads(s1.output)["manifest"], json.loads(s2.output)["manifest"]
    assert m2["params"]["device"] == "torch-cpu"
    ids = lambda out: [p["id"] for p in json.loads(out)["personas"]]
    assert ids(s1.output) == ids(s2.output)
    bad = run("sample", "-n", "3", "--strategy", "uniform", "--device", "torch-cpu")
    assert bad.exit_code == 2 and "takes no parameter 'device'" in bad.output


# -- choosing the device ----------------------------------------------------------

def test_resolve_device(monkeypatch):
    monkeypatch.delenv(K.DEVICE_ENV, raising=False)
    assert K.resolve_device("auto", 10**9) == ("cuda" if CUDA else "numpy")
    assert K.resolve_device(None, 10) == "numpy"
    assert K.resolve_device("torch-cpu") == "torch-cpu"
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        K.resolve_device("gpu")
    monkeypatch.setattr(K, "cuda_available", lambda: True)  # torch is loaded in this process
    assert K.resolve_device("auto", K.AUTO_CUDA_MIN_ELEMENTS) == "cuda"
    assert K.resolve_device("auto", K.AUTO_CUDA_MIN_ELEMENTS - 1) == "numpy"
    monkeypatch.setenv(K.DEVICE_ENV, "torch-cpu")
    assert K.resolve_device("auto", 10**9) == "torch-cpu"
    assert K.resolve_device("numpy", 10**9) == "numpy"
    monkeypatch.setenv(K.DEVICE_ENV, "tpu")
    with pytest.raises(DeviceError, match="PERSONA_INDEX_DEVICE='tpu'"):
        K.resolve_device("auto")


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(DeviceError, match="sees no CUDA device"):
        K.resolve_device("cuda")
    with pytest.raises(DeviceError):
        sample(unit(50, 8, 0), 5, "farthest", seed=0, device="cuda")


def _run(code: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env={**os.environ, **(env or {})})


def test_auto_on_cpu_never_imports_torch():
    out = _run("""
        import sys
        import numpy as np
        from persona_index.kernels import resolve_device
        from persona_index.samplers.base import sample
        X = np.random.default_rng(0).standard_normal((20000, 384)).astype(np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        assert resolve_device("auto", X.size) == "numpy"
        for s in ("farthest", "herding", "inverse-density"):
            assert len(sample(X[:3000], 5, s, seed=0, device="auto")) == 5
        assert len(sample(X, 3, "farthest", seed=0)) == 3  # large enough for CUDA, were torch loaded
        print("torch" in sys.modules)
    """, env={K.DEVICE_ENV: ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


BLOCK_LANCE = """
    import importlib.abc, sys
    class NoLance(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("lancedb", "lance"):
                raise ImportError(f"{name} is blocked: the device machine has no lancedb")
    sys.meta_path.insert(0, NoLance())
"""


def test_kernels_and_the_gpu_bench_run_without_lancedb():
    out = _run(BLOCK_LANCE + """
    import numpy as np
    from persona_index import kernels
    from benchmarks import gpu
    X = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    a = kernels.farthest_point_torch(X, 10, start=0)
    r = gpu.fps_case(X, 10, ("numpy", "torch-cpu"), repeats=1)
    assert r["same_picks"] and set(r["seconds"]) == {"numpy", "torch-cpu"}
    try:
        import lancedb
    except ImportError:
        print("blocked")
    """)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "blocked"


# -- fast embedding -----------------------------------------------------------------

def _texts(n):
    bundle = os.environ.get("PERSONA_INDEX_GPU_BUNDLE")
    paths = [Path(bundle) / "texts.jsonl"] if bundle else []
    paths.append(ROOT.parent / "shared" / "data" / "personahub" / "tools-dev.jsonl")
    for p in paths:
        if p.exists():
            with open(p, encoding="utf-8") as fh:
                return [json.loads(line)["persona"] for line in fh][:n]
    pytest.skip("no persona texts (../shared/data/personahub/tools-dev.jsonl)")


def _model(device="cpu"):
    from benchmarks.gpu import load_model

    try:
        return load_model(device)
    except ImportError as exc:
        pytest.skip(f"no model: {exc}")


def test_fast_encoder_matches_encode_on_cpu():
    from persona_index.fast_embed import FastEncoder

    texts = _texts(200)
    model = _model("cpu")
    ref = model.encode(texts, batch_size=64, normalize_embeddings=True)
    enc = FastEncoder(model, batch_size=32, chunk=64, workers=2)  # several chunks, overlapped
    V = enc.encode(texts)
    cos = (V * ref).sum(axis=1)
    assert V.shape == ref.shape and cos.min() >= 0.999
    # the order is the input's, not the length-sorted one
    assert not np.array_equal(np.argsort([len(t) for t in texts], kind="stable"), np.arange(200))
    assert (V[:-1] * ref[1:]).sum(axis=1).min() < 0.99
    with pytest.raises(DeviceError):
        FastEncoder(model, fp16=True)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_fast_encoder_fp16_on_cuda_matches_fp32_on_cpu():
    from persona_index.fast_embed import FastEncoder

    texts = _texts(2000)
    ref = _model("cpu").encode(texts, batch_size=64, normalize_embeddings=True)
    V = FastEncoder(_model("cuda")).encode(texts)
    assert (V * ref).sum(axis=1).min() >= 0.999
