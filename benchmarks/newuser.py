"""A new user's coverage calls, timed end to end (issue #23).

A store of 5,000 personas (the shared Persona Hub file's 2,460 plus 2,540
generated ones, embedded with the default model and cached), a batch of 20,
and two CLI calls as a user types them: ``coverage --ids batch.jsonl`` and
``coverage --ids batch.jsonl --compare-uniform 5``. Each runs ``reps`` times
in a fresh process, on a machine left as it is ("quiet": whatever else runs
there) and beside one CPU-bound ``python -c 'while 1: pass'`` ("loaded"),
in three variants measured in the same run:

* ``before``: the code at the base commit (``git archive`` of it, run from a
  temporary folder), BLAS left to its own threads;
* ``after, BLAS off``: this code with ``PERSONA_INDEX_BLAS_THREADS=off`` (the
  single-snapshot batched metrics and the eigh PCA grid, the BLAS threads
  left alone);
* ``after``: this code as shipped (the BLAS thread rule of
  :mod:`persona_index.threads`).

It also draws the map picture of ``sample --plot`` into the results folder.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_POOL = 5000
GOAL_S = {"ids": 2.5, "compare5": 5.0}


def _store(tmp: Path, data: str | None) -> tuple[Path, Path]:
    from persona_index import PersonaIndex
    from persona_index.embed import get_embedder
    from persona_index.generate import generate
    from persona_index.sampling import draw, write_batch

    from .common import cached_embeddings, load_pairs

    recs, X = [], []
    if data and Path(data).exists():
        personas, _ = load_pairs(data)
        recs += [{"text": p, "collection": "personahub"} for p in personas]
        X.append(cached_embeddings(personas, "tools-personas"))
    gen = list(generate(N_POOL - len(recs), seed=0))
    texts = [r["persona"] for r in gen]
    recs += [{"text": t, "collection": "generated", "region": r["region"]}
             for t, r in zip(texts, gen)]
    X.append(cached_embeddings(texts, f"generated-{len(gen)}"))
    import numpy as np

    db = tmp / "p.lance"
    idx = PersonaIndex(db, get_embedder())
    idx.add(recs, vectors=np.concatenate(X), attributes=["collection", "region"],
            source="benchmark")
    batch = tmp / "batch.jsonl"
    write_batch(draw(idx, 20, seed=0, record=False), str(batch))
    return db, batch


def _before_tree(tmp: Path, base: str) -> Path:
    dest = tmp / "before"
    dest.mkdir()
    arch = subprocess.run(["git", "archive", base, "persona_index", "cli"], cwd=ROOT,
                          check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


def _cmd(variant: str, before: Path, db: Path, batch: Path, compare: int) -> tuple[list, dict]:
    args = ["--db", str(db), "coverage", "--ids", str(batch), "--json"]
    if compare:
        args += ["--compare-uniform", str(compare)]
    env = {k: v for k, v in os.environ.items() if k != "PERSONA_INDEX_BLAS_THREADS"}
    if variant == "before":
        code = f"import sys; sys.path.insert(0, {str(before)!r}); from cli.main import cli; cli()"
        return [sys.executable, "-c", code, *args], env
    if variant == "after, BLAS off":
        env["PERSONA_INDEX_BLAS_THREADS"] = "off"
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from cli.main import cli; cli()"
    return [sys.executable, "-c", code, *args], env


def _time(cmd, env, reps) -> list:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        out.append(time.perf_counter() - t)
        if p.returncode:
            raise RuntimeError(f"{' '.join(cmd[-8:])} failed: {p.stderr[-800:]}")
        json.loads(p.stdout)  # the command printed its one JSON document
    return out


def run_newuser(data: str | None, out: Path, reps: int = 5, base: str | None = None) -> dict:
    base = base or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                                  capture_output=True, text=True).stdout.strip()
    res: dict = {"pool": N_POOL, "batch": 20, "reps": reps, "base_commit": base,
                 "goal_loaded_s": GOAL_S, "cpus": os.cpu_count(), "timings": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db, batch = _store(tmp, data)
        before = _before_tree(tmp, base)
        for load in ("quiet", "loaded"):
            busy = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) \
                if load == "loaded" else None
            try:
                time.sleep(1.0 if busy else 0)
                for variant in ("before", "after, BLAS off", "after"):
                    for what, compare in (("ids", 0), ("compare5", 5)):
                        cmd, env = _cmd(variant, before, db, batch, compare)
                        la = os.getloadavg()[0]
                        ts = _time(cmd, env, reps)
                        res["timings"].append({
                            "load": load, "variant": variant, "command": what,
                            "median_s": round(statistics.median(ts), 2),
                            "min_s": round(min(ts), 2), "max_s": round(max(ts), 2),
                            "loadavg_1min_before": round(la, 2)})
                        print(f"newuser: {load} {variant} {what}: "
                              f"{statistics.median(ts):.2f}s (load {la:.1f})", flush=True)
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
        res["map"] = _map(db, batch, out)
    return res


def _map(db: Path, batch: Path, out: Path) -> dict | None:
    try:
        from persona_index.plots import coverage_map
    except ImportError:
        return None
    from persona_index import PersonaIndex
    from persona_index.sampling import read_ids

    idx = PersonaIndex(db)
    with open(batch, encoding="utf-8") as fh:
        ids = read_ids(fh, str(batch))
    path = out / "map_newuser.png"
    info = coverage_map(idx, ids, path)
    # the docs site shows files under docs/ only: the same picture there
    docs = ROOT / "docs" / "img" / "coverage-map.png"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_bytes(path.read_bytes())
    return {"file": path.name, "docs_file": "img/coverage-map.png", **info}


def markdown(r: dict) -> list:
    """The timing table of the docs page."""
    def med(load, variant, what):
        return next(t["median_s"] for t in r["timings"]
                    if (t["load"], t["variant"], t["command"]) == (load, variant, what))

    L = [f"`coverage` on {r['pool']:,} personas, a batch of {r['batch']}: median of "
         f"{r['reps']} runs in a fresh process each, in seconds ({r['cpus']} CPUs; "
         "*loaded*: beside one `python -c 'while 1: pass'`; *before*: the code at "
         f"{r['base_commit'][:10]}). Other jobs shared the machine: the 1-minute load average "
         f"was {min(t['loadavg_1min_before'] for t in r['timings']):.0f} to "
         f"{max(t['loadavg_1min_before'] for t in r['timings']):.0f} before the series.", "",
         "| command | load | before | after, BLAS threads left alone | after | goal (loaded) |",
         "|---|---|---|---|---|---|"]
    for what, label in (("ids", "`coverage --ids batch.jsonl`"),
                        ("compare5", "`... --compare-uniform 5`")):
        for load in ("quiet", "loaded"):
            goal = f"< {r['goal_loaded_s'][what]}" if load == "loaded" else ""
            L.append(f"| {label} | {load} | {med(load, 'before', what):.2f} | "
                     f"{med(load, 'after, BLAS off', what):.2f} | "
                     f"{med(load, 'after', what):.2f} | {goal} |")
    return L
