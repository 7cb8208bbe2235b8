"""Messy files: every value stored faithfully or refused with file:line."""

import json

import pytest

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import InputFileError
from persona_index.ingest import ingest_file, iter_file


@pytest.fixture
def store(tmp_path):
    return PersonaIndex(tmp_path / "s.lance", HashEmbedder(dim=16))


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_booleans_and_huge_integers_are_stored(tmp_path, store):
    rows = [{"persona": f"a farmer number {i}", "retired": i % 2 == 0, "big": 2**70 + i,
             "n": i} for i in range(4)]
    s = ingest_file(store, _jsonl(tmp_path / "a.jsonl", rows), near_dedup=False)
    assert s.added == 4
    got = {r["text"]: r for r in store.snapshot().dataset.to_table().to_pylist()}
    for r in rows:
        g = got[r["persona"]]
        assert g["retired"] is r["retired"] and g["n"] == r["n"]
        assert int(g["big"]) == r["big"]  # beyond int64: kept exactly, as text


def test_byte_order_marks_are_stripped(tmp_path, store):
    (tmp_path / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps({"persona": "a glazier"}).encode() + b"\n")
    (tmp_path / "b.txt").write_bytes(b"\xef\xbb\xbfa cooper\n")
    (tmp_path / "c.csv").write_bytes(b"\xef\xbb\xbfpersona\na fletcher\n")
    assert [r for _, r in iter_file(tmp_path / "a.jsonl")] == [{"persona": "a glazier"}]
    assert [r for _, r in iter_file(tmp_path / "b.txt")] == [{"text": "a cooper"}]
    assert [r for _, r in iter_file(tmp_path / "c.csv")] == [{"persona": "a fletcher"}]


def test_stray_quote_in_csv_is_an_error_naming_its_line(tmp_path, store):
    lines = ["persona"] + [f"person {i}" for i in range(1, 100)]
    lines[4] = '"person 4 with a stray quote'
    p = tmp_path / "q.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"q.csv:5: .*quote opened on this line"):
        ingest_file(store, p, near_dedup=False)
    assert not store.exists


def test_bad_utf8_in_csv_names_its_line(tmp_path, store):
    body = b"persona\n" + b"".join(f"a persona number {i} with some padding text\n".encode()
                                    for i in range(1, 1000)) + b"bad \xff byte\n"
    p = tmp_path / "u.csv"
    p.write_bytes(body)
    with pytest.raises(InputFileError, match=r"u.csv:1001: invalid UTF-8"):
        ingest_file(store, p, near_dedup=False)


@pytest.mark.parametrize("args,code", [
    (["sample", "-n", "3", "--near", "", "--within", "5"], 2),
    (["sample", "-n", "3", "--near", "a nurse"], 2),
    (["similar", "a nurse", "-k", "0"], 2),
    (["sample", "-n", "3", "--strategy", "blend", "--lam", "5"], 2),
    (["sample", "-n", "3", "--where", "region = 'EU' AMD x = 1"], 2),
    (["sample", "-n", "999"], 1),
])
def test_cli_error_contract(tmp_path, args, code):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    path = str(tmp_path / "p.lance")
    PersonaIndex(path, HashEmbedder(dim=16)).add(
        [{"text": f"a person {i}", "region": "EU"} for i in range(20)], attributes=["region"])
    r = CliRunner().invoke(cli, ["--db", path] + args)
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and "Error:" in r.output
    rj = CliRunner().invoke(cli, ["--db", path] + args + ["--json"])
    assert rj.exit_code == code
    doc = json.loads(rj.stdout.strip().splitlines()[0])
    assert doc["kind"] == ("usage" if code == 2 else "data") and doc["error"]


def test_json_output_is_strict_json():
    from persona_index_cli.main import strict_json

    doc = strict_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(json.dumps(doc, allow_nan=False)) == {"a": None, "b": [1.0, None],
                                                            "c": {"d": None}}


SCRIPTS = {
    "thai": ["ครูสอนวิทยาศาสตร์ในโรงเรียนชนบทที่เชียงใหม่", "ชาวนาปลูกข้าวในจังหวัดสุรินทร์",
             "พยาบาลที่ทำงานกะดึกในกรุงเทพ", "นักเขียนโปรแกรมที่ชอบปีนเขา",
             "แม่ค้าขายผลไม้ในตลาดน้ำ"],
    "chinese": ["一位在成都教数学的中学老师", "在深圳工厂工作的电子工程师",
                "喜欢书法的退休医生", "在云南种茶的农民"],
    "hindi": ["जयपुर में एक स्कूल शिक्षिका जो बच्चों को गणित पढ़ाती है",
              "मुंबई का एक टैक्सी ड्राइवर जिसे क्रिकेट पसंद है",
              "गाँव की एक डॉक्टर जो मुफ्त इलाज करती है"],
    "emoji": ["👩‍🏫📚🌍", "🧑‍🌾🌾🚜", "👨‍🍳🍜🔥", "🧑‍💻🎮🌙"],
}


def test_distinct_personas_in_any_script_are_never_merged(tmp_path, new_store):
    rows = [{"persona": t} for texts in SCRIPTS.values() for t in texts]
    rows.append({"persona": SCRIPTS["thai"][0] + " "})  # an exact duplicate still goes
    report = tmp_path / "report.jsonl"
    s = ingest_file(new_store, _jsonl(tmp_path / "s.jsonl", rows), report=str(report))
    assert s.added == sum(len(v) for v in SCRIPTS.values())
    assert s.exact_duplicates == 1 and s.near_duplicates == 0
    assert s.embedder_collisions >= 3  # the model could not tell several apart
    reasons = [json.loads(l)["reason"] for l in open(report, encoding="utf-8")]
    assert "embedder-collision (kept)" in reasons


def test_report_pointed_at_the_input_is_refused(tmp_path, store):
    p = _jsonl(tmp_path / "in.jsonl", [{"persona": "a miller"}])
    before = p.read_bytes()
    with pytest.raises(InputFileError, match="is the input file"):
        ingest_file(store, p, report=str(p))
    assert p.read_bytes() == before and not store.exists


def test_parquet_lists_of_timestamps_are_stored_as_json_text(tmp_path, store):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table({"persona": ["a clockmaker", "a diver"],
                  "seen": pa.array([[dt.datetime(2024, 1, 2, 3, 4)], None],
                                   pa.list_(pa.timestamp("s")))})
    pq.write_table(t, tmp_path / "t.parquet")
    assert ingest_file(store, tmp_path / "t.parquet", near_dedup=False).added == 2
    got = {r["text"]: r["seen"] for r in store.snapshot().dataset.to_table().to_pylist()}
    assert json.loads(got["a clockmaker"]) == ["2024-01-02T03:04:00"] and got["a diver"] is None


def test_batch_api_custom_ids_are_unique(tmp_path):
    from persona_index.synthesis.run import write_requests
    from persona_index.synthesis.templates import load_template

    personas = [{"id": "a", "text": "a nurse"}, {"id": "b", "text": "a poet"},
                {"id": "a", "text": "a nurse"}]
    tmpl = [load_template("instruction"), load_template("math"), load_template("instruction")]
    out = tmp_path / "req.jsonl"
    n = write_requests(personas, tmpl, str(out), model="m")
    ids = [json.loads(l)["custom_id"] for l in open(out)]
    assert n == len(ids) == 4 and len(set(ids)) == 4


def test_outputs_never_clobber_inputs_and_follow_links(tmp_path):
    import os

    from persona_index.errors import InvalidQueryError
    from persona_index.outputs import output_file

    src = tmp_path / "in.jsonl"
    src.write_text("keep me\n")
    with pytest.raises(InvalidQueryError, match="is the input"):
        with output_file(src, inputs=[str(src)]) as fh:
            fh.write("x")
    assert src.read_text() == "keep me\n"
    target = tmp_path / "target.jsonl"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    with output_file(link) as fh:
        fh.write("through the link\n")
    assert link.is_symlink() and target.read_text() == "through the link\n"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    import threading

    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    with output_file(fifo) as fh:
        fh.write("into the pipe\n")
    reader.join(5)
    assert got == ["into the pipe\n"] and stat_is_fifo(fifo)


def stat_is_fifo(p):
    import os
    import stat

    return stat.S_ISFIFO(os.stat(p).st_mode)


def test_sample_out_dash_and_bad_manifests(tmp_path):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    path = str(tmp_path / "p.lance")
    PersonaIndex(path, HashEmbedder(dim=16)).add([{"text": f"a person {i}"} for i in range(20)])
    r = CliRunner().invoke(cli, ["--db", path, "sample", "-n", "3", "--seed", "1", "--out", "-"])
    assert r.exit_code == 0 and len([json.loads(l) for l in r.stdout.splitlines()]) == 3
    r = CliRunner().invoke(cli, ["--db", path, "sample", "-n", "3", "--out", "-", "--json"])
    assert r.exit_code == 2
    out = tmp_path / "b.jsonl"
    r = CliRunner().invoke(cli, ["--db", path, "sample", "-n", "3", "--seed", "1", "--out", str(out)])
    assert r.exit_code == 0
    m = json.load(open(tmp_path / "b.manifest.json"))
    for edit in ({"seed": "one"}, {"n": None}, {"ids": [1, 2]}, {"strategy": None}):
        bad = tmp_path / "bad.manifest.json"
        bad.write_text(json.dumps({**m, **edit}))
        r = CliRunner().invoke(cli, ["--db", path, "sample", "--replay", str(bad)])
        assert r.exit_code == 1 and "manifest" in r.output and "Traceback" not in r.output
    del m["table_version"]
    bad.write_text(json.dumps(m))
    r = CliRunner().invoke(cli, ["--db", path, "sample", "--replay", str(bad)])
    assert r.exit_code == 1 and "lacks 'table_version'" in r.output


def test_label_template_with_an_unknown_slot(built_store):
    from persona_index.errors import InvalidQueryError
    from persona_index.tagging import tag

    with pytest.raises(InvalidQueryError, match="only slot is"):
        tag(built_store, "field", ["a", "b"], template="a person in {field}")
