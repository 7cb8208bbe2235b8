"""Issue #23 through the CLI, as a new user types it: tables that show what
was asked for, typos and unknowns caught (exit 2 naming the option, or exit 1
naming the ids), --db after the command, the subcommand's own usage, and the
--plot map. A hash-embedded store (the model is not the point here)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from persona_index_cli.main import cli
from tests.conftest import unchanged_after


def run(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("newuser") / "n.lance")
    r = run(["--db", path, "--embed-model", "hash-16", "generate", "--count", "200", "--seed",
             "3", "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    yield from unchanged_after(path, path)  # tests that write use own_db


@pytest.fixture
def own_db(db, tmp_path):
    """A private copy of the module's store, for tests that write sessions:
    whatever such a test leaves behind, even when it fails, is its own."""
    import shutil

    return str(shutil.copytree(db, tmp_path / "own.lance"))


def _header(text):
    return text.strip().splitlines()[0].split()


# -- tables that answer the question -------------------------------------------------------

def test_sample_table_shows_the_by_and_where_attributes(db):
    r = run(["--db", db, "sample", "-n", "6", "--by", "expertise", "--seed", "1"])
    assert r.exit_code == 0, r.output
    head = _header(r.stdout)
    assert head[:3] == ["id", "text", "expertise"]  # asked for: right after the text
    r = run(["--db", db, "similar", "--id", _some_id(db), "-k", "3",
             "--where", "age_band IS NOT NULL AND expertise != 'x'"])
    head = _header(r.stdout)
    assert head.index("age_band") < head.index("expertise") < len(head)
    assert head[:3] == ["similarity", "id", "text"]


def _some_id(db):
    r = run(["--db", db, "sample", "-n", "1", "--seed", "0", "--format", "jsonl"])
    return json.loads(r.stdout.splitlines()[0])["id"]


def test_columns_and_wide(db):
    pid = _some_id(db)
    r = run(["--db", db, "get", pid, "--columns", "region,id"])
    assert r.exit_code == 0, r.output
    assert _header(r.stdout) == ["region", "id"]
    r = run(["--db", db, "get", pid, "--format", "csv", "--columns", "id,text"])
    assert r.stdout.splitlines()[0] == "id,text"
    full = json.loads(run(["--db", db, "get", pid, "--json"]).stdout)[0]["text"]
    narrow = run(["--db", db, "get", pid, "--columns", "text"]).stdout.splitlines()[2]
    wide = run(["--db", db, "get", pid, "--columns", "text", "--wide"]).stdout.splitlines()[2]
    assert wide.strip() == full
    assert len(full) <= 70 or (narrow.strip().endswith("…") and len(narrow.strip()) == 70)
    r = run(["--db", db, "get", pid, "--columns", "id,regoin"])
    assert r.exit_code == 2 and "'regoin'" in r.output and "region" in r.output


def test_columns_typo_in_a_session_draw_records_nothing(own_db):
    db = own_db
    r = run(["--db", db, "sample", "-n", "3", "--session", "colcheck", "--columns", "idd"])
    assert r.exit_code == 2 and "'idd'" in r.output
    r = run(["--db", db, "sessions", "list", "--json"])
    assert "colcheck" not in r.stdout


def test_coverage_uniform_column_has_spread_z_and_direction(db, tmp_path):
    out = tmp_path / "b.jsonl"
    assert run(["--db", db, "sample", "-n", "15", "--seed", "2", "--out", str(out)]).exit_code == 0
    r = run(["--db", db, "coverage", "--ids", str(out), "--compare-uniform", "4"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "uniform (mean ± sd)" in lines[0] and "z" in lines[0].split() and "better" in lines[0]
    radius = next(l for l in lines if l.startswith("kcenter_radius"))
    assert "±" in radius and "lower ↓" in radius
    vendi = next(l for l in lines if l.startswith("vendi"))
    assert "higher ↑" in vendi
    doc = json.loads(run(["--db", db, "coverage", "--ids", str(out), "--compare-uniform", "4",
                          "--json"]).stdout)
    assert set(doc) == {"sample", "uniform_mean", "uniform_sd", "z"}
    k = "kcenter_radius"
    # z is signed so that + is better: a smaller radius than uniform's mean is positive
    expect = -(doc["sample"][k] - doc["uniform_mean"][k]) / doc["uniform_sd"][k]
    assert doc["z"][k] == pytest.approx(expect)
    assert f"{doc['z'][k]:+.2f}" in radius


# -- typos and unknowns --------------------------------------------------------------------

def test_get_unknown_ids_exit_1_naming_them(db):
    pid = _some_id(db)
    r = run(["--db", db, "get", pid, "bogus"])
    assert r.exit_code == 1 and "bogus" in r.output and pid not in r.output
    assert "(no rows)" not in r.output
    r = run(["--db", db, "get", "-"], input=f"{pid}\nbogus\n")
    assert r.exit_code == 1 and "bogus" in r.output
    r = run(["--db", db, "get", "-", "--ignore-missing", "--format", "jsonl"],
            input=f"{pid}\nbogus\n")
    assert r.exit_code == 0 and [json.loads(l)["id"] for l in r.stdout.splitlines()] == [pid]
    assert "bogus" in r.stderr  # still said, on stderr


@pytest.mark.parametrize("args, option", [
    (["sample", "-n", "3", "--seed", "-1"], "--seed"),
    (["generate", "--count", "3", "--seed", "-1", "--out", "x.jsonl"], "--seed"),
    (["ingest", "x.jsonl", "--near-dup-threshold", "7"], "--near-dup-threshold"),
    (["coverage", "--ids", "-", "--compare-uniform", "-3"], "--compare-uniform"),
])
def test_numeric_options_carry_their_ranges(db, args, option):
    r = run(["--db", db] + args, input="")
    assert r.exit_code == 2 and option in r.output, r.output
    assert "nan" not in r.output.lower() and "Traceback" not in r.output


# -- CLI habits ----------------------------------------------------------------------------

def test_db_and_embed_model_after_the_command(db, tmp_path):
    before = json.loads(run(["--db", db, "info", "--json"]).stdout)
    after = json.loads(run(["info", "--db", db, "--json"]).stdout)
    assert before == after and before["count"] > 0
    r = run(["sessions", "list", "--db", db, "--json"])
    assert r.exit_code == 0 and isinstance(json.loads(r.stdout), list)
    r = run(["--db", db, "info", "--db", str(tmp_path / "other.lance")])
    assert r.exit_code == 2 and "--db" in r.output and "disagree" in r.output
    assert run(["--db", db, "info", "--db", db]).exit_code == 0  # the same value twice
    new = str(tmp_path / "h.lance")
    r = run(["generate", "--count", "5", "--db", new, "--embed-model", "hash-8", "--no-progress",
             "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(run(["info", "--db", new, "--json"]).stdout)["model"] == "hash-8"
    r = run(["--embed-model", "hash-8", "info", "--db", new, "--embed-model", "hash-16"])
    assert r.exit_code == 2 and "--embed-model" in r.output


def test_usage_errors_show_the_subcommand_usage(db):
    r = run(["--db", db, "sample"])  # no -n
    assert r.exit_code == 2 and "Usage: cli sample" in r.output.replace("persona-index", "cli")
    r = run(["--db", db, "coverage"])
    assert r.exit_code == 2 and "coverage [OPTIONS]" in r.output
    r = run(["--db", db, "sample", "-n", "3", "--param", "n_cells"])
    assert r.exit_code == 2 and "sample [OPTIONS]" in r.output


def test_similar_without_a_query_is_a_usage_error(db):
    r = run(["--db", db, "similar"])
    assert r.exit_code == 2 and "similar [OPTIONS]" in r.output and "TEXT" in r.output


def test_where_errors_name_only_the_users_columns(db):
    r = run(["--db", db, "sample", "-n", "3", "--where", "regoin = 'Asia'"])
    assert r.exit_code == 2, r.output
    msg = r.output
    assert "regoin" in msg and "region" in msg
    for internal in ("_rowid", "_rowaddr", "_distance", "SELECT 1 FROM t", "vector"):
        assert internal not in msg, (internal, msg)


def test_replay_on_the_wrong_store_names_the_manifests_store(db, tmp_path):
    out = tmp_path / "b.jsonl"
    assert run(["--db", db, "sample", "-n", "3", "--seed", "4", "--out", str(out)]).exit_code == 0
    manifest = json.loads((tmp_path / "b.manifest.json").read_text())
    manifest["table_version"] = 999
    bad = tmp_path / "bad.manifest.json"
    bad.write_text(json.dumps(manifest))
    r = run(["sample", "--replay", str(bad)])
    assert r.exit_code == 1, r.output
    assert manifest["store"] in r.output and "999" in r.output and "_versions" not in r.output


# -- the map -------------------------------------------------------------------------------

def test_plot_writes_a_png_of_the_documented_size(db, tmp_path):
    pytest.importorskip("matplotlib")
    from persona_index.plots import DPI, FIGSIZE, png_size

    out, png = tmp_path / "b.jsonl", tmp_path / "map.png"
    r = run(["--db", db, "sample", "-n", "12", "--seed", "1", "--out", str(out), "--plot",
             str(png)])
    assert r.exit_code == 0, r.output
    assert png_size(png) == (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)) == (1200, 540)
    png2 = tmp_path / "cov.png"
    r = run(["--db", db, "coverage", "--ids", str(out), "--plot", str(png2), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["sample"]["n"] == 12
    assert png_size(png2) == (1200, 540)


def test_plot_without_matplotlib_names_the_extra(db, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    r = run(["--db", db, "sample", "-n", "3", "--plot", str(tmp_path / "m.png")])
    assert r.exit_code == 2 and "persona-index[plots]" in r.output and "--plot" in r.output
    assert not (tmp_path / "m.png").exists()


# -- sessions ------------------------------------------------------------------------------

def test_unknown_sessions_exit_1_and_list_shows_exclusions(own_db):
    db = own_db
    for cmd in ("show", "reset"):
        r = run(["--db", db, "sessions", cmd, "nosuch"])
        assert r.exit_code == 1 and "'nosuch'" in r.output and "forgotten" not in r.output
    assert run(["--db", db, "sample", "-n", "4", "--seed", "1", "--session", "tr"]).exit_code == 0
    r = run(["--db", db, "sample", "-n", "4", "--seed", "1", "--session", "ev",
             "--exclude-session", "tr"])
    assert r.exit_code == 0, r.output
    rows = {s["session"]: s for s in json.loads(run(["--db", db, "sessions", "list",
                                                     "--json"]).stdout)}
    assert rows["ev"]["excludes"] == ["tr"] and rows["tr"]["excludes"] == ["ev"]
    table = run(["--db", db, "sessions", "list"]).stdout
    assert "excludes" in table.splitlines()[0]
    r = run(["--db", db, "sessions", "reset", "nosuch"])
    assert "ev" in r.output and "tr" in r.output  # names the sessions there are
    for name in ("tr", "ev"):
        assert json.loads(run(["--db", db, "sessions", "reset", name, "--json"]).stdout)[
            "forgotten"] == 4
