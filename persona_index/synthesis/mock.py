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
import asyncio
import hashlib
import json
import re
import socket
import sys
import threading
import time
from http import HTTPStatus

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


def _response(st: MockState, method: str, path: str, headers: list, raw: bytes):
    """What to answer: (seconds to wait, status, body, extra headers, content
    type, whether to cut the body short and close)."""
    js = "application/json"
    if method == "GET":
        if path.rstrip("/").endswith("/models"):
            return 0, 200, b'{"object": "list", "data": [{"id": "mock", "object": "model"}]}', \
                {}, js, False
        return 0, 404, b'{"error": "not found"}', {}, js, False
    if method != "POST" or not path.endswith("/chat/completions"):
        return 0, 404, b'{"error": "not found"}', {}, js, False
    try:
        doc = json.loads(raw)
        prompt = doc["messages"][-1]["content"]
        str(prompt)
    except (ValueError, KeyError, IndexError, TypeError):
        return 0, 400, b'{"error": "bad request body"}', {}, js, False
    st.prompts.append(prompt)
    st.bodies.append(doc)
    n_seen = st.seen.get(prompt, 0)
    st.seen[prompt] = n_seen + 1
    got = _scripted(st, prompt, headers, n_seen)
    if got is None:
        return _completion(st, doc, prompt)
    code, body, extra, ctype, cut = got
    return st.latency_s, code, body, extra, ctype, cut


def _scripted(st: MockState, prompt: str, headers: list, n_seen: int):
    """A scripted or random failure, or a malformed 200, for this prompt:
    (status, body, extra headers, content type, cut), or None to reply."""
    js = "application/json"
    if "[[echo401]]" in prompt or "[[echo500]]" in prompt:
        return _echo(prompt, headers)
    ra = re.search(r"\[\[retry-after=([^\]]*)\]\]", prompt)
    for tag, code in (("[[429]]", 429), ("[[500]]", 500), (ra and ra.group(0), 429)):
        if tag and tag in prompt:
            n = st.failures.get((tag, prompt), 0)
            st.failures[(tag, prompt)] = n + 1
            if n < st.fail_times:
                value = ra.group(1) if ra and tag == ra.group(0) else st.retry_after
                return (code, b'{"error": "scripted failure"}',
                        {"Retry-After": value} if code == 429 else {}, js, False)
    if st.rate_429 or st.fail_rate:
        u = _unit(st.seed, prompt, n_seen)
        if u < st.rate_429:
            return 429, b'{"error": {"message": "rate limited"}}', \
                {"Retry-After": st.retry_after}, js, False
        if u < st.rate_429 + st.fail_rate:
            return 500, b'{"error": {"message": "server error"}}', {}, js, False
    bad = {"[[malformed]]": (b'{"choices": [{"message": {"oops": 1}}]}', js, False),
           "[[html]]": (b"<html><body>Bad gateway</body></html>", "text/html", False),
           "[[truncated-json]]": (b'{"choices": [{"index": 0, "message": {"role": "assi', js,
                                  False),
           "[[undecodable]]": (b'{"choices": [{"message": {"content": "caf\xe9 \xff"}}]}', js,
                               False),
           "[[truncated]]": (b'{"choices": [{"index": 0, "message": {"content": "half', js,
                             True)}
    for tag, (body, ctype, cut) in bad.items():
        if tag in prompt:
            return 200, body, {}, ctype, cut
    return None


def _echo(prompt: str, headers: list):
    """A 401 JSON body, or a 500 HTML page, that repeats the request headers."""
    echoed = dict(sorted(headers, key=lambda kv: kv[0].lower() != "authorization"))
    if "[[echo401]]" in prompt:
        return 401, json.dumps({"error": {
            "message": "Incorrect API key provided", "type": "invalid_request_error",
            "request_headers": echoed}}).encode(), {}, "application/json", False
    # an HTML error page whose header dump starts at character 158: the key
    # (after "Authorization: Bearer ") straddles character 190, so an error text
    # "HTTP 500: <page>" cut at 200 characters before redaction keeps its start
    page = ("<html><body><h1>500 Internal Server Error</h1><p>The upstream model server "
            "failed. Request headers:</p><pre>").ljust(158, " ")
    page += "".join(f"{k}: {v}\n" for k, v in echoed.items()) + "</pre></body></html>"
    return 500, page.encode(), {}, "text/html", False


def _completion(st: MockState, doc: dict, prompt: str):
    """The 200 reply: ``Reply for <persona>`` (or JSON under response_format)."""
    wait = st.latency_s + (5 if "[[slow]]" in prompt else 0)
    d = re.search(r"\[\[delay=([0-9.]+)\]\]", prompt)
    if d:
        wait += float(d.group(1))
    text = _reply_for(prompt)
    rf = doc.get("response_format") or {}
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema") \
            and "[[notjson]]" not in prompt:
        if "[[offschema]]" in prompt:
            text = json.dumps({"unexpected": 1})
        elif rf["type"] == "json_schema":
            text = json.dumps(_instance((rf.get("json_schema") or {}).get("schema", {}), text))
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
    return wait, 200, out.encode(), {}, "application/json", False


class MockServer:
    """``with MockServer(latency_s=0.2) as srv: srv.url`` serves on 127.0.0.1
    (``port=0``, the default here, picks a free port); keyword arguments are
    :class:`MockState`'s.

    One asyncio loop in a background thread serves every connection (HTTP/1.1,
    keep-alive), as an async model server does: waits cost no thread, so the
    server adds little to what the client under test measures.
    """

    def __init__(self, port: int = 0, **kwargs):
        self.state = MockState(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._conns: set = set()
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", port, backlog=512))
        self.port = self._server.sockets[0].getsockname()[1]
        self.thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        async def stop():
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self.thread.join(10)
        self._loop.close()

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._conns.add(task)
        st = self.state
        sock = writer.get_extra_info("socket")
        if sock is not None:  # else headers and body wait on delayed ACKs (~40 ms)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                line = await reader.readline()
                if not line.strip():
                    break
                method, path = (line.decode("latin-1").split(" ") + ["", ""])[:2]
                headers = []
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers.append((k.strip(), v.strip()))
                hd = {k.lower(): v for k, v in headers}
                raw = await reader.readexactly(int(hd.get("content-length") or 0))
                st.requests += 1
                st.in_flight += 1
                st.peak_in_flight = max(st.peak_in_flight, st.in_flight)
                st.auth_headers.append(hd.get("authorization"))
                try:
                    wait, code, body, extra, ctype, cut = _response(st, method, path, headers,
                                                                    raw)
                    if wait:
                        await asyncio.sleep(wait)
                    head = [f"HTTP/1.1 {code} {HTTPStatus(code).phrase}",
                            f"Content-Type: {ctype}",
                            f"Content-Length: {400 if cut else len(body)}"]
                    head += [f"{k}: {v}" for k, v in extra.items()]
                    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
                    await writer.drain()
                finally:
                    st.in_flight -= 1
                if cut or hd.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client gone away, or a request this server does not parse
        finally:
            self._conns.discard(task)
            writer.close()


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
