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


def store_state(path) -> dict:
    """{table: latest version} of every Lance table in a store directory: a
    shared store's state, which the tests that share it must leave as it was."""
    from persona_index.commits import latest_version

    return {p.name: latest_version(str(p)) for p in sorted(Path(path).glob("*.lance"))}


def unchanged_after(path, value):
    """For a fixture to ``yield from``: gives ``value`` to the tests, then
    fails when the tests that shared the store at ``path`` wrote to it (they
    must write to a copy of their own)."""
    before = store_state(path)
    yield value
    after = store_state(path)
    assert after == before, (f"a test wrote to the shared store {path} ({before} -> {after}): "
                             "give it a copy of its own")


@pytest.fixture(scope="session")
def built_store(tmp_path_factory, embedder, pool_records):
    """A read-only store of 400 generated personas (do not mutate it: the
    teardown fails if a test did)."""
    from persona_index import PersonaIndex
    from persona_index.generate import ATTRIBUTES, LICENCE
    from persona_index.ingest import ingest_records

    path = tmp_path_factory.mktemp("store") / "p.lance"
    idx = PersonaIndex(path, embedder)
    ingest_records(idx, pool_records, source="generated", licence=LICENCE, attrs=list(ATTRIBUTES))
    yield from unchanged_after(path, idx)


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


# -- the fast subset (`make test-fast`, `pytest -m "not slow"`) -------------------
# Whole modules and single tests that take seconds each (subprocesses, Ray,
# kills, the fuzzers, the ONNX export): marked slow here, in one list, so the
# subset developers run while working stays under a minute on 2 cores. The
# default run (`make test`, CI) runs everything.
SLOW_MODULES = {"test_fuzz.py", "test_concurrency.py", "test_distributed.py", "test_scale.py",
                "test_onnx_query.py", "test_readme_walkthrough.py", "test_model_folder.py",
                "test_faults.py"}
SLOW_TESTS = {
    "tests/test_kernels.py::test_fast_encoder_matches_encode_on_cpu",
    "tests/test_ingest.py::test_interrupted_ingest_completes_without_duplicates",
    "tests/test_samplers.py::test_uniform_misses_small_clusters_and_inverse_density_favours_them",
    "tests/test_sampling.py::test_two_processes_drawing_one_session_never_collide",
    "tests/test_store.py::test_delete_keeps_queries_consistent",
    "tests/test_synthesis.py::test_text_to_persona_and_expansion_ingest_with_provenance",
    "tests/test_cli.py::test_synthesize_requests_only_and_against_a_server",
    "tests/test_cli.py::test_llm_commands_refuse_bad_urls_and_values_before_calling",
    "tests/test_docs_synthesis.py::test_the_offline_loop_runs_as_written",
    "tests/test_synthesis.py::test_deadline_bounds_the_run_and_unfinished_rows_are_sent_by_the_next",
    "tests/test_fieldmap.py::test_concurrent_ingests_do_not_mix_columns",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        base = item.nodeid.split("[", 1)[0]
        if item.path.name in SLOW_MODULES or base in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
