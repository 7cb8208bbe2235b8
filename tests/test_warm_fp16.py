"""The float16 warm matrix (PERSONA_INDEX_WARM_DTYPE=float16): half the
memory, and similar / distant still give the float32 answer exactly, because
every row within the float16 error bound of the k-th score is re-ranked from
its stored float32 vector."""

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import InvalidQueryError
from persona_index.samplers.herding import herding_select
from persona_index.snapshot import FP16_SIMILARITY_ERROR, Snapshot, matrix_dot, warm_dtype

DIM = 32


def _unit(a):
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((2000, DIM)))
    # near-twins: 200 rows a hair away from row 0, so their float16 scores
    # against a query near row 0 misorder (the fixture is checked below)
    twins = _unit(base[0] + 2e-3 * rng.standard_normal((200, DIM)))
    X = np.vstack([base, twins])
    idx = PersonaIndex(tmp_path_factory.mktemp("fp16") / "s.lance", HashEmbedder(dim=DIM))
    idx.add([{"text": f"persona {i}", "region": "ab"[i % 2]} for i in range(len(X))], vectors=X,
            attributes=["region"])
    s32 = idx.snapshot()
    return s32, Snapshot(s32.dataset, s32.path, "float16"), X


def test_the_matrix_is_float16_and_half_the_bytes(stores):
    s32, s16, X = stores
    assert s32.vectors.dtype == np.float32 and s16.vectors.dtype == np.float16
    assert s16.vectors.nbytes * 2 == s32.vectors.nbytes
    err = np.abs(matrix_dot(s16.vectors, X[0]) - s32.vectors @ X[0]).max()
    assert 0 < err <= FP16_SIMILARITY_ERROR


@pytest.mark.parametrize("sign", [+1, -1])
@pytest.mark.parametrize("where", [None, "region = 'a'"])
@pytest.mark.parametrize("k", [1, 10, 150])
def test_rank_equals_the_float32_ranking(stores, sign, where, k):
    s32, s16, X = stores
    q = _unit(X[:1] + 1e-3)[0]
    a, b = s32.rank(q, k, sign=sign, where=where), s16.rank(q, k, sign=sign, where=where)
    assert [h.id for h in a] == [h.id for h in b]
    # float32 scores, not float16 ones (those are up to 5e-4 off): equal up to
    # the summation order of a product over fewer rows (an ulp)
    np.testing.assert_allclose([h.similarity for h in a], [h.similarity for h in b], rtol=0,
                               atol=1e-6)


def test_the_fixture_would_catch_a_float16_only_ranking(stores):
    s32, s16, X = stores
    q = _unit(X[:1] + 1e-3)[0]
    exact = s32.vectors @ q
    approx = matrix_dot(s16.vectors, q)
    top = 150
    assert not np.array_equal(np.argsort(-exact, kind="stable")[:top],
                              np.argsort(-approx, kind="stable")[:top])


def test_similar_by_id_uses_the_stored_float32_vector(stores):
    s32, s16, _ = stores
    pid = s32.ids[2003].as_py()  # one of the twins
    assert [h.id for h in s32.similar(id=pid, k=20)] == [h.id for h in s16.similar(id=pid, k=20)]


def test_the_dtype_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("PERSONA_INDEX_WARM_DTYPE", "float16")
    assert warm_dtype() == "float16"
    monkeypatch.setenv("PERSONA_INDEX_WARM_DTYPE", "float64")
    # the error names where the bad value came from: the variable, or the parameter
    with pytest.raises(InvalidQueryError, match=r"^PERSONA_INDEX_WARM_DTYPE='float64' is not one of"):
        warm_dtype()
    with pytest.raises(InvalidQueryError, match=r"^warm_dtype='int8' is not one of"):
        warm_dtype("int8")


def test_herding_reads_a_float16_matrix_at_its_rows_only(stores):
    _, s16, _ = stores
    X16 = s16.vectors
    a = herding_select(X16, 20, rng=0, candidates=1000, reference=500)
    b = herding_select(X16.astype(np.float32), 20, rng=0, candidates=1000, reference=500)
    assert np.array_equal(a, b)
