"""A local OpenAI-compatible chat-completions server, to try ``synthesize`` offline.

Start it from the command line (it serves on 127.0.0.1 only)::

    python -m persona_index.synthesis.mock --port 8765 --latency 0.05 --fail-rate 0.2 --seed 1

Switches:

``--port N``
    the port (default 8765; 0 picks a free one). The server prints its base
    URL (``http://127.0.0.1:N/v1``) on stdout once it listens.
``--latency SECONDS``
    a delay before every reply (default 0).
``--fail-rate P``
    the share of requests answered ``500`` (default 0).
``--rate-429 P``
    the share of requests answered ``429 Too Many Requests`` (default 0),
    each with the header ``Retry-After: --retry-after`` (default ``0``).
``--seed S``
    which requests fail: the outcome of a request is a hash of the seed, the
    prompt and how many times this server has seen that prompt, so a run
    fails the same rows whatever the concurrency, and a retry of a failed
    row may succeed.
``--exit-after SECONDS``
    stop by itself after that long (default: run until stopped).
``--wait``
    do not serve: wait (up to 30 s) until a server answers on ``--port``,
    then exit 0 (exit 1 if none does). Use it after starting one in the
    background.

Replies: ``Reply for <persona text>``; with ``response_format`` set, a JSON
object (built from the schema's properties for ``json_schema``). Persona
prompts (``Who is in a close relationship``) and text-to-persona prompts get
``Persona: ...`` replies. ``GET /v1/models`` lists one model.

Tests and benchmarks script single requests through tags in the prompt text:

* ``[[429]]``, ``[[500]]``: that failure the first ``fail_times`` times,
  then success; ``[[retry-after=VALUE]]``: a 429 with that ``Retry-After``;
* ``[[malformed]]``: a 200 whose body lacks ``message.content``;
  ``[[html]]``: a 200 HTML page; ``[[truncated-json]]``: a 200 with half a
  JSON body; ``[[truncated]]``: a ``Content-Length`` longer than the body,
  then the connection closes; ``[[undecodable]]``: a body that is not
  UTF-8; ``[[surrogate]]``: content with a lone surrogate (``\\ud800``);
* ``[[echo401]]``, ``[[echo500]]``: a 401 JSON body, or a 500 HTML page,
  that repeats the request headers (as some proxies do), the API key too;
* ``[[slow]]``: 5 s before the reply; ``[[delay=S]]``: S seconds before it;
* ``[[notjson]]``: plain text where JSON was asked for; ``[[offschema]]``:
  JSON that ignores the schema.

The server counts requests and the peak number in flight, and keeps the
request bodies and Authorization headers it saw, for the tests.

Examples
--------
>>> import json, urllib.request
>>> with MockServer() as srv:
...     req = urllib.request.Request(srv.url + "/chat/completions", data=json.dumps(
...         {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
...     doc = json.load(urllib.request.urlopen(req))
>>> doc["choices"][0]["message"]["content"], srv.state.requests
('Reply for hi', 1)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PORT = 8765


class MockState:
    """Settings and counters of one server (see the module docstring)."""

    def __init__(self, latency_s=0.0, fail_times=1, retry_after="0", fail_rate=0.0,
                 rate_429=0.0, seed=0):
        self.latency_s = latency_s
        self.fail_times = fail_times
        self.retry_after = retry_after
        self.fail_rate = fail_rate
        self.rate_429 = rate_429
        self.seed = seed
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.failures: dict = {}
        self.seen: dict = {}
        self.auth_headers: list = []
        self.prompts: list = []
        self.bodies: list = []


def _reply_for(prompt: str) -> str:
    m = re.search(r'<persona>\n"(.*?)"\n</persona>', prompt, re.S)
    if "Who is in a close relationship" in prompt and m:
        return f"Persona: A close colleague of {m.group(1)[:80].rstrip('.')}."
    t = re.search(r"<text>\n(.*?)\n</text>", prompt, re.S)
    if t:
        return f"Persona: A regular reader of texts like: {t.group(1)[:60]}"
    return f"Reply for {m.group(1)[:100] if m else prompt[:60]}"


def _instance(schema, text):
    """A small value that matches ``schema`` (objects, strings, numbers, arrays)."""
    if not isinstance(schema, dict):
        return text
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _instance(v, text) for k, v in props.items()}
    return {"string": text, "integer": 1, "number": 1.5, "boolean": True, "array": [],
            "null": None}.get(kind, text)


def _unit(seed, prompt: str, n: int) -> float:
    h = hashlib.sha256(f"{seed}:{n}:{prompt}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(h[:8], "big") / 2**64


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (~40 ms)
    state: MockState

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, code, body: bytes, headers=None, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            return self._send(200, b'{"object": "list", "data": [{"id": "mock", '
                                   b'"object": "model"}]}')
        self._send(404, b'{"error": "not found"}')

    def _echo(self, code):
        headers = dict(sorted(self.headers.items(),  # the key first
                              key=lambda kv: kv[0].lower() != "authorization"))
        if code == 401:
            return self._send(401, json.dumps({"error": {
                "message": "Incorrect API key provided", "type": "invalid_request_error",
                "request_headers": headers}}).encode())
        # an HTML error page whose header dump starts at character 158: the key
        # (after "Authorization: Bearer ") straddles character 190, so an error text
        # "HTTP 500: <page>" cut at 200 characters before redaction keeps its start
        lines = "".join(f"{k}: {v}\n" for k, v in headers.items())
        page = ("<html><body><h1>500 Internal Server Error</h1><p>The upstream model server "
                "failed. Request headers:</p><pre>").ljust(158, " ")
        page += lines + "</pre></body></html>"
        return self._send(500, page.encode(), ctype="text/html")

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
            try:
                doc = json.loads(raw)
                prompt = doc["messages"][-1]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                return self._send(400, b'{"error": "bad request body"}')
            with st.lock:
                st.prompts.append(prompt)
                st.bodies.append(doc)
                n_seen = st.seen.get(prompt, 0)
                st.seen[prompt] = n_seen + 1
            if st.latency_s:
                time.sleep(st.latency_s)
            if "[[echo401]]" in prompt:
                return self._echo(401)
            if "[[echo500]]" in prompt:
                return self._echo(500)
            ra = re.search(r"\[\[retry-after=([^\]]*)\]\]", prompt)
            for tag, code in (("[[429]]", 429), ("[[500]]", 500), (ra and ra.group(0), 429)):
                if tag and tag in prompt:
                    with st.lock:
                        n = st.failures.get((tag, prompt), 0)
                        st.failures[(tag, prompt)] = n + 1
                    if n < st.fail_times:
                        value = ra.group(1) if ra and tag == ra.group(0) else st.retry_after
                        hdr = {"Retry-After": value} if code == 429 else {}
                        return self._send(code, b'{"error": "scripted failure"}', hdr)
            if st.rate_429 or st.fail_rate:
                u = _unit(st.seed, prompt, n_seen)
                if u < st.rate_429:
                    return self._send(429, b'{"error": {"message": "rate limited"}}',
                                      {"Retry-After": st.retry_after})
                if u < st.rate_429 + st.fail_rate:
                    return self._send(500, b'{"error": {"message": "server error"}}')
            if "[[malformed]]" in prompt:
                return self._send(200, b'{"choices": [{"message": {"oops": 1}}]}')
            if "[[html]]" in prompt:
                return self._send(200, b"<html><body>Bad gateway</body></html>", ctype="text/html")
            if "[[truncated-json]]" in prompt:
                return self._send(200, b'{"choices": [{"index": 0, "message": {"role": "assi')
            if "[[undecodable]]" in prompt:
                return self._send(200, b'{"choices": [{"message": {"content": "caf\xe9 \xff"}}]}')
            if "[[truncated]]" in prompt:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "400")
                self.end_headers()
                self.wfile.write(b'{"choices": [{"index": 0, "message": {"content": "half')
                self.wfile.flush()
                self.close_connection = True
                return None
            if "[[slow]]" in prompt:
                time.sleep(5)
            d = re.search(r"\[\[delay=([0-9.]+)\]\]", prompt)
            if d:
                time.sleep(float(d.group(1)))
            text = _reply_for(prompt)
            rf = doc.get("response_format") or {}
            if rf.get("type") in ("json_object", "json_schema") and "[[notjson]]" not in prompt:
                if "[[offschema]]" in prompt:
                    text = json.dumps({"unexpected": 1})
                elif rf["type"] == "json_schema":
                    schema = (rf.get("json_schema") or {}).get("schema", {})
                    text = json.dumps(_instance(schema, text))
                else:
                    text = json.dumps({"reply": text})
            body = {"id": "cmpl-test", "object": "chat.completion", "model": doc.get("model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(prompt.split()),
                              "completion_tokens": len(text.split()),
                              "total_tokens": len(prompt.split()) + len(text.split())}}
            out = json.dumps(body)
            if "[[surrogate]]" in prompt:  # valid JSON, invalid Unicode
                out = out.replace("Reply for", "Reply \\ud800 for", 1)
            self._send(200, out.encode())
        finally:
            with st.lock:
                st.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a client gone away is no error


class MockServer:
    """``with MockServer(latency_s=0.2) as srv: srv.url`` serves on 127.0.0.1
    (``port=0``, the default here, picks a free port); keyword arguments are
    :class:`MockState`'s."""

    def __init__(self, port: int = 0, **kwargs):
        self.state = MockState(**kwargs)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.httpd = _Server(("127.0.0.1", port), handler)
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


def _share(v: str) -> float:
    x = float(v)
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {v}")
    return x


def _seconds(v: str) -> float:
    x = float(v)
    if not 0 <= x < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, not {v}")
    return x


def _wait(port: int, timeout_s: float = 30.0) -> int:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    url = f"http://127.0.0.1:{port}/v1/models"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    print(f"http://127.0.0.1:{port}/v1 answers")
                    return 0
        except OSError:
            time.sleep(0.1)
    print(f"no server answered on http://127.0.0.1:{port}/v1 within {timeout_s:.0f} s",
          file=sys.stderr)
    return 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m persona_index.synthesis.mock",
        description="A local OpenAI-compatible chat-completions server on 127.0.0.1, for trying "
                    "`persona-index synthesize` offline. Replies 'Reply for <persona>'.")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT,
                    help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    ap.add_argument("--latency", type=_seconds, default=0.0,
                    help="seconds before each reply (default 0)")
    ap.add_argument("--fail-rate", type=_share, default=0.0,
                    help="share of requests answered 500 (default 0)")
    ap.add_argument("--rate-429", type=_share, default=0.0,
                    help="share of requests answered 429 with Retry-After (default 0)")
    ap.add_argument("--retry-after", default="0",
                    help="the Retry-After header of a 429 (default 0)")
    ap.add_argument("--seed", type=int, default=0,
                    help="which requests fail: a hash of seed, prompt and how many times the "
                         "prompt was seen (default 0)")
    ap.add_argument("--exit-after", type=_seconds, default=None,
                    help="stop by itself after this many seconds (default: run until stopped)")
    ap.add_argument("--wait", action="store_true",
                    help="serve nothing: wait up to 30 s for a server on --port, exit 0 when "
                         "it answers, 1 if none does")
    args = ap.parse_args(argv)
    if args.wait:
        return _wait(args.port)
    if args.rate_429 + args.fail_rate > 1:
        ap.error("--fail-rate and --rate-429 add up to more than 1")
    try:
        srv = MockServer(port=args.port, latency_s=args.latency, fail_rate=args.fail_rate,
                         rate_429=args.rate_429, retry_after=args.retry_after, seed=args.seed)
    except OSError as exc:
        print(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(srv.url, flush=True)
    with srv:
        try:
            if args.exit_after is None:
                while True:
                    time.sleep(3600)
            time.sleep(args.exit_after)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
