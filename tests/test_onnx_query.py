"""Queries embed without torch: the store's model exported to ONNX."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from persona_index import onnx_embed


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("cache")
    old = os.environ.get("PERSONA_INDEX_CACHE")
    os.environ["PERSONA_INDEX_CACHE"] = str(d)
    yield d
    if old is None:
        del os.environ["PERSONA_INDEX_CACHE"]
    else:
        os.environ["PERSONA_INDEX_CACHE"] = old


def test_onnx_vectors_match_sentence_transformers(onnx_cache, embedder, personahub_path):
    texts = [json.loads(l)["persona"] for l in open(personahub_path, encoding="utf-8")][:300]
    assert onnx_embed.export(None, quiet=True) is not None
    e = onnx_embed.OnnxEmbedder.cached(None, "all-MiniLM-L6-v2", 384)
    V, X = e.encode(texts), embedder.encode(texts)
    assert (V * X).sum(axis=1).min() >= 0.999
    top = lambda A, Q: np.argsort(-(A @ Q.T), axis=0)[:10].T
    assert all(set(a) == set(b) for a, b in zip(top(X, X[:40]), top(X, V[:40])))


def test_cold_text_query_imports_no_torch_nor_lancedb(onnx_cache, built_store, tmp_path):
    assert onnx_embed.export(None, quiet=True) is not None
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from persona_index_cli.main import cli
        r = CliRunner().invoke(cli, ["--db", sys.argv[1], "similar", "a nurse in Kenya", "-k", "3",
                                     "--json"])
        assert r.exit_code == 0, r.output
        print(len(__import__("json").loads(r.stdout)))
        print(",".join(m for m in ("torch", "sentence_transformers", "transformers", "lancedb")
                       if m in sys.modules))
    """)
    env = {**os.environ, "PERSONA_INDEX_CACHE": str(onnx_cache)}
    out = subprocess.run([sys.executable, "-c", code, built_store.path], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n, heavy = out.stdout.strip().split("\n") + [""] * (2 - len(out.stdout.strip().split("\n")))
    assert n == "3" and heavy == ""
