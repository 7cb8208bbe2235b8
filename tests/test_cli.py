import json

import click
import pytest
from click.testing import CliRunner

from persona_index_cli.main import cli
from tests.conftest import write_jsonl


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory, embedder):
    db = str(tmp_path_factory.mktemp("cli") / "c.lance")
    r = run(["--db", db, "generate", "--count", "150", "--seed", "5", "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["added"] + doc["near_duplicates"] + doc["exact_duplicates"] == 150
    return db


def test_every_command_has_help():
    def walk(group, prefix):
        for name, cmd in group.commands.items():
            assert cmd.help and cmd.help.strip(), f"{prefix} {name} has no help"
            r = run(prefix[1:] + [name, "--help"])
            assert r.exit_code == 0 and "Usage" in r.output
            if isinstance(cmd, click.Group):
                walk(cmd, prefix + [name])

    walk(cli, ["persona-index"])


def test_similar_distant_info_json(cli_db):
    r = run(["--db", cli_db, "similar", "a nurse", "-k", "4", "--json"])
    hits = json.loads(r.stdout)
    assert r.exit_code == 0 and len(hits) == 4 and {"id", "text", "similarity"} <= set(hits[0])
    r = run(["--db", cli_db, "distant", "a nurse", "-k", "3", "--where", "region = 'Asia'", "--json"])
    far = json.loads(r.stdout)
    assert all(h["region"] == "Asia" for h in far)
    assert max(h["similarity"] for h in far) < min(h["similarity"] for h in hits)
    info = json.loads(run(["--db", cli_db, "info", "--json"]).stdout)
    assert info["format_version"] == 1 and info["count"] > 100
    table = run(["--db", cli_db, "similar", "a nurse", "-k", "2"])
    assert table.exit_code == 0 and "similarity" in table.stdout.splitlines()[0]


def test_ingest_export_and_errors(tmp_path, embedder):
    db = str(tmp_path / "e.lance")
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": "A cartographer in Peru", "region": "SA"},
                                           {"persona": "A sommelier in Porto", "region": "EU"}])
    r = run(["--db", db, "ingest", str(f), "--licence", "CC0", "--no-progress", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["added"] == 2
    out = tmp_path / "x.jsonl"
    r = run(["--db", db, "export", str(out), "--json"])
    assert json.loads(r.stdout)["exported"] == 2
    assert all(json.loads(l)["licence"] == "CC0" for l in open(out))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"persona": "ok"}\n{"persona": \n')
    r = run(["--db", db, "ingest", str(bad), "--no-progress"])
    assert r.exit_code == 1 and "bad.jsonl:2:" in r.output and len(r.output.strip().splitlines()) == 1
    r = run(["--db", db, "similar", "x", "-k", "0"])  # usage errors exit 2
    assert r.exit_code == 2 and "-k" in r.output
    r = run(["--db", db, "similar", "x", "--where", "region ==="])
    assert r.exit_code == 2 and "bad where" in r.output
    r = run(["--db", str(tmp_path / "none.lance"), "info"])
    assert r.exit_code == 1 and "no persona store" in r.output
    r = run(["--db", db, "similar", "x", "-k", "notanumber"])
    assert r.exit_code == 2


def test_help_is_fast_and_imports_nothing_heavy():
    import subprocess
    import sys
    import time

    code = ("import sys, time; t=time.time(); from persona_index_cli.main import cli\n"
            "heavy=[m for m in ('torch','sentence_transformers','lancedb') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    t = time.time()
    subprocess.run([sys.executable, "-m", "persona_index_cli.main", "--help"], check=True,
                   capture_output=True)
    assert time.time() - t < 3.0  # generous on a loaded CI box; measured ~0.2 s


def test_reembed_copies_with_another_model(cli_db, tmp_path):
    new = str(tmp_path / "h.lance")
    r = run(["--db", cli_db, "reembed", new, "--to-model", "hash-384", "--no-progress", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["model"] == "hash-384"
    info = json.loads(run(["--db", new, "info", "--json"]).stdout)
    src = json.loads(run(["--db", cli_db, "info", "--json"]).stdout)
    assert info["count"] == src["count"] and info["model"] == "hash-384"
    assert info["attributes"] == src["attributes"]


def test_sample_out_coverage_replay_and_sessions(cli_db, tmp_path):
    out = tmp_path / "b.jsonl"
    r = run(["--db", cli_db, "sample", "-n", "12", "--seed", "3", "--session", "s1",
             "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ids = [p["id"] for p in doc["personas"]]
    assert len(set(ids)) == 12 and doc["manifest"]["strategy"] == "herding"
    assert [json.loads(l)["id"] for l in open(out)] == ids
    manifest = tmp_path / "b.manifest.json"
    r = run(["--db", cli_db, "sample", "--replay", str(manifest), "--json"])
    assert [p["id"] for p in json.loads(r.stdout)["personas"]] == ids
    r2 = json.loads(run(["--db", cli_db, "sample", "-n", "12", "--seed", "3", "--session", "s1",
                         "--json"]).stdout)
    assert not {p["id"] for p in r2["personas"]} & set(ids)
    cov = json.loads(run(["--db", cli_db, "coverage", "--ids", str(out), "--compare-uniform", "2",
                          "--json"]).stdout)
    assert cov["sample"]["n"] == 12 and "vendi" in cov["uniform_mean"]
    cov_s = json.loads(run(["--db", cli_db, "coverage", "--session", "s1", "--json"]).stdout)
    assert cov_s["sample"]["n"] == 24
    lst = json.loads(run(["--db", cli_db, "sessions", "list", "--json"]).stdout)
    assert lst == [{"session": "s1", "personas": 24, "batches": 2, "last": lst[0]["last"]}]
    show = json.loads(run(["--db", cli_db, "sessions", "show", "s1", "--json"]).stdout)
    assert [m["batch"] for m in show] == [1, 2]
    assert json.loads(run(["--db", cli_db, "sessions", "reset", "s1", "--json"]).stdout)["forgotten"] == 24


def test_sample_stratified_target_and_errors(cli_db):
    r = run(["--db", cli_db, "sample", "-n", "10", "--by", "region", "--seed", "1",
             "--target", "region=Africa:0.5,Asia:0.5", "--json"])
    rows = json.loads(r.stdout)["personas"]
    assert r.exit_code == 0 and sum(p["region"] in ("Africa", "Asia") for p in rows) >= 8
    r = run(["--db", cli_db, "sample", "-n", "100000"])
    assert r.exit_code == 1 and "only" in r.output
    r = run(["--db", cli_db, "sample", "-n", "3", "--strategy", "bogus"])
    assert r.exit_code == 2
    r = run(["--db", cli_db, "coverage"])
    assert r.exit_code == 2


def test_tag_makes_a_stratifiable_attribute(tmp_path, embedder):
    db = str(tmp_path / "t.lance")
    f = write_jsonl(tmp_path / "p.jsonl", [{"persona": t} for t in [
        "A cardiologist treating heart disease", "A nurse on a night shift in an ICU",
        "A backend developer writing Rust services", "A data engineer building pipelines",
        "A surgeon specialising in knee replacements", "A frontend developer who loves CSS"]])
    run(["--db", db, "ingest", str(f), "--no-progress"])
    r = run(["--db", db, "tag", "--attr", "field", "--labels", "medicine,software",
             "--template", "a person working in {label}", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["counts"] == {"medicine": 3, "software": 3}
    info = json.loads(run(["--db", db, "info", "--json"]).stdout)
    assert "field" in info["attributes"] and "field_margin" in info["columns"]
    rows = json.loads(run(["--db", db, "sample", "-n", "4", "--by", "field", "--seed", "0",
                           "--json"]).stdout)["personas"]
    assert sorted(p["field"] for p in rows) == ["medicine", "medicine", "software", "software"]


def test_synthesize_requests_only_and_against_a_server(cli_db, tmp_path):
    from tests.mock_server import MockServer

    batch = tmp_path / "b.jsonl"
    run(["--db", cli_db, "sample", "-n", "5", "--seed", "0", "--out", str(batch)])
    req = tmp_path / "req.jsonl"
    r = CliRunner().invoke(cli, ["--db", cli_db, "synthesize", "--template", "math",
                                 "--personas", str(batch), "--out", str(req), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["requests"] == 5
    assert "no --base-url" in r.stderr
    out = tmp_path / "out.jsonl"
    with MockServer() as srv:
        r = run(["--db", cli_db, "synthesize", "--template", "instruction", "--template", "npc",
                 "--personas", str(batch), "--out", str(out), "--base-url", srv.url,
                 "--no-progress", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["ok"] == 10 and doc["failed"] == 0
    rep = json.loads(run(["outputs-report", str(out), "--threshold", "-1", "--json"]).stdout)
    assert rep["ok"] == 10 and rep["kept"] == 10 and rep["output_vendi"] >= 1
