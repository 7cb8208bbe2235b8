"""Any sentence-transformers model folder given by path works end to end:
ingest, text queries (through its own ONNX export), sampling, reembed. No
multilingual model ships on PyPI with its weights, so the test builds a small
one here (random weights: the point is the plumbing, not the semantics)."""

import json
import os
import shutil

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.errors import EmbedderMismatchError
from persona_index.ingest import ingest_file
from persona_index.sampling import draw

TEXTS = ["ครูสอนวิทยาศาสตร์ในเชียงใหม่", "一位在成都教数学的老师", "a nurse in rural Kenya",
         "a welder in Chile", "учитель из Казани", "a beekeeper in Ghana", "a poet in Lima",
         "a chef in Hanoi", "a pilot in Oslo", "a tailor in Dakar", "a miner in Perth",
         "a coder in Pune"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, embedder):
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    from persona_index.embed import default_model_path

    d = tmp_path_factory.mktemp("tiny")
    src = default_model_path()
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertModel(cfg).save_pretrained(d / "bert")
    for f in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(src, f), d / "bert" / f)
    word = models.Transformer(str(d / "bert"), max_seq_length=64)
    st = SentenceTransformer(modules=[word, models.Pooling(32, "mean"), models.Normalize()],
                             device="cpu")
    st.save(str(d / "model"))
    return str(d / "model")


def test_a_model_folder_by_path_end_to_end(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("PERSONA_INDEX_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"persona": t}) for t in TEXTS) + "\n", encoding="utf-8")
    idx = PersonaIndex(tmp_path / "s.lance", tiny_model)
    s = ingest_file(idx, f, near_dedup=False)
    assert s.added == len(TEXTS) and idx.info()["model"] == tiny_model and idx.info()["dim"] == 32
    # a text query goes through this model's own ONNX export, with its vectors
    fresh = PersonaIndex(tmp_path / "s.lance")
    hits = fresh.similar(TEXTS[3], k=3)
    assert hits[0].text == TEXTS[3] and hits[0].similarity > 0.999
    q = fresh.embed_query([TEXTS[5]])[0]
    assert float(q @ fresh.embedder.encode([TEXTS[5]])[0]) >= 0.999
    assert any((tmp_path / "cache" / "onnx").iterdir())
    b = draw(fresh, 5, seed=0)
    assert len(set(b.ids)) == 5
    with pytest.raises(EmbedderMismatchError):  # the default model cannot write into it
        PersonaIndex(tmp_path / "s.lance", "all-MiniLM-L6-v2")
    from persona_index.maintenance import reembed

    res = reembed(fresh, str(tmp_path / "copy.lance"), None, progress=False)
    copy = PersonaIndex(tmp_path / "copy.lance")
    assert copy.count() == len(TEXTS) and copy.info()["dim"] == 384
    assert res is not None
