"""The two kill -9 half states of issue 21 at the base commit, the kill emulated
by a patched function that SIGKILLs the process at the same place. Run with
PYTHONPATH=<worktree>:<shim>; prints one JSON line per case."""
import json, os, shutil, signal, subprocess, sys, tempfile

py = sys.executable
root = tempfile.mkdtemp()
env = dict(os.environ, LANCEDB_LOG="error")
def run(code):
    return subprocess.run([py, "-c", code], capture_output=True, text=True, env=env)
def cli(*args):
    return subprocess.run([py, "-m", "persona_index_cli.main", *args], capture_output=True, text=True, env=env)

db = f"{root}/s.lance"
assert cli("--db", db, "--embed-model", "hash-64", "generate", "-n", "300", "--no-progress").returncode == 0

# reembed killed after its 2nd batch write
r = run(f"""
import os, signal
from persona_index.store import PersonaIndex
from persona_index.maintenance import reembed
real, n = PersonaIndex.write, [0]
def write(self, *a, **k):
    out = real(self, *a, **k); n[0] += 1
    if n[0] == 2: os.kill(os.getpid(), signal.SIGKILL)
    return out
PersonaIndex.write = write
reembed(PersonaIndex({db!r}), {root + '/copy.lance'!r}, 'hash-32', batch_size=100)
""")
info = cli("--db", f"{root}/copy.lance", "info", "--json")
again = cli("--db", db, "reembed", f"{root}/copy.lance", "--to-model", "hash-32", "--no-progress")
print(json.dumps({"case": "reembed killed after its 2nd batch", "killed": r.returncode == -9,
                  "info_rc": info.returncode,
                  "info_count": json.loads(info.stdout)["count"] if info.returncode == 0 else None,
                  "rerun_rc": again.returncode, "rerun_says": again.stderr.strip()[-120:]}))

# tag --replace killed between its drop and its merge
assert cli("--db", db, "tag", "--attr", "field", "--labels", "health,craft").returncode == 0
r = run(f"""
import os, signal
from persona_index.store import PersonaIndex
from persona_index.tagging import tag
def merge(self, *a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
PersonaIndex._merge_columns = merge
tag(PersonaIndex({db!r}), "field", ["arts", "craft"], replace=True)
""")
import lance
from persona_index.snapshot import read_meta
ds = lance.dataset(f"{db}/personas.lance")
attrs = read_meta(ds.schema, db).get("attributes", [])
sample = cli("--db", db, "sample", "-n", "5", "--by", "field")
print(json.dumps({"case": "tag --replace killed between drop and merge", "killed": r.returncode == -9,
                  "field_listed": "field" in attrs, "field_column": "field" in ds.schema.names,
                  "sample_by_field_rc": sample.returncode, "sample_says": sample.stderr.strip()[-120:]}))
shutil.rmtree(root)
