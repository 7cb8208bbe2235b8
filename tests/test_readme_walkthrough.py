"""The README's "Your own personas in five minutes" block runs as written."""

import json
import os
import re
import shlex

from benchmarks import readme


def walkthrough() -> list[list[str]]:
    text = readme.ROOT.joinpath("README.md").read_text(encoding="utf-8")
    section = text.split("## Your own personas in five minutes", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


def test_the_walkthrough_runs_as_written(tmp_path):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    lines = walkthrough()
    assert len(lines) >= 5 and all(argv[0] == "persona-index" for argv in lines)
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for argv in lines:
            r = CliRunner().invoke(cli, argv[1:])
            assert r.exit_code == 0, (argv, r.output, r.stderr)
    finally:
        os.chdir(here)
    mine = [json.loads(x) for x in (tmp_path / "mine.jsonl").read_text().splitlines()]
    batch = [json.loads(x) for x in (tmp_path / "batch.jsonl").read_text().splitlines()]
    requests = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert len(mine) == 300
    assert len(batch) == 20 and len({b["id"] for b in batch}) == 20
    assert (tmp_path / "batch.manifest.json").exists()
    assert len(requests) == 20
    texts = {b["text"] for b in batch}
    assert all(any(t in line for t in texts) for line in requests)  # each request names its persona
