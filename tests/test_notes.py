"""The library never prints: it issues warnings (errors.PersonaIndexWarning,
errors.Note), and the CLI says each as one line, ``warning: ...`` or ``note: ...``."""

import fcntl
import os

import pytest
from click.testing import CliRunner

from persona_index.errors import LockTimeoutError, Note, PersonaIndexWarning
from persona_index.locks import _file_lock
from persona_index.samplers.base import SamplingWarning
from persona_index_cli.main import cli


def test_a_lock_wait_is_a_note_and_nothing_is_printed(tmp_path, capfd):
    path = tmp_path / "writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: flock conflicts even in this process
    try:
        with pytest.warns(Note, match=r"waiting for the writer lock \(.*writer.lock"), \
                pytest.raises(LockTimeoutError, match="not free within 0.3 s"), \
                _file_lock(path, "the writer lock", 0.3, 0.05):
            pass
    finally:
        os.close(fd)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_every_library_warning_has_one_base():
    assert issubclass(SamplingWarning, PersonaIndexWarning) and not issubclass(SamplingWarning, Note)


def test_the_cli_says_a_sampling_warning_in_one_line_without_paths(tmp_path):
    db = str(tmp_path / "s.lance")
    run = CliRunner().invoke
    r = run(cli, ["--db", db, "--embed-model", "hash-16", "generate", "--count", "200", "--seed", "3",
                  "--no-progress"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    # before: "/.../persona_index/samplers/base.py:169: SamplingWarning: 1 thin cell(s) ..." and
    # the source line under it
    r = run(cli, ["--db", db, "sample", "-n", "60", "--by", "country", "--target", "country=Fiji:0.5",
                  "--seed", "1", "--format", "jsonl"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    warn = [line for line in r.stderr.splitlines() if "thin cell" in line]
    assert len(warn) == 1 and warn[0].startswith("warning: 1 thin cell(s) short of their quota")
    assert "persona_index" not in r.stderr and "SamplingWarning" not in r.stderr
