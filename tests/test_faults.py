"""Faults lose nothing: kill -9 at named points of every writing command, a
file-size limit (``ulimit -f`` in the child), a full disk (a tiny tmpfs via
``unshare -m``, root only), a read-only store, a broken store path, odd output
paths, a closed pipe and a lock held by a stopped process.

The scenarios live in benchmarks/faults.py, which also writes the fault table
(docs/faults.md); here each runs as a test and must leave the store whole:
it opens, every table reads back whole (Lance's validate and a full scan),
counts and sessions are consistent, nothing was handed out undelivered, and
the next command works. The child processes use the hash embedder: the model
is not the point here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import faults as F
from persona_index_cli.main import cli

ROOT = Path(__file__).resolve().parents[1]


def run(args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("faults")
    F.make_base(r)
    return r


@pytest.fixture
def db(root, tmp_path):
    return F._copy(root / "base.lance", tmp_path / "s.lance")


# -- kill -9 ---------------------------------------------------------------------------
KILLS = ["ingest/kill after the 1st batch commit",
         "tag/kill after its commit",
         "tag --replace/kill after the merge",
         "tag --replace/kill after the swap",
         "reembed/kill after the 2nd batch",
         "sample --session/kill between draws and manifest",
         "sample --session/kill after the commit, before the renames",
         "sessions reset/kill between its two deletes"]


@pytest.mark.parametrize("name", KILLS)
def test_kill_9_leaves_the_store_whole_and_the_next_command_works(root, name):
    row = F.run_kill(name, root)
    assert row["killed"], row  # the fault really happened
    assert row["problems"] == [], row
    assert row["next_rc"] == 0, row
    assert row["whole"]
    if name.startswith("reembed"):
        assert not row["partial_shown_as_store"] and row["copy_count"] == row["final_count"]
    if name.endswith("before the renames"):
        # killed after the commit: the batch is recorded and its files wait
        # beside their targets; the next draw of the session delivers them
        assert row["sessions_after"] == {"Z": 20} and row["pending_after_fault"] == 2
        assert row["pending_final"] == 0 and "delivered" in row["next_stderr"]
    if "between draws and manifest" in name:  # before the commit point: not a draw
        assert row["sessions_after"] == {} and row["final_sessions"] == {"Z": 20}
    if name.startswith("sessions reset"):  # past the commit point: the reset holds
        assert row["sessions_after"] == {} and row["final_sessions"] == {"A": 20}


# -- file-size limit ---------------------------------------------------------------------
def test_a_file_size_limit_on_a_session_draw_commits_nothing_and_says_so(root):
    # before: exit 0 and sessions/manifests committed with data files cut at
    # 24,576 bytes; every later session command failed
    row = F.run_fsize("sample -n 300 --session Z --json", root, 4)
    assert row["rc"] == 1 and not row["traceback"] and row["stderr_lines"] == 1, row
    assert "file too large while writing sessions" in row["stderr"] and "s.lance" in row["stderr"]
    assert row["sessions_after"] == {} and row["problems"] == [], row
    assert row["next_rc"] == 0 and row["final_sessions"] == {"Z": 300}


def test_a_data_file_cut_by_a_file_size_limit_is_caught_and_undone(root):
    # the limit just under the largest data file ingest writes: pylance cuts
    # the file and reports success (the xfail below); the check must catch it
    row = F.run_fsize("ingest (120 personas)", root)
    assert row["rc"] == 1 and not row["traceback"] and row["stderr_lines"] == 1, row
    assert "did not read back whole" in row["stderr"] and "undone" in row["stderr"], row
    assert row["after"] == row["before"] and row["problems"] == [], row
    assert row["next_rc"] == 0 and row["final_count"] == row["before"] + 120


REPRO = """
import sys, lance, numpy as np, pyarrow as pa
uri, n = sys.argv[1], 1000
schema = pa.schema([("session", pa.string()), ("id", pa.string()), ("batch", pa.int64()),
                    ("drawn_at", pa.string())])
lance.write_dataset(schema.empty_table(), uri, schema=schema)
rng = np.random.default_rng(0)
lance.write_dataset(pa.table({"session": ["Z"] * n, "id": [rng.bytes(10).hex() for _ in range(n)],
                              "batch": [1] * n, "drawn_at": ["2026-12-06T04:29:00Z"] * n},
                             schema=schema), uri, mode="append")
print("append returned")
"""


@pytest.mark.xfail(strict=True, reason="pylance 14.0.3 commits a data file cut by a file-size "
                   "limit and reports success (commits.check_version guards against it)")
def test_lance_does_not_commit_a_data_file_cut_by_a_file_size_limit(tmp_path):
    """The upstream behaviour, with no project code: under ``ulimit -f 24``
    (bash: KiB) an append whose data file would be ~25 KB returns OK and
    commits the file cut at 24,576 bytes; reading it fails with 'failed to
    fill whole buffer'. Pinned to pylance 14.0.3 (skipped on another
    version: rerun the repro there). A search of Lance's issues (file-size
    limit, truncated data file, failed to fill whole buffer, EFBIG) found no
    report of it."""
    import lance

    if lance.__version__ != "14.0.3":
        pytest.skip(f"the repro is pinned to pylance 14.0.3, not {lance.__version__}")
    uri = str(tmp_path / "t.lance")
    p = subprocess.run(["bash", "-c", 'ulimit -f 24 && exec "$@"', "bash", sys.executable, "-c",
                        REPRO, uri], capture_output=True, text=True, env=F._env())
    if "append returned" not in p.stdout:  # raised EFBIG, as it should: no cut commit
        return
    ds = lance.dataset(uri)
    f = ds.get_fragments()[-1].metadata.files[0]
    on_disk = os.path.getsize(os.path.join(uri, "data", f.path))
    assert on_disk == f.file_size_bytes, f"committed {on_disk} of {f.file_size_bytes} bytes"
    ds.to_table()


# -- full disk, read-only store, broken path ------------------------------------------------
needs_tmpfs = pytest.mark.skipif(F.tmpfs_possible() is not None,
                                 reason=str(F.tmpfs_possible()))


@needs_tmpfs
@pytest.mark.parametrize("name", ["sample -n 300 --session Z --json (first session draw, 12 KB free)",
                                  "sessions reset A (4 KB free)"])
def test_a_full_disk_leaves_the_store_whole(root, name):
    # before: 'Table manifests was not found' for good, an empty manifests.lance,
    # the draws recorded anyway, and reset deleting the draws before failing
    row = F.run_disk(name, root)
    assert row["problems"] == [], row
    assert row["next_rc"] == 0, row
    if row["rc"] != 0:
        assert row["rc"] == 1 and not row["traceback"] and row["stderr_lines"] == 1, row
        assert "disk full" in row["stderr"]
        assert row["sessions_after"] == row["sessions_before"]
    assert row["whole"]


@needs_tmpfs
def test_a_read_only_store_fails_in_one_line(root):
    row = F.run_readonly(root)
    assert row["rc"] == 1 and not row["traceback"] and row["stderr_lines"] == 1, row
    assert row["whole"], row


def test_a_broken_store_path_fails_in_one_line(root):
    # before: generate and ingest gave a 61-line traceback; info said "no persona store"
    for row in F.run_broken_path(root):
        assert row["whole"], row


# -- outputs never clobber -----------------------------------------------------------------
def _opens(db):
    from persona_index.store import PersonaIndex

    return PersonaIndex(db, must_exist=True).info()["count"]


@pytest.mark.parametrize("target", ["personas.lance/_versions/x.manifest",
                                    "personas.lance/data/x.jsonl", "report.jsonl"])
def test_outputs_under_the_store_are_refused_before_any_work(db, tmp_path, target):
    # before: export, sample --out and ingest --report exited 0 and the store no longer opened
    path = str(Path(db) / target)
    n = _opens(db)
    for args in (["export", path], ["sample", "-n", "5", "--session", "A", "--out", path],
                 ["ingest", ROOT / "tests" / "__init__.py", "--report", path]):
        r = run(["--db", db, *args])
        assert r.exit_code == 2 and "store" in r.output, (args, r.output)
        assert not os.path.exists(path)
    assert _opens(db) == n
    from persona_index.sessions import Sessions
    from persona_index.store import PersonaIndex

    assert Sessions(PersonaIndex(db)).list() == []


def test_outputs_inside_another_lance_table_are_refused(db, root, tmp_path):
    other = F._copy(root / "base.lance", tmp_path / "other.lance")
    r = run(["--db", db, "export", f"{other}/personas.lance/data/x.parquet"])
    assert r.exit_code == 2 and "Lance table" in r.output
    r = run(["--db", db, "reembed", f"{other}/personas.lance/new", "--to-model", "hash-8"])
    assert r.exit_code == 2


def test_a_failed_output_records_no_draw(db, tmp_path):
    from persona_index.sessions import Sessions
    from persona_index.store import PersonaIndex

    same = tmp_path / "same.json"
    cases = [["--out", "/nonexistent/dir/b.jsonl"],  # before: exit 1, A held the 5 draws
             ["--out", same, "--manifest", same],  # before: "refused", yet written and recorded
             ["--out", tmp_path / "b.jsonl", "--manifest", "/nonexistent/m.json"]]
    for extra in cases:
        r = run(["--db", db, "sample", "-n", "5", "--session", "A", *extra])
        assert r.exit_code == 2, (extra, r.output)
    assert Sessions(PersonaIndex(db)).list() == []
    assert sorted(os.listdir(tmp_path)) == ["s.lance"]  # no batch file, no temporary


def test_a_failure_at_the_record_removes_the_staged_files(db, tmp_path, monkeypatch):
    from persona_index.errors import StoreWriteError
    from persona_index.sessions import Sessions
    from persona_index.store import PersonaIndex

    def full(*a, **k):
        raise StoreWriteError("store 's': disk full while writing sessions")

    monkeypatch.setattr(Sessions, "record", full)
    r = run(["--db", db, "sample", "-n", "5", "--session", "A", "--out", tmp_path / "b.jsonl"])
    assert r.exit_code == 1 and "disk full" in r.output
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["s.lance"]
    assert Sessions(PersonaIndex(db)).list() == []


def test_dash_is_stdout_and_special_files_are_written_in_place(db, tmp_path):
    # before: export - wrote a file named '-'; export /dev/stdout (as root)
    # replaced /dev/stdout with a regular file. A FIFO stands in for it here.
    r = run(["--db", db, "export", "-"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == F.PERSONAS
    assert not (Path.cwd() / "-").exists()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    r = run(["--db", db, "export", fifo])
    out = reader.communicate(timeout=30)[0]
    assert r.exit_code == 0 and len(out.splitlines()) == F.PERSONAS
    assert Path(fifo).is_fifo()
    assert sorted(os.listdir(tmp_path)) == ["pipe", "s.lance"]


def test_export_where_is_parsed_as_a_whole(db, tmp_path):
    # before: "text IS NOT NULL ANDX id = 'zz'" exported every row
    out = tmp_path / "x.jsonl"
    r = run(["--db", db, "export", out, "--where", "text IS NOT NULL ANDX id = 'zz'"])
    assert r.exit_code == 2 and "where" in r.output and not out.exists()
    r = run(["--db", db, "export", out, "--where", "id = 'zz'"])
    assert r.exit_code == 0 and out.read_text() == ""


# -- a closed pipe, the console script ---------------------------------------------------------
def test_the_console_script_is_main():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["persona-index"] == "persona_index_cli.main:main"


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table", "json"])
def test_a_closed_pipe_ends_the_command_with_exit_0(db, fmt):
    # before: `sample -n 500 --format jsonl | head -1` exited 1 in 5 of 5 runs
    cmd = (f"{sys.executable} -m persona_index_cli.main --db {db} sample -n 250 --seed 1 "
           f"--format {fmt} | head -c 20 >/dev/null; echo ${{PIPESTATUS[0]}}")
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                       env=F._env(), timeout=120)
    assert p.stdout.strip() == "0", (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Broken pipe" not in p.stderr


# -- locks speak -------------------------------------------------------------------------------
def test_a_writer_says_what_it_waits_for_and_gives_up_at_the_timeout(db, tmp_path):
    # before: a writer waited forever and said nothing on a lock held by a stopped process
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, signal\nfrom persona_index.store import store_lock\n"
         f"with store_lock({db!r}, 'writer'):\n    print('held', flush=True)\n"
         "    os.kill(os.getpid(), signal.SIGSTOP)"],
        stdout=subprocess.PIPE, text=True, env=F._env())
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        r = F.cli(["--db", db, "--lock-timeout", "3", "tag", "--attr", "field",
                   "--labels", "a,b"], cwd=tmp_path)
        waited = time.monotonic() - t0
        assert r["rc"] == 1 and not r["traceback"], r
        lines = r["stderr"].splitlines()
        waits = [l for l in lines if l.startswith("note: waiting for")]
        assert len(waits) == 1  # said once
        assert "writer.lock" in waits[0] and f"held by pid {holder.pid} (stopped)" in waits[0]
        assert "not free within 3 s" in lines[-1] and waited >= 3
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    r = F.cli(["--db", db, "--lock-timeout", "3", "tag", "--attr", "field", "--labels", "a,b"],
              cwd=tmp_path)
    assert r["rc"] == 0, r  # a dead holder's lock is free


# -- tag --replace: no version shows an attribute without its column ---------------------------
def _small_store(tmp_path):
    from persona_index.embed import HashEmbedder
    from persona_index.store import PersonaIndex

    idx = PersonaIndex(tmp_path / "t.lance", HashEmbedder(dim=16))
    idx.add([{"text": f"persona {i}", "region": "NSEW"[i % 4]} for i in range(40)],
            attributes=["region"])
    return idx


def test_every_version_a_replace_makes_lists_only_attributes_with_columns(tmp_path):
    # before: the replace dropped the column in one commit and merged the new
    # one in the next; a reader at the version between failed with
    # "unknown attribute(s) ['region']" (1 in 10 reads during a replace)
    import lance

    from persona_index.snapshot import read_meta
    from persona_index.tagging import tag

    idx = _small_store(tmp_path)
    v0 = idx.version
    tag(idx, "region", ["north", "south"], replace=True)
    assert idx.version > v0
    for v in range(v0, idx.version + 1):
        ds = lance.dataset(idx._uri, version=v)
        attrs = read_meta(ds.schema, idx.path).get("attributes", [])
        assert "region" in attrs and "region" in ds.schema.names, v
    assert set(idx.snapshot().attribute_columns(["region"])["region"]) <= {"north", "south"}
    assert not [c for c in lance.dataset(idx._uri).schema.names if c.startswith("_pi_")]


def test_a_replace_that_fails_midway_is_undone_whole(tmp_path, monkeypatch):
    import lance

    from persona_index.errors import StoreWriteError
    from persona_index.tagging import tag

    idx = _small_store(tmp_path)
    v0, before = idx.version, sorted(idx.snapshot().attribute_columns(["region"])["region"])

    def full(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lance.LanceDataset, "alter_columns", full)
    with pytest.raises(StoreWriteError, match="disk full while writing personas"):
        tag(idx, "region", ["north", "south"], replace=True)
    monkeypatch.undo()
    assert idx.version == v0  # the merge it had committed is gone
    assert sorted(idx.snapshot().attribute_columns(["region"])["region"]) == before
    assert tag(idx, "region", ["north", "south"], replace=True)["tagged"] == 40


def test_dash_is_stdout_for_ingest_report_and_refused_for_a_store(db, root, tmp_path):
    rows = [{"persona": "a beekeeper in Wales"}, {"persona": "a beekeeper in Wales"}]
    src = tmp_path / "dup.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = run(["--db", db, "--embed-model", "hash-64", "ingest", src, "--report", "-",
             "--no-progress"])
    assert r.exit_code == 0, r.output
    dropped = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    assert [d["reason"] for d in dropped] == ["exact-duplicate"]
    assert not (Path.cwd() / "-").exists()
    r = run(["--db", db, "reembed", "-", "--to-model", "hash-8"])
    assert r.exit_code == 2 and not (Path.cwd() / "-").exists()
