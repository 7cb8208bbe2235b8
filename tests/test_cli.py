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
    r = run(["--db", db, "similar", "x", "-k", "0"])
    assert r.exit_code == 1 and "k must be" in r.output
    r = run(["--db", db, "similar", "x", "--where", "region ==="])
    assert r.exit_code == 1 and "bad where" in r.output
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
