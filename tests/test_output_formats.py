"""Row-printing commands: --format json|jsonl|csv|table, ids from stdin, and a
closed pipe that ends quietly."""

import csv
import io
import json
import subprocess
import sys

from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index_cli.main import cli


def _db(tmp_path, n=40):
    path = str(tmp_path / "p.lance")
    pad = " with a long story" * 8
    PersonaIndex(path, HashEmbedder(dim=16)).add(
        [{"text": f"a person, number {i}" + (pad if n > 40 else ""), "region": ["EU", "AS"][i % 2]}
         for i in range(n)], attributes=["region"])
    return path


def test_formats_and_stdin_ids(tmp_path):
    path = _db(tmp_path)
    run = lambda args, **kw: CliRunner().invoke(cli, ["--db", path] + args, **kw)
    r = run(["similar", "a person, number 3", "-k", "4", "--format", "jsonl"])
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert r.exit_code == 0 and len(rows) == 4 and rows[0]["text"] == "a person, number 3"
    r = run(["similar", "a person, number 3", "-k", "4", "--format", "csv"])
    got = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [g["id"] for g in got] == [x["id"] for x in rows] and got[0]["region"] == "AS"
    assert json.loads(run(["similar", "a person, number 3", "-k", "4", "--format", "json"]).stdout) \
        == json.loads(run(["similar", "a person, number 3", "-k", "4", "--json"]).stdout)
    r = run(["get", "-", "--format", "jsonl"], input="\n".join(json.dumps(x) for x in rows[:2]))
    assert [json.loads(l)["id"] for l in r.stdout.splitlines()] == [x["id"] for x in rows[:2]]


def test_closed_pipe_ends_quietly(tmp_path):
    path = _db(tmp_path, n=3000)  # about 500 KB of csv: far more than a pipe holds
    cmd = (f"{sys.executable} -m persona_index_cli.main --db {path} similar 'a person' -k 3000 "
           "--format csv | head -2")
    out = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2
    assert "Traceback" not in out.stderr and "Error" not in out.stderr


def test_sample_formats_coverage_from_stdin_and_arrow_results(tmp_path):
    from persona_index.sampling import draw

    path = _db(tmp_path)
    run = lambda args, **kw: CliRunner().invoke(cli, ["--db", path] + args, **kw)
    r = run(["sample", "-n", "5", "--seed", "2", "--format", "jsonl"])
    ids = [json.loads(l)["id"] for l in r.stdout.splitlines()]
    assert r.exit_code == 0 and len(set(ids)) == 5
    r = run(["coverage", "--ids", "-", "--json"], input="\n".join(ids))
    assert r.exit_code == 0 and json.loads(r.stdout)["sample"]["n"] == 5
    idx = PersonaIndex(path)
    t = idx.similar("a person, number 3", k=3).to_arrow()
    assert t.num_rows == 3 and t.column("text")[0].as_py() == "a person, number 3"
    b = draw(idx, 4, seed=0)
    assert b.to_arrow().column("id").to_pylist() == b.ids
