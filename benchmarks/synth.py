"""Synthesis throughput against the local OpenAI-compatible server."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from persona_index.synthesis.client import ClientConfig
from tests.mock_server import MockServer
from persona_index.synthesis.run import synthesize
from persona_index.synthesis.templates import load_template


def run_synth(n: int = 1000, concurrency: int = 32, latency_s: float = 0.2) -> dict:
    personas = [{"id": f"p{i}", "text": f"A persona number {i} who keeps bees"} for i in range(n)]
    tmpl = [load_template("instruction")]
    out = {}
    with tempfile.TemporaryDirectory() as d:
        with MockServer(latency_s=latency_s) as srv:
            cfg = ClientConfig(base_url=srv.url, model="m", concurrency=concurrency, timeout_s=30)
            t = time.perf_counter()
            s = synthesize(personas, tmpl, str(Path(d) / "o.jsonl"), cfg)
            wall = time.perf_counter() - t
            out["throughput"] = {
                "requests": n, "concurrency": concurrency, "server_latency_s": latency_s,
                "completions_per_s": s.ok / wall, "ideal_per_s": concurrency / latency_s,
                "mean_client_latency_s": s.mean_latency_s,
                # time each concurrency slot spends per request beyond the server's sleep
                "overhead_per_request_ms": (wall * concurrency / n - latency_s) * 1000,
                "peak_in_flight": srv.state.peak_in_flight, "failed": s.failed}
        with MockServer(latency_s=0.0) as srv:
            cfg = ClientConfig(base_url=srv.url, model="m", concurrency=1, timeout_s=30)
            m = 300
            t = time.perf_counter()
            synthesize(personas[:m], tmpl, str(Path(d) / "o2.jsonl"), cfg)
            wall = time.perf_counter() - t
            out["round_trip"] = {"requests": m, "concurrency": 1,
                                 "ms_per_request_client_and_server": wall / m * 1000}
    return out
