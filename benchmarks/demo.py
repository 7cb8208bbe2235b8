"""The README's first command on a fresh clone: install time and job time apart.

Clones the checkout's HEAD into a temporary folder and runs ``make setup``
(the install: a new .venv, torch, the package and its extras; pip's own cache
on this machine may make it faster than on a machine that never installed
them) and then ``make demo`` (the job: 10,000 generated personas embedded
offline, queries, a batch, its coverage, the prompts file) with an empty
ONNX cache, so the first text query pays the export as a user's first run
does. The job's step times come from the demo's own ``== [ t s]`` lines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"^== \[\s*([\d.]+) s\] (.*)$")


def _timed(cmd, cwd, env) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return secs, p.stdout + p.stderr


def run_demo() -> dict:
    tmp = Path(tempfile.mkdtemp())
    try:
        clone = tmp / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, check=True,
                                capture_output=True, text=True).stdout.strip()
        env = dict(os.environ, PERSONA_INDEX_CACHE=str(tmp / "cache"))
        env.pop("PERSONA_INDEX_DB", None)
        install_s, _ = _timed(["make", "setup"], clone, env)
        job_s, out = _timed(["make", "demo"], clone, env)
        steps, last = [], None
        for line in out.splitlines():
            m = STEP.match(line)
            if m:
                t, name = float(m.group(1)), m.group(2)
                if last:
                    steps.append({"step": last[1], "seconds": round(t - last[0], 2)})
                last = (t, name)
        return {"commit": commit, "install_seconds": round(install_s, 1),
                "job_seconds": round(job_s, 1), "goal_job_seconds": 60,
                "steps": steps, "onnx_cache": "empty (the first text query exports the model)"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
