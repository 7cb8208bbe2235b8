import json
import re

import click
import pytest
from click.testing import CliRunner

from persona_index_cli.main import cli
from tests.conftest import unchanged_after, write_jsonl


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory, embedder):
    db = str(tmp_path_factory.mktemp("cli") / "c.lance")
    r = run(["--db", db, "generate", "--count", "150", "--seed", "5", "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["added"] + doc["near_duplicates"] + doc["exact_duplicates"] == 150
    yield from unchanged_after(db, db)  # tests that write use own_db


@pytest.fixture
def own_db(cli_db, tmp_path):
    """A private copy of the module's store, for tests that write sessions:
    whatever such a test leaves behind, even when it fails, is its own."""
    import shutil

    return shutil.copytree(cli_db, tmp_path / "own.lance")


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


def test_sample_out_coverage_replay_and_sessions(own_db, tmp_path):
    out = tmp_path / "b.jsonl"
    r = run(["--db", own_db, "sample", "-n", "12", "--seed", "3", "--session", "s1",
             "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ids = [p["id"] for p in doc["personas"]]
    assert len(set(ids)) == 12 and doc["manifest"]["strategy"] == "herding"
    assert [json.loads(l)["id"] for l in open(out)] == ids
    manifest = tmp_path / "b.manifest.json"
    r = run(["--db", own_db, "sample", "--replay", str(manifest), "--json"])
    assert [p["id"] for p in json.loads(r.stdout)["personas"]] == ids
    r2 = json.loads(run(["--db", own_db, "sample", "-n", "12", "--seed", "3", "--session", "s1",
                         "--json"]).stdout)
    assert not {p["id"] for p in r2["personas"]} & set(ids)
    cov = json.loads(run(["--db", own_db, "coverage", "--ids", str(out), "--compare-uniform", "2",
                          "--json"]).stdout)
    assert cov["sample"]["n"] == 12 and "vendi" in cov["uniform_mean"]
    cov_s = json.loads(run(["--db", own_db, "coverage", "--session", "s1", "--json"]).stdout)
    assert cov_s["sample"]["n"] == 24
    lst = json.loads(run(["--db", own_db, "sessions", "list", "--json"]).stdout)
    assert lst == [{"session": "s1", "personas": 24, "batches": 2, "last": lst[0]["last"],
                    "excludes": []}]
    show = json.loads(run(["--db", own_db, "sessions", "show", "s1", "--json"]).stdout)
    assert [m["batch"] for m in show] == [1, 2]
    assert json.loads(run(["--db", own_db, "sessions", "reset", "s1", "--json"]).stdout)["forgotten"] == 24


def test_sample_stratified_target_and_errors(cli_db):
    r = run(["--db", cli_db, "sample", "-n", "10", "--by", "region", "--seed", "1",
             "--target", "region=Africa:0.5,Asia:0.5", "--json"])
    rows = json.loads(r.stdout)["personas"]
    from collections import Counter

    # values the target does not name get weight 0: exactly half and half
    assert r.exit_code == 0 and Counter(p["region"] for p in rows) == {"Africa": 5, "Asia": 5}
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
    # the mock replies "Reply for <persona>": 5 distinct responses, each under 2 templates
    assert rep["ok"] == 10 and rep["kept"] == 10
    assert rep["output_near_duplicate_rate"] == 1.0 and 1.5 < rep["output_vendi"] <= 5 + 1e-6


# --- one name per concept: --embed-model, --llm-model, --stratum-method -----------------------

def test_embed_model_reaches_the_embedder_and_old_model_is_a_noted_alias(tmp_path):
    new, old = str(tmp_path / "new.lance"), str(tmp_path / "old.lance")
    args = ["generate", "--count", "12", "--no-progress", "--json"]
    r = run(["--db", new, "--embed-model", "hash-384"] + args)
    assert r.exit_code == 0, r.output
    assert json.loads(run(["--db", new, "info", "--json"]).stdout)["model"] == "hash-384"
    assert "deprecated" not in r.stderr
    r = run(["--db", old, "--model", "hash-16"] + args)  # the old spelling still works
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 12  # the note stays off stdout
    assert r.stderr.strip().splitlines() == ["note: --model is deprecated; use --embed-model"]
    info = json.loads(run(["--db", old, "info", "--json"]).stdout)
    assert info["model"] == "hash-16" and info["dim"] == 16
    # the store refuses another embedder given by the new name
    r = run(["--db", new, "--embed-model", "hash-16", "similar", "x", "--json"])
    assert r.exit_code == 1 and "hash-16" in r.stderr
    # both spellings, agreeing: fine (with the note); disagreeing: a usage error naming both
    r = run(["--db", new, "--model", "hash-384", "--embed-model", "hash-384", "info", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "hash-384"
    assert "note: --model is deprecated; use --embed-model" in r.stderr
    r = run(["--db", new, "--model", "hash-16", "--embed-model", "hash-384", "info", "--json"])
    assert r.exit_code == 2
    assert "--model" in r.stderr and "--embed-model" in r.stderr and "disagree" in r.stderr
    assert json.loads(r.stdout)["kind"] == "usage"


def _request_models(path):
    return {json.loads(l)["body"]["model"] for l in open(path)}


def test_llm_model_reaches_the_requests_and_old_model_is_a_noted_alias(tmp_path):
    personas = write_jsonl(tmp_path / "p.jsonl", [{"persona": "A beekeeper in Chile"},
                                                  {"persona": "A tram driver in Lisbon"}])
    base = ["synthesize", "--template", "math", "--personas", str(personas), "--requests-only",
            "--json", "--out"]
    r = run(base + [str(tmp_path / "a.jsonl"), "--llm-model", "new-llm"])
    assert r.exit_code == 0, r.output
    assert _request_models(tmp_path / "a.jsonl") == {"new-llm"} and "deprecated" not in r.stderr
    r = run(base + [str(tmp_path / "b.jsonl"), "--model", "old-llm"])
    assert r.exit_code == 0 and json.loads(r.stdout)["requests"] == 2
    assert _request_models(tmp_path / "b.jsonl") == {"old-llm"}
    assert "note: --model is deprecated; use --llm-model" in r.stderr.splitlines()
    r = run(base + [str(tmp_path / "c.jsonl")])
    assert _request_models(tmp_path / "c.jsonl") == {"gpt-4o-mini"}  # the default is unchanged
    r = run(base + [str(tmp_path / "d.jsonl"), "--model", "x", "--llm-model", "x"])
    assert r.exit_code == 0 and _request_models(tmp_path / "d.jsonl") == {"x"}
    r = run(base + [str(tmp_path / "e.jsonl"), "--model", "x", "--llm-model", "y"])
    assert r.exit_code == 2 and "--llm-model" in r.stderr and "--model" in r.stderr
    assert not (tmp_path / "e.jsonl").exists()
    # the group's --embed-model and a subcommand's --llm-model are two things
    r = run(["--embed-model", "hash-384"] + base + [str(tmp_path / "f.jsonl"),
                                                    "--llm-model", "y"])
    assert r.exit_code == 0 and _request_models(tmp_path / "f.jsonl") == {"y"}


@pytest.mark.parametrize("command", ["extract", "expand"])
def test_extract_and_expand_take_llm_model(command, tmp_path, monkeypatch):
    import persona_index_cli.synth as cli_synth

    seen = []

    def spy(base_url, llm_model, *rest):
        seen.append(llm_model)
        raise click.ClickException("stopped before calling the endpoint")

    monkeypatch.setattr(cli_synth, "_client_config", spy)
    src = write_jsonl(tmp_path / "p.jsonl", [{"persona": "A glassblower in Murano"}])
    args = ([command, str(src)] if command == "extract" else [command, "--personas", str(src)])
    args = ["--db", str(tmp_path / "s.lance"), "--embed-model", "hash-384"] + args
    args += ["--base-url", "http://127.0.0.1:9/v1"]
    r = run(args + ["--llm-model", "new-llm"])
    assert r.exit_code == 1 and "deprecated" not in r.stderr
    r = run(args + ["--model", "old-llm"])
    assert r.exit_code == 1 and "note: --model is deprecated; use --llm-model" in r.stderr
    assert seen == ["new-llm", "old-llm"]
    r = run(args + ["--model", "a", "--llm-model", "b"])
    assert r.exit_code == 2 and "disagree" in r.stderr and seen == ["new-llm", "old-llm"]


def test_stratum_method_and_the_old_within_stratum(cli_db):
    base = ["--db", cli_db, "sample", "-n", "6", "--by", "region", "--seed", "4", "--json"]
    new = run(base + ["--stratum-method", "farthest"])
    assert new.exit_code == 0, new.output
    assert json.loads(new.stdout)["manifest"]["params"]["method"] == "farthest"
    old = run(base + ["--within-stratum", "farthest"])
    assert old.exit_code == 0
    assert "note: --within-stratum is deprecated; use --stratum-method" in old.stderr
    assert json.loads(old.stdout)["personas"] == json.loads(new.stdout)["personas"]
    assert json.loads(old.stdout)["manifest"]["params"]["method"] == "farthest"
    plain = json.loads(run(base).stdout)["manifest"]["params"]
    assert plain["method"] == "herding" and "within" not in plain  # the default since #24
    r = run(base + ["--within-stratum", "farthest", "--stratum-method", "farthest"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["personas"] == json.loads(new.stdout)["personas"]
    r = run(base + ["--within-stratum", "farthest", "--stratum-method", "uniform"])
    assert r.exit_code == 2 and "--stratum-method" in r.stderr and "--within-stratum" in r.stderr
    r = run(base + ["--within-stratum", "bogus"])
    assert r.exit_code == 2
    # --within stays the neighbourhood size of --near
    r = run(["--db", cli_db, "sample", "-n", "3", "--near", "a nurse", "--within", "20",
             "--seed", "0", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["manifest"]["within"] == 20


@pytest.mark.parametrize("args, new, old", [
    ([], "--embed-model", "--model"),
    (["synthesize"], "--llm-model", "--model"),
    (["extract"], "--llm-model", "--model"),
    (["expand"], "--llm-model", "--model"),
    (["sample"], "--stratum-method", "--within-stratum"),
])
def test_help_shows_the_new_names_only(args, new, old):
    r = run(args + ["--help"])
    assert r.exit_code == 0
    spelled = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", r.stdout))
    assert new in spelled and old not in spelled


# --- issue #11 item 6: what the CLI fuzz test found in the LLM and embedding commands ----------

def _hash_store(path):
    """Group options for a store embedded with hash-16 (the option's name is read
    from the group, so either spelling of the embedding-model option works)."""
    by_name = {p.name: p for p in cli.params}
    return ["--db", str(path), (by_name.get("embed_model") or by_name["model"]).opts[0], "hash-16"]


def _closed_url():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _one_clean_line(r):
    assert "Traceback" not in r.output and ".py\", line" not in r.output, r.output
    assert r.stderr.strip().splitlines()[-1].startswith("Error: "), r.stderr


@pytest.fixture
def seeds(tmp_path):
    return str(write_jsonl(tmp_path / "seeds.jsonl", [{"text": "a beekeeper in Chile"},
                                                      {"text": "a luthier in Cremona"}]))


def test_expand_runs_against_a_server(tmp_path, seeds):
    # `expand --personas F --base-url U` raised NameError ('out' is not defined)
    from tests.mock_server import MockServer

    with MockServer() as srv:
        r = CliRunner().invoke(cli, _hash_store(tmp_path / "x.lance") + [
            "expand", "--personas", seeds, "--base-url", srv.url, "--rounds", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 2


def test_llm_commands_report_an_unreachable_endpoint_in_one_line(tmp_path, seeds):
    # a closed port gave exit 0 with every request failed (and synthesize wrote failed
    # rows that a rerun would then skip); now: exit 1, one line, nothing written
    url = _closed_url()
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "a text about bees"}])
    out = tmp_path / "out.jsonl"
    for args in (["synthesize", "--template", "math", "--personas", seeds, "--out", str(out),
                  "--no-progress"], ["extract", str(corpus)], ["expand", "--personas", seeds]):
        r = CliRunner().invoke(cli, _hash_store(tmp_path / "x.lance") + args + [
            "--base-url", url, "--retries", "0"])
        assert r.exit_code == 1, (args, r.output)
        _one_clean_line(r)
        assert "cannot reach the endpoint" in r.stderr and url in r.stderr
    assert not out.exists() or out.read_text() == ""  # a rerun sends every request


@pytest.mark.parametrize("bad", [["--base-url", "http://[::1"], ["--base-url", "not a url"],
                                 ["--temperature", "nan"], ["--temperature", "inf"],
                                 ["--timeout", "nan"], ["--api-key-env", "PI_TEST_BAD_KEY"]])
def test_llm_commands_refuse_bad_urls_and_values_before_calling(tmp_path, seeds, bad, caplog,
                                                                  monkeypatch):
    # each of these raised inside every request task: a traceback, and asyncio's
    # "Task exception was never retrieved" for the others
    import gc
    import logging

    from tests.mock_server import MockServer

    monkeypatch.setenv("PI_TEST_BAD_KEY", "s\u00e9cret\nX-Injected: 1")
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"text": "a text about bees"}])
    with MockServer() as srv, caplog.at_level(logging.ERROR, logger="asyncio"):
        for args in (["synthesize", "--template", "math", "--personas", seeds, "--out",
                      str(tmp_path / "out.jsonl"), "--no-progress"], ["extract", str(corpus)],
                     ["expand", "--personas", seeds]):
            r = CliRunner().invoke(cli, _hash_store(tmp_path / "x.lance") + args + [
                "--base-url", srv.url, "--retries", "0"] + bad)
            gc.collect()
            assert r.exit_code == 1, (args, bad, r.output)
            _one_clean_line(r)
            assert "s\u00e9cret" not in r.output  # the key is never shown
        assert srv.state.requests == 0
    assert not [rec for rec in caplog.records if rec.name == "asyncio"]


def test_reembed_huge_batch_size_is_a_usage_error(tmp_path):
    # --batch-size 2**64 raised OverflowError from lance's scanner
    db = tmp_path / "p.lance"
    assert run(_hash_store(db) + ["generate", "--count", "3", "--no-progress"]).exit_code == 0
    r = CliRunner().invoke(cli, _hash_store(db) + [
        "reembed", str(tmp_path / "n.lance"), "--to-model", "hash-8", "--batch-size",
        str(2**64), "--no-progress"])
    assert r.exit_code == 2 and "--batch-size" in r.stderr, r.output


@pytest.mark.parametrize("rows,msg", [
    ("[1, 2]\n", "bad.jsonl:1: expected a JSON object"),
    ('{"response": "hi"}\n', "output row 1 needs a 'persona' and a 'response' text"),
    ('{"persona": "a baker", "response": 5}\n', "output row 1 needs a 'persona'"),
    ('{"persona": \n', "bad.jsonl:1: malformed JSON")])
def test_outputs_report_names_a_bad_row(tmp_path, rows, msg):
    # rows without a persona, or not objects, raised KeyError / AttributeError
    f = tmp_path / "bad.jsonl"
    f.write_text(rows, encoding="utf-8")
    r = CliRunner().invoke(cli, _hash_store(tmp_path / "x.lance") + ["outputs-report", str(f)])
    assert r.exit_code == 1, r.output
    _one_clean_line(r)
    assert msg in r.stderr


def test_replay_uses_the_manifest_store_unless_db_names_another(cli_db, tmp_path, monkeypatch):
    # issue #15: replay no longer swaps a given --db for the manifest's store in silence
    monkeypatch.delenv("PERSONA_INDEX_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # the default --db (./personas.lance) does not exist here
    out = tmp_path / "r.jsonl"
    r = run(["--db", cli_db, "sample", "-n", "5", "--seed", "2", "--out", str(out), "--json"])
    ids = [p["id"] for p in json.loads(r.stdout)["personas"]]
    manifest = str(tmp_path / "r.manifest.json")
    r = CliRunner().invoke(cli, ["sample", "--replay", manifest, "--json"])
    assert r.exit_code == 0 and [p["id"] for p in json.loads(r.stdout)["personas"]] == ids
    assert "replayed on" in r.stderr and cli_db.rstrip("/").split("/")[-1] in r.stderr
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "other.lance"), "sample", "--replay",
                                 manifest])
    assert r.exit_code == 1 and "other.lance" in r.output and "Traceback" not in r.output


def test_get_from_stdin_refuses_a_line_without_an_id(cli_db):
    r = CliRunner().invoke(cli, ["--db", cli_db, "get", "-"], input='{"text": "no id"}\n')
    assert r.exit_code == 1 and "<stdin>:1" in r.output


def test_a_manifest_with_the_old_within_parameter_replays_with_a_note(cli_db, tmp_path):
    """The stratified in-stratum method was the parameter 'within' (also the
    --near neighbourhood); manifests written then replay, with one note."""
    out = tmp_path / "b.jsonl"
    r = run(["--db", cli_db, "sample", "-n", "6", "--by", "region", "--stratum-method", "farthest",
             "--seed", "4", "--out", str(out)])
    assert r.exit_code == 0, r.output
    mpath = tmp_path / "b.manifest.json"
    m = json.loads(mpath.read_text())
    assert m["params"]["method"] == "farthest"
    m["params"]["within"] = m["params"].pop("method")  # as the older release wrote it
    mpath.write_text(json.dumps(m))
    r = run(["--db", cli_db, "sample", "--replay", str(mpath), "--json"])
    assert r.exit_code == 0, r.output
    assert "note: manifest parameter 'within' of stratified is now 'method'" in r.stderr
    assert [p["id"] for p in json.loads(r.stdout)["personas"]] == m["ids"]
    m["params"]["within"] = "sideways"  # the old name's value reaches the new parameter's check
    mpath.write_text(json.dumps(m))
    r = run(["--db", cli_db, "sample", "--replay", str(mpath), "--json"])
    assert r.exit_code == 2 and "method='sideways'" in r.stderr, r.stderr


def _count_validations(monkeypatch) -> list:
    """Wrap the registry's validate_params, wherever a module holds it, in a
    wrapper that records each call and then runs the real check."""
    import sys

    import persona_index.sampling  # noqa: F401  (every holder of the name loaded)
    from persona_index.samplers import registry

    real, calls = registry.validate_params, []

    def counting(name, params):
        calls.append(name)
        return real(name, params)

    for mod in list(sys.modules.values()):
        if getattr(mod, "validate_params", None) is real:
            monkeypatch.setattr(mod, "validate_params", counting)
    return calls


def test_sample_with_a_session_validates_the_strategy_parameters_once(tmp_path, monkeypatch):
    """`sample -n 100 --session S` checked the parameters three times (the
    command, draw, samplers.base.sample); now once, in the command, before
    the store is opened. The Python draw() checks them once too."""
    db = _hash_store(tmp_path / "v.lance")
    assert run(db + ["generate", "--count", "400", "--no-progress"]).exit_code == 0
    calls = _count_validations(monkeypatch)
    for batch in (1, 2):  # the second draw has a prior (the session's first batch)
        r = run(db + ["sample", "-n", "100", "--session", "S", "--seed", "1", "--beta", "0.7",
                      "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert len(doc["personas"]) == 100 and doc["manifest"]["batch"] == batch
        assert doc["manifest"]["params"] == {"beta": 0.7, "ramp": "linear", "candidates_per_pick": 16}
        assert calls == ["herding"] * batch
    r = run(db + ["sample", "-n", "5", "--beta", "-1"])  # still checked: exit 2, nothing drawn
    assert r.exit_code == 2 and "beta" in r.stderr and calls[-1] == "herding"
    from persona_index import PersonaIndex
    from persona_index.sampling import draw

    del calls[:]
    b = draw(PersonaIndex(str(tmp_path / "v.lance")), 10, "blend", seed=0, lam=0.3, record=False)
    assert len(set(b.ids)) == 10 and calls == ["blend"]


def test_sample_columns_do_not_reach_the_balance_table(tmp_path):
    """--columns picks the batch's columns; the balance report (stderr) keeps
    its own. It was checked against --columns too: a usage error (exit 2)
    after the batch had been drawn and printed."""
    db = _hash_store(tmp_path / "b.lance")
    assert run(db + ["generate", "--count", "120", "--no-progress"]).exit_code == 0
    r = run(db + ["sample", "-n", "10", "--by", "region", "--seed", "1", "--columns", "id,text"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["id", "text"] and len(lines) == 12  # header, rule, 10 rows
    assert "balance over region" in r.stderr


def test_choices_and_defaults_come_from_the_library():
    """The options' choices and defaults are the library's (its schema
    registry, ingest options, strategy registry, store constants), so a
    change there reaches --help and the parser."""
    import inspect

    from persona_index.maintenance import reembed
    from persona_index.plan import IngestOptions
    from persona_index.readers import FORMATS
    from persona_index.samplers.registry import STRATEGIES as SPECS, strategy_names
    from persona_index.schemas import SCHEMAS
    from persona_index.store import DEFAULT_DB

    def params(*path):
        cmd = cli
        for name in path:
            cmd = cmd.commands[name]
        return {p.name: p for p in cmd.params}

    def spec(strategy, name):
        return next(p for p in SPECS[strategy].params if p.name == name)

    ingest = params("ingest")
    assert list(ingest["schema"].type.choices) == ["auto", "none", *SCHEMAS]
    assert list(ingest["fmt"].type.choices) == list(FORMATS)
    opts = IngestOptions()
    assert ingest["near_dup_threshold"].default == opts.near_dup_threshold
    assert params("generate")["near_dup_threshold"].default == opts.near_dup_threshold
    assert ingest["batch_size"].default == opts.batch_size == \
        params("reembed")["batch_size"].default == \
        inspect.signature(reembed).parameters["batch_size"].default
    sample = params("sample")
    assert list(sample["strategy"].type.choices) == strategy_names()
    assert list(sample["allocation"].type.choices) == list(spec("stratified", "allocation").choices)
    assert list(sample["stratum_method"].type.choices) == list(spec("stratified", "method").choices)
    assert list(sample["engine"].type.choices) == list(spec("herding", "engine").choices)
    assert f"(default {spec('herding', 'beta').default:g})" in sample["beta"].help
    assert f"(default {spec('blend', 'lam').default:g})" in sample["lam"].help
    assert params()["db"].default == DEFAULT_DB


def test_library_errors_name_parameters_and_the_cli_says_flags(tmp_path):
    """The library's messages name its parameters (path=..., replace=True,
    extra=..., single_writer=True), never a CLI flag; the CLI says the same
    with its flags (messages.as_flags: the command's options, the group's,
    and LIBRARY_NAMES)."""
    from persona_index import PersonaIndex
    from persona_index.errors import (InvalidQueryError, ManifestError,
                                      StoreNotFoundError, StrategyParameterError)
    from persona_index.sampling import replay, sampling_params
    from persona_index_cli.messages import as_flags

    db = str(tmp_path / "t.lance")
    missing = str(tmp_path / "none.lance")
    with pytest.raises(StoreNotFoundError) as e1:
        PersonaIndex(missing, must_exist=True)
    with pytest.raises(StrategyParameterError) as e2:
        sampling_params(extra=["n_cells"])
    idx = PersonaIndex(db, "hash-16")
    idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(20)],
            attributes=["region"])
    with pytest.raises(InvalidQueryError) as e3:
        from persona_index.tagging import tag

        tag(idx, "region", ["a", "b"])
    out = tmp_path / "b.jsonl"
    assert run(["--db", db, "sample", "-n", "3", "--seed", "1", "--out", str(out)]).exit_code == 0
    manifest = json.loads((tmp_path / "b.manifest.json").read_text())
    manifest["store"] = missing
    with pytest.raises(ManifestError) as e4:
        replay(manifest)
    for e, named in ((e1, "path=..."), (e2, "extra='n_cells'"), (e3, "replace=True"),
                     (e4, "path=...")):
        assert named in str(e.value) and "--" not in str(e.value), str(e.value)

    r = run(["--db", missing, "info"])
    assert r.exit_code == 1 and "or point --db at one" in r.stderr
    r = run(["--db", db, "sample", "-n", "3", "--param", "n_cells"])
    assert r.exit_code == 2 and "--param n_cells must be NAME=VALUE" in r.stderr
    r = run(["--db", db, "tag", "--attr", "region", "--labels", "a,b", "--no-progress"])
    assert r.exit_code == 1 and "pass --replace to overwrite them" in r.stderr
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    r = run(["sample", "--replay", str(tmp_path / "m.json")])
    assert r.exit_code == 1 and "(pass --db to replay it on another store)" in r.stderr
    ctx = click.Context(cli)  # a group option, named by the store's lock
    ctx.invoked_subcommand = "sample"
    assert as_flags(ctx, "cannot lock: pass single_writer=True if no other process draws") \
        == "cannot lock: pass --single-writer if no other process draws"


def test_synthesis_defaults_match_the_library():
    """synthesize's, extract's and expand's defaults are written in cli/synth.py
    (importing the client at start-up would cost every command ~80 ms of
    asyncio); they must equal the library's."""
    import dataclasses
    import inspect

    from persona_index.synthesis import run as srun
    from persona_index.synthesis.client import ClientConfig
    from persona_index.synthesis.personas import expand
    from persona_index.synthesis.report import output_report

    lib = {f.name: f.default for f in dataclasses.fields(ClientConfig)}
    for command in ("synthesize", "extract", "expand"):
        opts = {p.name: p for p in cli.commands[command].params}
        for option, field in (("temperature", "temperature"), ("max_tokens", "max_tokens"),
                              ("concurrency", "concurrency"), ("timeout", "timeout_s"),
                              ("retries", "retries"), ("api_key_env", "api_key_env")):
            assert opts[option].default == lib[field], (command, option)
    opts = {p.name: p for p in cli.commands["synthesize"].params}
    assert opts["max_retry_wait"].default == lib["max_retry_wait_s"]
    assert list(opts["missing"].type.choices) == list(srun.MISSING_RULES)
    assert opts["max_runs"].default == srun.MAX_RUNS
    assert {p.name: p for p in cli.commands["expand"].params}["rounds"].default == \
        inspect.signature(expand).parameters["rounds"].default
    assert {p.name: p for p in cli.commands["outputs-report"].params}["threshold"].default == \
        inspect.signature(output_report).parameters["threshold"].default
