"""What a user feels: each command end to end as a fresh process on a store
of the shared Persona Hub personas; median wall time of 5 runs (after one
warm-up) and the peak RSS of the process. Text queries run twice: through the
ONNX export (the default) and through sentence-transformers (the old path,
PERSONA_INDEX_QUERY_EMBEDDER=sentence-transformers)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# the child reports its own peak RSS (VmHWM of its own address space): the
# rusage of a forked child would count the benchmark's memory before exec
_WRAP = (
    "import atexit, runpy, sys\n"
    "out = sys.argv[1]\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            open(out, 'w').write(line.split()[1])\n"
    "atexit.register(_peak)\n"
    "sys.argv = ['persona-index'] + sys.argv[2:]\n"
    "runpy.run_module('persona_index_cli.main', run_name='__main__')\n")


def _run(args, env) -> tuple[float, float]:
    fd, peak_file = tempfile.mkstemp()
    os.close(fd)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _WRAP, peak_file] + args, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(f"{args}: {p.stderr.decode(errors='replace')[-500:]}")
    kb = float(Path(peak_file).read_text() or 0)
    os.remove(peak_file)
    return wall, kb / 1024  # MB


def run_latency(texts, vectors, reps: int = 5) -> dict:
    from persona_index import PersonaIndex
    from persona_index import onnx_embed

    onnx_embed.export(None, quiet=True)
    d = tempfile.mkdtemp()
    db = f"{d}/p.lance"
    PersonaIndex(db).add([{"text": t} for t in texts], vectors=vectors)
    exe = ["--db", db]
    batch = f"{d}/batch.jsonl"
    subprocess.run([sys.executable, "-m", "persona_index_cli.main"] + exe
                   + ["sample", "-n", "100", "--seed", "0", "--out", batch], check=True,
                   capture_output=True)
    some_id = __import__("json").loads(Path(batch).read_text().splitlines()[0])["id"]
    q = "a nurse in rural Kenya"
    cases = [
        ("similar TEXT", ["similar", q, "-k", "5"], False),
        ("similar TEXT (sentence-transformers)", ["similar", q, "-k", "5"], True),
        ("distant TEXT", ["distant", q, "-k", "5"], False),
        ("sample --near TEXT", ["sample", "-n", "20", "--near", q, "--within", "300", "--seed", "0"], False),
        ("similar --id", ["similar", "--id", some_id, "-k", "5"], False),
        ("sample -n 100", ["sample", "-n", "100", "--seed", "1"], False),
        ("coverage --ids", ["coverage", "--ids", batch], False),
        ("info", ["info"], False),
        ("--help", ["--help"], False),
    ]
    rows = []
    for label, args, old in cases:
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if old:
            env["PERSONA_INDEX_QUERY_EMBEDDER"] = "sentence-transformers"
        _run(exe + args, env)  # warm-up (file cache)
        runs = [_run(exe + args, env) for _ in range(reps)]
        rows.append({"command": label, "median_s": statistics.median(r[0] for r in runs),
                     "min_s": min(r[0] for r in runs), "max_s": max(r[0] for r in runs),
                     "peak_rss_mb": max(r[1] for r in runs), "runs": reps})
        print(f"  latency {label}: {rows[-1]['median_s']:.2f}s", flush=True)
    return {"store_personas": len(texts), "rows": rows}
