"""Published persona data sets ingest with the right text, attributes and licence."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.ingest import ingest_file


def _store(tmp_path):
    return PersonaIndex(tmp_path / "s.lance", HashEmbedder(dim=16))


def test_personahub_task_file(tmp_path):
    f = tmp_path / "math.jsonl"
    f.write_text("\n".join(json.dumps({"input persona": f"a surveyor number {i}",
                                       "synthesized text": "x" * 300 + str(i)})
                           for i in range(5)) + "\n", encoding="utf-8")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="auto", near_dedup=False)
    assert s.schema == "personahub" and s.added == 5 and s.text_field == "input persona"
    rows = idx.dataset.to_table().to_pylist()
    assert {r["licence"] for r in rows} == {"CC-BY-NC-SA-4.0"}
    assert rows[0]["synthesized_text"].startswith("xxx") and idx.attributes == []


def test_persona_chat_csv_joins_the_facts(tmp_path):
    f = tmp_path / "chat.csv"
    with open(f, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["user 1 personas", "user 2 personas", "Best Generated Conversation"])
        w.writerow(["I like tea.\nI have a cat.", "I surf.", "User 1: hi"])
        w.writerow(["I am a nurse.\nI live in Lyon.", "I ski.", "User 1: hello"])
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="auto", near_dedup=False, licence=None)
    assert s.schema == "persona-chat" and s.added == 2
    texts = sorted(r["text"] for r in idx.dataset.to_table().to_pylist())
    assert texts == ["I am a nurse. I live in Lyon.", "I like tea. I have a cat."]
    assert {r["licence"] for r in idx.dataset.to_table().to_pylist()} == {"CC-BY-4.0"}


def test_nemotron_parquet_bands_age_and_stratifies(tmp_path):
    n = 24
    t = pa.table({"uuid": [f"u{i}" for i in range(n)],
                  "persona": [f"a resident number {i} of the valley" for i in range(n)],
                  "professional_persona": [f"works shift {i}" for i in range(n)],
                  "sex": ["Female", "Male"] * (n // 2),
                  "age": [19 + 3 * i for i in range(n)],
                  "occupation": ["teacher", "farmer", "driver"] * (n // 3),
                  "state": ["TX", "OH"] * (n // 2), "country": ["USA"] * n})
    pq.write_table(t, tmp_path / "n.parquet")
    path = str(tmp_path / "s.lance")
    idx = PersonaIndex(path, HashEmbedder(dim=16))
    s = ingest_file(idx, tmp_path / "n.parquet", schema="auto", near_dedup=False)
    assert s.schema == "nemotron" and s.added == n
    assert "age_band" in idx.attributes and "professional_persona" not in idx.attributes
    rows = idx.dataset.to_table().to_pylist()
    bands = {r["age"]: r["age_band"] for r in rows}
    assert bands[19] == "18-24" and bands[25] == "25-34" and bands[88] == "65+"
    assert {r["licence"] for r in rows} == {"CC-BY-4.0"}
    r = CliRunner().invoke(__import__("persona_index_cli.main", fromlist=["cli"]).cli,
                           ["--db", path, "sample", "-n", "6", "--by", "age_band", "--seed", "0",
                            "--json"])
    assert r.exit_code == 0, r.output
    got = [p["age_band"] for p in json.loads(r.stdout)["personas"]]
    assert len(set(got)) == 6  # equal allocation over the six bands present


def test_a_generic_file_is_left_alone(tmp_path):
    f = tmp_path / "g.jsonl"
    f.write_text(json.dumps({"persona": "a glassblower", "age": 40}) + "\n", encoding="utf-8")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="auto", near_dedup=False)
    assert s.schema is None and "age_band" not in idx.columns
