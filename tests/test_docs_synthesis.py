"""docs/synthesis.md: the offline loop runs as written, against the package's
mock server on 127.0.0.1, line by line in one bash shell."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from persona_index.synthesis.run import last_rows

PAGE = Path(__file__).resolve().parents[1] / "docs" / "synthesis.md"


def loop_lines() -> list[str]:
    section = PAGE.read_text(encoding="utf-8").split("## The loop", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def expected_code(line: str) -> int:
    m = re.search(r"#\s*exit (\d+)\s*$", line)
    return int(m.group(1)) if m else 0


@pytest.mark.slow
def test_the_offline_loop_runs_as_written(tmp_path):
    lines = loop_lines()
    port = int(re.search(r"--port (\d+)", lines[0]).group(1))
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"port {port} is taken on this machine: the page's server cannot start")
    # each line, then its exit code into a file; the server line runs in the background
    script = ["set +e"]
    for i, line in enumerate(lines):
        script += [line, f'echo "{i} $?" >> rcs.txt']
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               HF_HUB_OFFLINE="1")
    p = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = p.communicate(timeout=420)
    finally:  # the page stops its server with `kill %1`; this is in case it did not get there
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait(10)
    codes = dict(map(int, l.split()) for l in (tmp_path / "rcs.txt").read_text().splitlines())
    assert codes == {i: expected_code(l) for i, l in enumerate(lines)}, (codes, err[-3000:])
    rows = [json.loads(l) for l in (tmp_path / "outputs.jsonl").read_text().splitlines()]
    last = last_rows(rows)
    assert len(last) == 20 and all(x["status"] == "ok" for x in last)
    retried = [x for x in last if x["runs"] == 2]
    assert retried and len(rows) == 20 + len(retried)  # the rerun sent the failed rows only
    assert all(x["status"] == "failed" and x["error"].startswith("HTTP 500")
               for x in rows[:20] if x["custom_id"] in {y["custom_id"] for y in retried})
    assert "did not end ok" in err
    reqs = [json.loads(l) for l in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert len(reqs) == 40 and {q["body"]["seed"] for q in reqs} == {7, 8}
    assert all(q["body"]["messages"][0]["content"] == "Reply in one sentence." for q in reqs)
    assert (tmp_path / "coherent.jsonl").exists()
