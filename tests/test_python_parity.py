"""Issue #23 item 5 and the data-set items: the Python API on a par with the
CLI (replay from a path, coverage_of against uniform, readable reprs and
notebook tables), schema detection for Hugging Face Dataset objects, both
persona columns of Persona-Chat, and no stratum from a one-valued field."""

from __future__ import annotations

import json

import pytest

from persona_index import PersonaIndex, coverage_of, draw, ingest_records, replay
from persona_index.embed import HashEmbedder


@pytest.fixture
def idx(tmp_path):
    i = PersonaIndex(tmp_path / "p.lance", HashEmbedder(dim=16))
    i.add([{"text": f"persona number {k} of the test pool", "region": "ABC"[k % 3]}
           for k in range(60)], attributes=["region"])
    return i


def test_replay_takes_a_manifest_path(idx, tmp_path):
    from persona_index.sampling import write_batch

    b = draw(idx, 7, seed=5, record=False)
    m = write_batch(b, str(tmp_path / "b.jsonl"))
    assert replay(m).ids == b.ids
    assert replay(str(m)).ids == replay(json.loads(open(m).read())).ids == b.ids
    from persona_index.errors import ManifestError

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ManifestError, match="bad.json"):
        replay(bad)


def test_replay_on_another_store_names_the_manifests_store(idx, tmp_path):
    from persona_index.errors import ManifestError

    b = draw(idx, 3, seed=1, record=False)
    other = PersonaIndex(tmp_path / "o.lance", HashEmbedder(dim=16))
    other.add([{"text": "one persona"}])
    manifest = {**b.manifest, "table_version": idx.version + 5}
    with pytest.raises(ManifestError) as e:
        replay(manifest)
    msg = str(e.value)
    assert manifest["store"] in msg and str(idx.version) in msg and "_versions" not in msg


def test_coverage_of_compares_with_uniform(idx):
    ids = draw(idx, 10, seed=0, record=False).ids
    r = coverage_of(idx, ids, compare_uniform=5)
    assert r["uniform"]["draws"] == 5
    for k in ("vendi", "kcenter_radius", "balance[region]"):
        assert k in r["uniform"]["mean"] and r["uniform"]["sd"][k] >= 0
    assert "uniform" not in coverage_of(idx, ids)


def test_reprs_are_tables(idx):
    hits = idx.similar("persona number 3", k=12)
    text = repr(hits)
    assert text.startswith("12 hits\n") and "similarity" in text.splitlines()[1]
    assert "Hit(" not in text and "... 2 more" in text
    assert hits[0].id in text
    html = hits._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == 1 + 10
    b = draw(idx, 4, seed=2, record=False)
    text = repr(b)
    assert text.startswith("Batch: 4 personas, strategy herding, seed 2") and "region" in text
    assert all(i in text for i in b.ids)
    assert b._repr_html_().count("<tr>") == 1 + 4
    cov = coverage_of(idx, b.ids, compare_uniform=3)
    text = repr(cov)
    assert text.startswith("coverage of 4 personas in a pool of 60, next to 3 uniform")
    assert "± " in text and "lower ↓" in text
    assert "<caption>coverage of 4" in cov._repr_html_()
    assert json.loads(json.dumps(cov))["n"] == 4  # still a plain dict underneath


def _chat_rows():
    return [{"user 1 personas": f"I have {k} cats.\nI like tea number {k}.",
             "user 2 personas": f"I surf wave {k}.\nI work nights in ward {k}.",
             "Best Generated Conversation": "User 1: hi"} for k in range(25)]


def test_ingest_records_detects_persona_chat_in_a_dataset(tmp_path):
    from persona_index.errors import IngestNote

    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(_chat_rows())
    idx = PersonaIndex(tmp_path / "d.lance", HashEmbedder(dim=32))
    with pytest.warns(IngestNote, match="persona-chat"):  # detected without being asked
        s = ingest_records(idx, ds, source="chat-dataset", near_dedup=False)
    assert s.schema == "persona-chat" and s.added == 50 and s.attributes == ["speaker"]
    rows = idx.snapshot().dataset.to_table().to_pylist()
    assert {r["licence"] for r in rows} == {"CC-BY-4.0"}
    assert sum(r["speaker"] == "user 2" for r in rows) == 25
    # the same rows as plain dicts: the same reading
    idx2 = PersonaIndex(tmp_path / "l.lance", HashEmbedder(dim=32))
    assert ingest_records(idx2, _chat_rows(), near_dedup=False,
                          schema="auto").schema == "persona-chat"
    # schema=None reads the columns as they are: no text field, and the error names the
    # parameter, not a CLI flag
    from persona_index.errors import InputFileError

    with pytest.raises(InputFileError, match="text_field") as e:
        ingest_records(PersonaIndex(tmp_path / "n.lance", HashEmbedder(dim=32)), ds,
                       schema=None)
    assert "--text-field" not in str(e.value)


def test_a_one_valued_field_is_no_stratum(tmp_path):
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(dim=16))
    recs = [{"text": f"a tool builder number {k}", "description": "tool development",
             "kind": "ab"[k % 2]} for k in range(30)]
    s = ingest_records(idx, recs, near_dedup=False)
    assert s.attributes == ["kind"] and s.single_valued == {"description": "tool development"}
    assert idx.attributes == ["kind"] and "description" in idx.columns  # kept, as a plain column
    assert "balance[description]" not in repr(coverage_of(idx, idx.snapshot().ids.to_pylist()[:5]))
    # named explicitly, it is a stratum all the same
    idx2 = PersonaIndex(tmp_path / "t.lance", HashEmbedder(dim=16))
    s = ingest_records(idx2, recs, attrs=["description"], near_dedup=False)
    assert s.attributes == ["description"] and s.single_valued == {}
