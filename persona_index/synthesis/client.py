"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp's server,
Ollama, hosted APIs) with a concurrency limit, timeouts and retries.

Retries: on 408, 409, 429 and 5xx responses, timeouts and connection errors,
with exponential backoff and full jitter. A ``Retry-After`` (seconds or an
HTTP date) is honoured up to ``max_retry_wait_s``; a longer, infinite or
unreadable one gets the usual backoff instead. Each attempt is bounded as a
whole by ``timeout_s`` (a server that trickles bytes cannot stretch it).

Row-level faults stay row-level: a body that is not UTF-8, not JSON, cut
short, without ``choices[0].message.content``, with unpaired surrogates, or
that does not match the requested ``response_format`` becomes a failed
:class:`Completion` with a short reason; nothing is raised.

Secrets: the API key comes only from an environment variable and goes only
into the ``Authorization`` header. Every error text (and every reply) is
passed through :func:`redact` before it is cut to 200 characters, stored,
printed or logged: the key's value, any run of 8 or more of its characters,
``Authorization``/``api-key`` header values and ``Bearer`` tokens become
``***``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import random
import re
import time
from dataclasses import dataclass, field

from .._lazy import attempt_import
from ..errors import InvalidQueryError

#: an error text kept in a row is cut to this many characters, after redaction
ERROR_CHARS = 200
#: keys of the request body that extra_body may not set (the client owns them)
RESERVED_BODY_KEYS = ("model", "messages", "stream", "n")

_HEADER_VALUE = re.compile(
    r"(?i)((?:proxy-)?authorization|x-api-key|api[-_]?key)"  # the header's name
    r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)"  # the separator, quoted or not (JSON escapes too)
    r"((?:(?:bearer|basic|token)\s+)?[^\s\"'\\,;<>&}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=:-]{6,}")


def redact(text: str | None, secrets=(), *, headers: bool = True) -> str | None:
    """``text`` with secrets replaced by ``***``: every value in ``secrets``
    and any run of 8 or more characters of one of them (a key cut short by a
    server is still a key), then (``headers=True``, for error texts) header
    values of ``Authorization``, ``api-key`` and ``x-api-key`` and
    ``Bearer``/``Basic`` tokens.

    Examples
    --------
    >>> redact('HTTP 401: {"Authorization": "Bearer sk-SECRET-123"}', ["sk-SECRET-123"])
    'HTTP 401: {"Authorization": "***"}'
    >>> redact("key sk-SECRET-1 was refused", ["sk-SECRET-123"])  # 12 of its characters
    'key *** was refused'
    >>> redact("api-key: abc123xyz; other: fine")
    'api-key: ***; other: fine'
    """
    if not text:
        return text
    for s in secrets:
        if not s or len(s) < 4:
            continue
        if len(s) < 8:
            text = text.replace(s, "***")
            continue
        grams = {s[i:i + 8] for i in range(len(s) - 7)}
        if not any(g in text for g in grams):  # the usual case: one C-speed scan per gram
            continue
        mark = bytearray(len(text))
        for i in range(len(text) - 7):
            if text[i:i + 8] in grams:
                mark[i:i + 8] = b"\x01" * 8
        out, i = [], 0
        while i < len(text):
            if mark[i]:
                while i < len(text) and mark[i]:
                    i += 1
                out.append("***")
            else:
                out.append(text[i])
                i += 1
        text = "".join(out)
    if not headers:  # a model's reply may well talk about api_key fields
        return text
    text = _HEADER_VALUE.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    return _BEARER.sub("***", text)


@dataclass
class Completion:
    """The outcome of one chat request: the text when ``ok``, else ``error``
    (a failed completion may keep the ``text`` it got, e.g. a reply that did
    not match the requested JSON schema).

    Examples
    --------
    >>> c = Completion(ok=False, error="HTTP 400: bad request", attempts=1)
    >>> c.ok, c.text, c.error, c.unreachable
    (False, None, 'HTTP 400: bad request', False)
    """

    ok: bool
    text: str | None = None
    finish_reason: str | None = None
    usage: dict | None = None
    model: str | None = None
    latency_s: float = 0.0
    attempts: int = 0
    error: str | None = None
    #: no attempt got a connection (refused, no such host): the endpoint was never reached
    unreachable: bool = False


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@dataclass
class ClientConfig:
    """Endpoint, model and request settings of a run, checked on construction
    (raises :class:`InvalidQueryError`); the API key is read from the
    environment variable ``api_key_env``, never stored here.

    Request options (each is sent only when set): ``system`` (a system
    prompt), ``response_format`` (``"json"`` for JSON mode, or a JSON schema
    as a dict: replies are then checked against it and a mismatch is a failed
    row), ``seed``, ``top_p``, and ``extra_body`` (any other body fields,
    passed through; it may not set model, messages, stream or n).
    ``max_retry_wait_s`` caps how long a ``Retry-After`` is honoured.

    Examples
    --------
    >>> cfg = ClientConfig("http://127.0.0.1:8000/v1", "my-model", temperature=0.2, max_tokens=64)
    >>> cfg.chat_body("Hello")
    {'model': 'my-model', 'messages': [{'role': 'user', 'content': 'Hello'}], \
'temperature': 0.2, 'max_tokens': 64}
    >>> cfg = ClientConfig("http://127.0.0.1:8000/v1", "m", system="Be brief.", seed=7, top_p=0.9,
    ...                    response_format="json", extra_body={"min_p": 0.1})
    >>> body = cfg.chat_body("Hello", index=2)
    >>> body["messages"][0], body["seed"], body["top_p"], body["response_format"], body["min_p"]
    ({'role': 'system', 'content': 'Be brief.'}, 9, 0.9, {'type': 'json_object'}, 0.1)
    >>> ClientConfig("http://127.0.0.1:8000/v1", "my-model", temperature=float("nan"))
    Traceback (most recent call last):
        ...
    persona_index.errors.InvalidQueryError: temperature must be a finite number >= 0, not nan
    """

    base_url: str
    model: str
    temperature: float = 0.7
    max_tokens: int = 512
    concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    api_key_env: str = "OPENAI_API_KEY"
    extra_body: dict = field(default_factory=dict)
    max_retry_wait_s: float = 60.0
    system: str | None = None
    response_format: str | dict | None = None
    seed: int | None = None
    top_p: float | None = None

    def __post_init__(self):
        # checked here, not in the request tasks, where a NaN or an unencodable
        # name would only surface as an exception per task
        if not _finite(self.temperature) or self.temperature < 0:
            raise InvalidQueryError(f"temperature must be a finite number >= 0, not "
                                    f"{self.temperature!r}")
        if not self.timeout_s > 0:  # NaN fails this too
            raise InvalidQueryError(f"timeout must be a number of seconds > 0, not "
                                    f"{self.timeout_s!r}")
        if not self.max_retry_wait_s >= 0:
            raise InvalidQueryError(f"max_retry_wait_s must be a number of seconds >= 0, not "
                                    f"{self.max_retry_wait_s!r}")
        if self.top_p is not None and not (_finite(self.top_p) and 0 < self.top_p <= 1):
            raise InvalidQueryError(f"top_p must be a number in (0, 1], not {self.top_p!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)
                                      or not 0 <= self.seed < 2**63):
            raise InvalidQueryError(f"seed must be an integer in [0, 2**63), not {self.seed!r}")
        if self.system is not None and (not isinstance(self.system, str)
                                        or not self.system.strip()):
            raise InvalidQueryError("system must be a non-empty text")
        if not isinstance(self.extra_body, dict):
            raise InvalidQueryError(f"extra_body must be a JSON object (a dict), not "
                                    f"{type(self.extra_body).__name__}")
        taken = sorted(set(self.extra_body) & set(RESERVED_BODY_KEYS))
        if taken:
            raise InvalidQueryError(f"extra_body may not set {taken}: the client sets "
                                    f"{', '.join(RESERVED_BODY_KEYS)} itself")
        try:
            json.dumps(self.extra_body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidQueryError(f"extra_body is not strict JSON ({exc})") from None
        self._validator = None
        rf = self.response_format
        if isinstance(rf, dict):
            js = attempt_import("jsonschema", "synth")
            try:
                cls = js.validators.validator_for(rf)
                cls.check_schema(rf)
            except js.exceptions.SchemaError as exc:
                raise InvalidQueryError(f"response_format: not a valid JSON schema: "
                                        f"{exc.message}") from None
            self._validator = cls(rf)
        elif rf not in (None, "json"):
            raise InvalidQueryError(f"response_format must be None, 'json' or a JSON schema "
                                    f"(a dict), not {rf!r}")
        for name in ("base_url", "model", "system"):
            try:
                str(getattr(self, name)).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidQueryError(f"{name} {getattr(self, name)!r} is not valid text "
                                        "(undecodable bytes)") from None

    def request_options(self) -> dict:
        """The request settings a run's summary records (no key, no URL).

        Examples
        --------
        >>> ClientConfig("http://127.0.0.1:8000/v1", "m", seed=3).request_options()["seed"]
        3
        """
        rf = self.response_format
        return {"model": self.model, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "top_p": self.top_p, "seed": self.seed,
                "system": self.system,
                "response_format": ({"json_schema": rf} if isinstance(rf, dict) else rf),
                "extra_body": self.extra_body or None}

    def _response_format_body(self):
        rf = self.response_format
        if rf == "json":
            return {"type": "json_object"}
        title = rf.get("title") if isinstance(rf.get("title"), str) else ""
        name = re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] or "response"
        return {"type": "json_schema", "json_schema": {"name": name, "schema": rf}}

    def chat_body(self, prompt: str, index: int = 0) -> dict:
        """The request body for ``prompt``; ``index`` (the i-th of n requests
        for one prompt) is added to ``seed`` so that n seeded requests differ."""
        messages = [{"role": "user", "content": prompt}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        body = {"model": self.model, "messages": messages, "temperature": self.temperature,
                "max_tokens": self.max_tokens}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.seed is not None:
            body["seed"] = (self.seed + index) % 2**63
        if self.response_format is not None:
            body["response_format"] = self._response_format_body()
        body.update(self.extra_body)
        return body

    def check_reply(self, text: str) -> str | None:
        """Why ``text`` does not satisfy ``response_format`` (None when it does).

        Examples
        --------
        >>> cfg = ClientConfig("http://x/v1", "m", response_format={
        ...     "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
        >>> cfg.check_reply('{"name": "Ada"}') is None, cfg.check_reply('{"nom": "Ada"}')
        (True, "reply does not match the JSON schema: 'name' is a required property (at $)")
        """
        if self.response_format is None:
            return None
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return f"reply is not JSON ({exc.msg} at character {exc.pos})"
        if self._validator is None:
            return None if isinstance(doc, dict) else "reply is JSON but not an object"
        err = next(iter(self._validator.iter_errors(doc)), None)
        if err is None:
            return None
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}"
                              for p in err.absolute_path)
        return f"reply does not match the JSON schema: {err.message[:120]} (at {where})"


def _retry_after(value: str | None, max_wait: float = math.inf) -> float | None:
    """Seconds to wait from a ``Retry-After`` value; None when it is missing,
    unreadable, not finite, negative, or longer than ``max_wait``.

    Examples
    --------
    >>> _retry_after("2"), _retry_after("inf"), _retry_after("3600", 60), _retry_after("soon")
    (2.0, None, None, None)
    >>> _retry_after("Fri, 01 Jan 2100 00:00:00 GMT", 60) is None
    True
    """
    if not value:
        return None
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            secs = when.timestamp() - time.time()
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
        secs = max(0.0, secs)
    if not math.isfinite(secs) or secs < 0 or secs > max_wait:
        return None
    return secs


def _clean(value, kind):
    """A server-given field if it is of ``kind`` and storable as strict JSON, else None."""
    if not isinstance(value, kind):
        return None
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError):
        return None
    return value


try:
    _attempt_timeout = asyncio.timeout  # Python 3.11+: one timer handle, no extra task
except AttributeError:  # pragma: no cover - Python 3.10
    _attempt_timeout = None


class ChatClient:
    """Async client; use as ``async with ChatClient(cfg) as c: await c.complete(p)``.

    Construction checks the base URL and sends nothing. ``waiting`` maps each
    request now sleeping before a retry to (the monotonic time it resumes,
    why), for progress reports.

    Examples
    --------
    >>> ChatClient(ClientConfig("http://127.0.0.1:8000", "m")).url  # /v1 is added
    'http://127.0.0.1:8000/v1/chat/completions'
    >>> ChatClient(ClientConfig("https://api.example.com/v1/", "m")).url
    'https://api.example.com/v1/chat/completions'
    >>> ChatClient(ClientConfig("localhost:8000", "m"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InvalidQueryError: base URL 'localhost:8000' must be an http:// or ...
    """

    RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}

    def __init__(self, config: ClientConfig, *, rng: random.Random | None = None):
        self.cfg = config
        self._check_url()
        self._rng = rng or random.Random()
        self._sem = asyncio.Semaphore(config.concurrency)
        self._clients: list = []
        self._load: list = []
        self.waiting: dict = {}
        self.in_flight = 0
        self.reached = False  # some request got an HTTP answer
        self._key()  # a key no header can carry is refused now, before any request or file
        self.secrets = self._secret_values()

    def _key(self) -> str | None:
        key = os.environ.get(self.cfg.api_key_env)
        if key and not (key.isascii() and key.isprintable()):  # the message never shows the key
            raise InvalidQueryError(f"the API key in ${self.cfg.api_key_env} cannot be sent in a "
                                    "header: it has non-ASCII characters or line breaks")
        return key or None

    def _secret_values(self) -> list:
        out = []
        key = os.environ.get(self.cfg.api_key_env)
        if key:
            out.append(key)
        for k, v in self.cfg.extra_body.items():  # a key passed as a body field
            if isinstance(v, str) and re.search(r"(?i)key|token|secret|password", k):
                out.append(v)
        httpx = attempt_import("httpx", "synth")
        try:
            pw = httpx.URL(self.cfg.base_url).password
        except Exception:  # noqa: BLE001 - checked (and refused) in _check_url
            pw = None
        if pw:
            out.append(pw)
        return out

    def redact(self, text, *, headers: bool = True):
        """:func:`redact` with this client's secrets."""
        return redact(text, self.secrets, headers=headers)

    def _headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        key = self._key()
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    @property
    def url(self) -> str:
        base = self.cfg.base_url.rstrip("/")
        if not base.endswith("/v1"):
            base += "/v1"
        return base + "/chat/completions"

    def _check_url(self) -> None:
        """Refuse a base URL that cannot be requested (httpx would raise from
        inside the request tasks, or retry a missing scheme as a connection error)."""
        httpx = attempt_import("httpx", "synth")
        try:
            u = httpx.URL(self.url)
        except httpx.InvalidURL as exc:
            raise InvalidQueryError(f"base URL {self.cfg.base_url!r} does not parse: "
                                    f"{exc}") from None
        if u.scheme not in ("http", "https") or not u.host:
            raise InvalidQueryError(f"base URL {self.cfg.base_url!r} must be an http:// or "
                                    "https:// URL with a host, e.g. http://127.0.0.1:8000/v1")

    #: connections per httpx pool: httpcore scans every connection of a pool for each
    #: request it queues, so 32 connections in one pool cost ~4x the CPU of 4 pools of 8
    POOL_SIZE = 8
    #: at most this many pools (a huge concurrency gets bigger pools, not more of them)
    MAX_POOLS = 64

    async def __aenter__(self):
        httpx = attempt_import("httpx", "synth")
        k = min(-(-self.cfg.concurrency // self.POOL_SIZE), self.MAX_POOLS)
        per = -(-self.cfg.concurrency // k)
        limits = httpx.Limits(max_connections=per, max_keepalive_connections=per)
        headers = self._headers()
        # one TLS context for all pools (loading the CA file costs ~40 ms each); plain
        # http needs none (redirects are not followed, so no request can turn into https)
        https = httpx.URL(self.url).scheme == "https"
        verify = httpx.create_ssl_context() if https else False
        self._clients = [httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits,
                                           headers=headers, verify=verify) for _ in range(k)]
        self._load = [0] * k
        return self

    async def __aexit__(self, *exc):
        for c in self._clients:
            await c.aclose()

    def _backoff(self, attempt: int) -> float:
        cap = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * (2 ** attempt))
        return self._rng.uniform(0, cap)

    async def _post(self, content: bytes):
        j = min(range(len(self._load)), key=self._load.__getitem__)  # the least busy pool
        self._load[j] += 1
        try:
            if _attempt_timeout is not None:
                async with _attempt_timeout(self.cfg.timeout_s):
                    return await self._clients[j].post(self.url, content=content)
            return await asyncio.wait_for(self._clients[j].post(self.url, content=content),
                                          self.cfg.timeout_s)  # pragma: no cover
        finally:
            self._load[j] -= 1

    def _fail(self, text, **kw) -> Completion:
        return Completion(ok=False, error=self.redact(text)[:ERROR_CHARS], **kw)

    async def complete(self, prompt: str, *, index: int = 0) -> Completion:
        """One chat completion for ``prompt`` (``index``: see :meth:`ClientConfig.chat_body`);
        never raises for what the server sends."""
        httpx = attempt_import("httpx", "synth")
        t0 = time.perf_counter()
        try:  # encoded once here: a prompt with unpaired surrogates is this row's fault
            content = json.dumps(self.cfg.chat_body(prompt, index),
                                 ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return self._fail(f"the prompt is not valid Unicode (an unpaired surrogate at "
                              f"character {exc.start} of the request)", attempts=0)
        last = "no attempt"
        unreachable = True
        token = object()
        async with self._sem:
            self.in_flight += 1
            try:
                for attempt in range(self.cfg.retries + 1):
                    wait = None
                    try:
                        r = await self._post(content)
                    except (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError):
                        last = f"timeout after {self.cfg.timeout_s}s"
                        unreachable = False
                    except httpx.ConnectError as exc:
                        last = f"connection error: {exc or 'cannot connect'}"
                    except httpx.RemoteProtocolError:
                        last = "incomplete response: the server closed the connection mid-reply"
                        unreachable = False
                    except httpx.TransportError as exc:
                        last = f"connection error ({_plain(exc)})"
                        unreachable = False
                    else:
                        unreachable = False
                        self.reached = True
                        if r.status_code == 200:
                            return self._parse(r, t0, attempt + 1)
                        # redacted whole (up to 8 KB), then cut: a cut first could keep a key's start
                        last = f"HTTP {r.status_code}: " + r.content[:8192].decode("utf-8",
                                                                                   "replace")
                        if r.status_code not in self.RETRY_STATUS:
                            break
                        wait = _retry_after(r.headers.get("retry-after"),
                                            self.cfg.max_retry_wait_s)
                    if attempt < self.cfg.retries:
                        pause = wait if wait is not None else self._backoff(attempt)
                        why = self.redact(last)[:60]
                        self.waiting[token] = (time.monotonic() + pause, why)
                        try:
                            await asyncio.sleep(pause)
                        finally:
                            self.waiting.pop(token, None)
            finally:
                self.in_flight -= 1
        return self._fail(last, latency_s=time.perf_counter() - t0, attempts=attempt + 1,
                          unreachable=unreachable)

    def _parse(self, r, t0, attempts) -> Completion:
        latency = time.perf_counter() - t0
        kw = dict(latency_s=latency, attempts=attempts)
        raw = r.content
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self._fail(f"response body is not valid UTF-8 (byte {exc.start}): "
                              f"{raw[:120].decode('utf-8', 'replace')}", **kw)
        try:
            doc = json.loads(body)
        except ValueError:
            return self._fail(f"response body is not JSON: {body[:8192]}", **kw)
        try:
            choice = doc["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return self._fail("response body has no choices[0].message.content: "
                              f"{body[:8192]}", **kw)
        if not isinstance(text, str):
            return self._fail(f"response content is not a text: {body[:8192]}", **kw)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return self._fail(f"response text is not valid Unicode (an unpaired surrogate at "
                              f"character {exc.start})", **kw)
        text = self.redact(text, headers=False)
        fin = _clean(choice.get("finish_reason"), str) if isinstance(choice, dict) else None
        extra = dict(finish_reason=fin, usage=_clean(doc.get("usage"), dict),
                     model=_clean(doc.get("model"), str), **kw)
        why = self.cfg.check_reply(text)
        if why:
            return Completion(ok=False, text=text, error=self.redact(why)[:ERROR_CHARS], **extra)
        return Completion(ok=True, text=text, **extra)


def _plain(exc) -> str:
    """A transport error in words, without Python's class names."""
    name = type(exc).__name__
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower().replace(" error", "")
    return words or "transport failure"
