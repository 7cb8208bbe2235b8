"""Synthesis throughput against the local OpenAI-compatible server.

The server is the package's mock (``python -m persona_index.synthesis.mock``),
started as its own process, as a user would start it: it answers every
request after ``latency_s``, so ``concurrency / latency_s`` completions/s is
the ceiling no client can pass. In the same run, the same server is timed
with a bare httpx loop (no prompts, no rows, no file: what the transport
alone reaches), then ``synthesize`` ``repeats`` times; the median of those is
the figure, as a ratio of the ceiling. ``n`` is a multiple of ``concurrency``
(1,024 = 32 rounds of 32): with 1,000, the last round holds 8 requests and
the ceiling a client can reach is 156/s, not 160/s.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from persona_index.synthesis.client import ClientConfig
from persona_index.synthesis.run import synthesize
from persona_index.synthesis.templates import load_template


@contextmanager
def mock_server(latency_s: float):
    """The mock in a child process on a free port; yields its base URL."""
    p = subprocess.Popen([sys.executable, "-m", "persona_index.synthesis.mock", "--port", "0",
                          "--latency", str(latency_s), "--exit-after", "1800"],
                         stdout=subprocess.PIPE, text=True)
    try:
        yield p.stdout.readline().strip()
    finally:
        p.kill()
        p.wait(10)


def _bare(url: str, n: int, concurrency: int) -> float:
    """Completions/s of a minimal httpx loop (one fixed body) against ``url``."""
    import httpx

    body = {"model": "m", "messages": [{"role": "user", "content": "A persona who keeps bees"}]}

    async def go():
        limits = httpx.Limits(max_connections=concurrency,
                              max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as c:
            left = iter(range(n))

            async def worker():
                for _ in left:
                    r = await c.post(url + "/chat/completions", json=body)
                    r.raise_for_status()

            t = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return n / (time.perf_counter() - t)

    return asyncio.run(go())


def run_synth(n: int = 1024, concurrency: int = 32, latency_s: float = 0.2,
              repeats: int = 3) -> dict:
    personas = [{"id": f"p{i}", "text": f"A persona number {i} who keeps bees"} for i in range(n)]
    tmpl = [load_template("instruction")]
    out = {}
    load_before = os.getloadavg()  # a shared machine: the runnable queue slows every wakeup
    with tempfile.TemporaryDirectory() as d, mock_server(latency_s) as url:
        bare = _bare(url, n, concurrency)
        runs = []
        for k in range(repeats):
            cfg = ClientConfig(base_url=url, model="m", concurrency=concurrency, timeout_s=30)
            t = time.perf_counter()
            s = synthesize(personas, tmpl, str(Path(d) / f"o{k}.jsonl"), cfg)
            wall = time.perf_counter() - t
            runs.append({"completions_per_s": s.ok / wall, "failed": s.failed, "seconds": wall,
                         "mean_client_latency_s": s.mean_latency_s})
        ideal = concurrency / latency_s
        med = statistics.median(r["completions_per_s"] for r in runs)
        out["throughput"] = {
            "requests": n, "concurrency": concurrency, "server_latency_s": latency_s,
            "server": "python -m persona_index.synthesis.mock (own process)",
            "repeats": repeats, "runs": runs,
            "completions_per_s": med, "ideal_per_s": ideal, "ratio_to_ideal": med / ideal,
            "bare_httpx_per_s": bare, "ratio_to_bare_httpx": med / bare,
            # time each concurrency slot spends per request beyond the server's sleep
            "overhead_per_request_ms": (concurrency / med - latency_s) * 1000,
            "failed": sum(r["failed"] for r in runs),
            "load_average_1_5_15_min": {"before": [round(x, 2) for x in load_before],
                                        "after": [round(x, 2) for x in os.getloadavg()]}}
    with tempfile.TemporaryDirectory() as d, mock_server(0.0) as url:
        cfg = ClientConfig(base_url=url, model="m", concurrency=1, timeout_s=30)
        m = 300
        t = time.perf_counter()
        synthesize(personas[:m], tmpl, str(Path(d) / "o2.jsonl"), cfg)
        wall = time.perf_counter() - t
        out["round_trip"] = {"requests": m, "concurrency": 1,
                             "ms_per_request_client_and_server": wall / m * 1000}
    return out
