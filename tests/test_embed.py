import numpy as np

from persona_index.embed import DEFAULT_MODEL, HashEmbedder, get_embedder


def test_default_model_is_offline_384d_unit(embedder):
    assert embedder.name == DEFAULT_MODEL
    v = embedder.encode(["a nurse in Kenya", "a software engineer in Oslo"])
    assert v.shape == (2, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # deterministic, and semantics: related texts are closer than unrelated ones
    w = embedder.encode(["a nurse in Kenya", "a Kenyan nurse", "a quantum field theorist"])
    np.testing.assert_allclose(v[0], w[0], atol=1e-5)
    assert w[0] @ w[1] > w[0] @ w[2]


def test_empty_input_gives_empty_matrix(embedder):
    assert embedder.encode([]).shape == (0, 384)


def test_token_window_count(embedder):
    long = "persona " * 400
    assert embedder.count_over_window(["short text", long, "x" * 100]) == 1


def test_weights_are_the_pinned_ones():
    import hashlib
    from pathlib import Path

    from persona_index.embed import DEFAULT_WEIGHTS_SHA256, default_model_path

    data = (Path(default_model_path()) / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == DEFAULT_WEIGHTS_SHA256


def test_hash_embedder_is_deterministic_and_unit():
    a, b = HashEmbedder(16), get_embedder("hash-16")
    x, y = a.encode(["p", "q"]), b.encode(["p", "q"])
    np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    assert not np.allclose(x[0], x[1])
