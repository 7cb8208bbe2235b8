"""Published persona data sets ingest with the right text, attributes and licence."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
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
    rows = idx.snapshot().dataset.to_table().to_pylist()
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
    assert s.schema == "persona-chat" and s.added == 4 and s.attributes == ["speaker"]
    rows = idx.snapshot().dataset.to_table().to_pylist()
    # both persona columns, each row saying which speaker it is
    assert sorted((r["speaker"], r["text"]) for r in rows) == [
        ("user 1", "I am a nurse. I live in Lyon."), ("user 1", "I like tea. I have a cat."),
        ("user 2", "I ski."), ("user 2", "I surf.")]
    assert {r["licence"] for r in rows} == {"CC-BY-4.0"}
    by_line = {}
    for r in rows:  # both personas of a row carry that row's line
        by_line.setdefault(r["source_line"], set()).add(r["speaker"])
    assert len(by_line) == 2 and all(v == {"user 1", "user 2"} for v in by_line.values())


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
    rows = idx.snapshot().dataset.to_table().to_pylist()
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


# -- finepersonas, profiles, --bands, --template ------------------------------

def _rows(idx):
    return idx.snapshot().dataset.to_table().to_pylist()


def _cli(*args):
    from persona_index_cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def _hash_model():  # the global option that picks the embedder (renamed from --model)
    from persona_index_cli.main import cli

    name = "--embed-model" if any("--embed-model" in p.opts for p in cli.params) else "--model"
    return [name, "hash-16"]


def test_finepersonas_keeps_source_id_and_stratifies_by_first_label(tmp_path):
    labels = ['["Education", "Science"]', '["Arts"]', '["Health", "Education"]']
    f = tmp_path / "fp.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"<urn:uuid:{i}>", "persona": f"a person of trade {i}",
                                       "labels": labels[i % 3]}) for i in range(9)) + "\n",
                 encoding="utf-8")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="auto", near_dedup=False)
    assert s.schema == "finepersonas" and s.added == 9 and s.text_field == "persona"
    assert idx.attributes == ["label"]
    rows = {r["source_id"]: r for r in _rows(idx)}
    assert set(rows) == {f"<urn:uuid:{i}>" for i in range(9)}
    r4 = rows["<urn:uuid:4>"]  # the store's id is the text's hash, not the data set's
    assert r4["text"] == "a person of trade 4" and r4["id"] != "<urn:uuid:4>"
    assert r4["label"] == "Arts" and rows["<urn:uuid:2>"]["label"] == "Health"
    assert json.loads(rows["<urn:uuid:2>"]["labels"]) == ["Health", "Education"]
    assert {r["licence"] for r in rows.values()} == {"llama3"}
    r = _cli("--db", tmp_path / "s.lance", "sample", "-n", "3", "--by", "label", "--seed", "0",
             "--json")
    assert r.exit_code == 0, r.output
    assert sorted(p["label"] for p in json.loads(r.stdout)["personas"]) == [
        "Arts", "Education", "Health"]


def test_finepersonas_labels_edge_cases():
    from persona_index.schemas import apply

    assert apply("finepersonas", {"persona": "p", "labels": "[]"})["label"] is None
    assert apply("finepersonas", {"persona": "p", "labels": "not json"})["label"] is None
    got = apply("finepersonas", {"persona": "p", "labels": ["", "Law"]})  # a parquet list column
    assert got["label"] == "Law" and json.loads(got["labels"]) == ["", "Law"]


def _profiles_csv(path):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["age", "sex", "occupation", "city_country", "education", "income"])
        w.writerow(["34", "female", "nurse", "Lyon, France", "master's degree", "42000"])
        w.writerow(["17", "male", "", "", "", "n/a"])
        w.writerow(["65", "male", "farmer", "Ames, USA", "", "150000"])
    return path


def test_profiles_compose_text_and_derive_bands_without_a_licence(tmp_path):
    f = _profiles_csv(tmp_path / "people.csv")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="auto", near_dedup=False)
    assert s.schema == "profiles" and s.added == 3 and s.text_field == "text"
    assert set(idx.attributes) == {"sex", "age_band", "education", "occupation", "city_country",
                                   "income_band"}
    rows = {r["text"]: r for r in _rows(idx)}
    assert set(rows) == {
        "34-year-old female nurse from Lyon, France, education: master's degree, income: 42000",
        "17-year-old male, income: n/a",
        "65-year-old male farmer from Ames, USA, income: 150000"}
    got = {r["age"]: (r["age_band"], r["income_band"], r["licence"]) for r in rows.values()}
    assert got == {"34": ("25-34", "25000-49999", None), "17": ("under 18", None, None),
                   "65": ("65+", "150000+", None)}


def test_profiles_template_leaves_out_bracketed_phrases(tmp_path):
    f = _profiles_csv(tmp_path / "people.csv")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, template="A {age}-year-old {sex}[ {occupation}][ from {city_country}].",
                    near_dedup=False, licence="mine")
    assert s.schema == "profiles"
    rows = _rows(idx)
    assert sorted(r["text"] for r in rows) == ["A 17-year-old male.",
                                               "A 34-year-old female nurse from Lyon, France.",
                                               "A 65-year-old male farmer from Ames, USA."]
    assert {r["licence"] for r in rows} == {"mine"}


def test_profiles_template_naming_an_unknown_field_is_a_clean_error(tmp_path):
    from persona_index.errors import InputFileError

    f = _profiles_csv(tmp_path / "people.csv")
    idx = _store(tmp_path)
    with pytest.raises(InputFileError, match=r"people\.csv:2: template field \{agee\}: no such"):
        ingest_file(idx, f, template="A {agee}-year-old")
    with pytest.raises(InputFileError, match=r"people\.csv: template field\(s\) \['town'\] in no"):
        ingest_file(idx, f, template="A {age}-year-old[ from {town}]")
    with pytest.raises(InputFileError, match=r"people\.csv:3: template field \{occupation\}: no "
                                             r"value"):  # outside [ ], a blank cell is an error
        ingest_file(idx, f, template="A {occupation}")
    assert not idx.exists  # refused before any write
    r = _cli("--db", tmp_path / "c.lance", *_hash_model(), "ingest", f, "--template", "A {agee}")
    assert r.exit_code == 1 and "people.csv:2: template field {agee}" in r.output
    assert "Traceback" not in r.output
    for bad in ["A {age", "A [{age}", "A [x [{age}]]", "no field", "A {}", ""]:
        r = _cli("--db", tmp_path / "c.lance", "ingest", f, "--template", bad)
        assert r.exit_code == 2 and "--template" in r.output and "Traceback" not in r.output, bad
    r = _cli("--db", tmp_path / "c.lance", "ingest", f, "--template", "{age}",
             "--schema", "nemotron")
    assert r.exit_code == 2 and "--schema profiles" in r.output


def test_detection_of_the_new_schemas():
    from persona_index.schemas import detect

    assert detect(["id", "persona", "labels", "embedding"]) == "finepersonas"
    assert detect(["age", "sex", "occupation", "income"]) == "profiles"
    assert detect(["age", "sex", "occupation", "description"]) is None  # has a text
    assert detect(["age", "sex", "occupation", "travel_persona"]) is None
    assert detect(["age", "sex", "city_country"]) is None
    assert detect(["persona", "labels"]) is None


def test_bands_on_a_generic_file_include_their_lower_edge(tmp_path):
    ages = [17, 18, 24, 24.9, 25, 35, 49, 50, 64, 65, 90, "30", "n/a", None]
    f = tmp_path / "g.jsonl"
    f.write_text("\n".join(json.dumps({"persona": f"a carpenter numbered {i}", "age": a})
                           for i, a in enumerate(ages)) + "\n", encoding="utf-8")
    idx = _store(tmp_path)
    s = ingest_file(idx, f, schema="none", bands={"age": [18, 25, 35, 50, 65]}, near_dedup=False)
    assert s.schema is None and "age_band" in idx.attributes
    got = {r["text"]: r["age_band"] for r in _rows(idx)}
    want = ["under 18", "18-24", "18-24", "18-24", "25-34", "35-49", "35-49", "50-64", "50-64",
            "65+", "65+", "25-34", None, None]
    assert [got[f"a carpenter numbered {i}"] for i in range(len(ages))] == want


def test_cli_bands_replace_the_nemotron_bands_and_stratify(tmp_path):
    n = 12
    t = pa.table({"uuid": [f"u{i}" for i in range(n)],
                  "persona": [f"a resident number {i} of the plain" for i in range(n)],
                  "professional_persona": [f"works shift {i}" for i in range(n)],
                  "sex": ["Female", "Male"] * (n // 2), "age": [20 + 5 * i for i in range(n)],
                  "income": [1000 * i for i in range(n)]})
    pq.write_table(t, tmp_path / "n.parquet")
    db = tmp_path / "s.lance"
    r = _cli("--db", db, *_hash_model(), "ingest", tmp_path / "n.parquet", "--bands", "age=30,60",
             "--bands", "income=5000", "--no-near-dedup", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["schema"] == "nemotron" and summary["added"] == n
    assert {"age_band", "income_band"} <= set(summary["attributes"])
    rows = {r["age"]: (r["age_band"], r["income_band"]) for r in _rows(PersonaIndex(db))}
    assert rows[25] == ("under 30", "under 5000") and rows[30] == ("30-59", "under 5000")
    assert rows[60] == ("60+", "5000+") and rows[45] == ("30-59", "5000+")
    r = _cli("--db", db, "sample", "-n", "3", "--by", "age_band", "--seed", "0", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(p["age_band"] for p in json.loads(r.stdout)["personas"]) == [
        "30-59", "60+", "under 30"]


@pytest.mark.parametrize("spec", ["age", "age=", "=18,25", "age=18,x", "age=30,20", "age=18,18",
                                  "age=1;2"])
def test_a_malformed_bands_option_is_a_usage_error(tmp_path, spec):
    f = _profiles_csv(tmp_path / "people.csv")
    r = _cli("--db", tmp_path / "s.lance", "ingest", f, "--bands", spec)
    assert r.exit_code == 2, r.output
    assert "--bands" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s.lance").exists()


def test_python_bands_are_checked_and_a_band_field_must_exist(tmp_path):
    from persona_index.errors import IngestOptionError, InputFileError

    f = _profiles_csv(tmp_path / "people.csv")
    idx = _store(tmp_path)
    with pytest.raises(IngestOptionError, match="strictly ascending"):
        ingest_file(idx, f, bands={"age": [30, 20]})
    with pytest.raises(InputFileError, match=r"bands field\(s\) \['agee'\] in no record"):
        ingest_file(idx, f, bands={"agee": [30]})
    assert not idx.exists
