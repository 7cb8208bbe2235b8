"""A small OpenAI-compatible chat-completions responder on 127.0.0.1.

For tests and benchmarks (no hosted LLM is reachable here): it speaks the
real protocol over real HTTP. Behaviour per request is scripted through the
prompt text or the server's settings:

* a prompt containing ``[[429]]``, ``[[500]]`` or ``[[malformed]]`` gets that
  failure the first N times (``fail_times``), then succeeds;
* ``[[slow]]`` sleeps past any sensible client timeout;
* ``latency_s`` delays every response (the throughput benchmark uses 0.2 s);
* ``Retry-After`` is sent with 429s.

It counts requests and the peak number in flight, and records the
Authorization headers it saw, so tests can check the client's behaviour.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MockState:
    def __init__(self, latency_s=0.0, fail_times=1, retry_after="0"):
        self.latency_s = latency_s
        self.fail_times = fail_times
        self.retry_after = retry_after
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.failures: dict = {}
        self.auth_headers: list = []
        self.prompts: list = []


def _reply_for(prompt: str) -> str:
    m = re.search(r'<persona>\n"(.*?)"\n</persona>', prompt, re.S)
    if "Who is in a close relationship" in prompt and m:
        return f"Persona: A close colleague of {m.group(1)[:80].rstrip('.')}."
    t = re.search(r"<text>\n(.*?)\n</text>", prompt, re.S)
    if t:
        return f"Persona: A regular reader of texts like: {t.group(1)[:60]}"
    return f"Reply for {m.group(1)[:100] if m else prompt[:60]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (~40 ms)
    state: MockState

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, code, body: bytes, headers=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        st = self.state
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        with st.lock:
            st.requests += 1
            st.in_flight += 1
            st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
            st.auth_headers.append(self.headers.get("Authorization"))
        try:
            if not self.path.endswith("/chat/completions"):
                return self._send(404, b'{"error": "not found"}')
            doc = json.loads(raw)
            prompt = doc["messages"][-1]["content"]
            with st.lock:
                st.prompts.append(prompt)
            if st.latency_s:
                time.sleep(st.latency_s)
            for tag, code in (("[[429]]", 429), ("[[500]]", 500), ("[[malformed]]", 200)):
                if tag in prompt:
                    with st.lock:
                        n = st.failures.get((tag, prompt), 0)
                        st.failures[(tag, prompt)] = n + 1
                    if tag == "[[malformed]]":
                        return self._send(200, b'{"choices": [{"message": {"oops": 1}}]')
                    if n < st.fail_times:
                        hdr = {"Retry-After": st.retry_after} if code == 429 else {}
                        return self._send(code, b'{"error": "scripted failure"}', hdr)
            if "[[slow]]" in prompt:
                time.sleep(5)
            text = _reply_for(prompt)
            body = {"id": "cmpl-test", "object": "chat.completion", "model": doc.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(prompt.split()),
                              "completion_tokens": len(text.split()),
                              "total_tokens": len(prompt.split()) + len(text.split())}}
            self._send(200, json.dumps(body).encode())
        finally:
            with st.lock:
                st.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client gone away is no error


class MockServer:
    """``with MockServer(latency_s=0.2) as srv: srv.url`` -- serves on 127.0.0.1."""

    def __init__(self, **kwargs):
        self.state = MockState(**kwargs)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
