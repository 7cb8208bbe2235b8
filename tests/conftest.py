"""Shared fixtures: the real embedding model, real LanceDB stores in temp dirs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LANCEDB_LOG", "error")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "personahub" / "tools-dev.jsonl"


@pytest.fixture(scope="session")
def embedder():
    from persona_index.embed import get_embedder

    e = get_embedder()
    e.model  # load once for the whole session
    return e


@pytest.fixture(scope="session")
def pool_records():
    from persona_index.generate import generate

    return list(generate(400, seed=123))


@pytest.fixture(scope="session")
def built_store(tmp_path_factory, embedder, pool_records):
    """A read-only store of 400 generated personas (do not mutate it)."""
    from persona_index import PersonaIndex
    from persona_index.generate import ATTRIBUTES, LICENCE
    from persona_index.ingest import ingest_records

    path = tmp_path_factory.mktemp("store") / "p.lance"
    idx = PersonaIndex(path, embedder)
    ingest_records(idx, pool_records, source="generated", licence=LICENCE, attrs=list(ATTRIBUTES))
    return idx


@pytest.fixture
def new_store(tmp_path, embedder):
    from persona_index import PersonaIndex

    return PersonaIndex(tmp_path / "s.lance", embedder)


@pytest.fixture(scope="session")
def personahub_path():
    if not SHARED.exists():
        pytest.skip("../shared/data/personahub/tools-dev.jsonl is not present")
    return SHARED


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path
