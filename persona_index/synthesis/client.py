"""An OpenAI-compatible chat-completions client (vLLM, llama.cpp's server,
Ollama, hosted APIs) with a concurrency limit, timeouts and retries.

Retries: on 429 and 5xx responses, timeouts and connection errors, with
exponential backoff and full jitter, honouring ``Retry-After`` (seconds or an
HTTP date) when the server sends it. A malformed body is not retried: it is
recorded as a failed row. The API key comes only from an environment
variable, goes only into the ``Authorization`` header, and is never written
to any file or log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import os
import random
import time
from dataclasses import dataclass, field

from .._lazy import attempt_import
from ..errors import InvalidQueryError


@dataclass
class Completion:
    """The outcome of one chat request: the text when ``ok``, else ``error``.

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


@dataclass
class ClientConfig:
    """Endpoint, model and sampling settings of a run, checked on construction
    (raises :class:`InvalidQueryError`); the API key is read from the
    environment variable ``api_key_env``, never stored here.

    Examples
    --------
    >>> cfg = ClientConfig("http://127.0.0.1:8000/v1", "my-model", temperature=0.2, max_tokens=64)
    >>> cfg.chat_body("Hello")
    {'model': 'my-model', 'messages': [{'role': 'user', 'content': 'Hello'}], \
'temperature': 0.2, 'max_tokens': 64}
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

    def __post_init__(self):
        # checked here, not in the request tasks, where a NaN or an unencodable
        # name would only surface as an exception per task
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise InvalidQueryError(f"temperature must be a finite number >= 0, not "
                                    f"{self.temperature!r}")
        if not self.timeout_s > 0:  # NaN fails this too
            raise InvalidQueryError(f"timeout must be a number of seconds > 0, not "
                                    f"{self.timeout_s!r}")
        for name in ("base_url", "model"):
            try:
                str(getattr(self, name)).encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidQueryError(f"{name} {getattr(self, name)!r} is not valid text "
                                        "(undecodable bytes)") from None

    def chat_body(self, prompt: str) -> dict:
        return {"model": self.model, "messages": [{"role": "user", "content": prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens, **self.extra_body}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class ChatClient:
    """Async client; use as ``async with ChatClient(cfg) as c: await c.complete(p)``.

    Construction checks the base URL and sends nothing.

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
        self._client = None

    def _headers(self) -> dict:
        h = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env)
        if key and not (key.isascii() and key.isprintable()):  # the message never shows the key
            raise InvalidQueryError(f"the API key in ${self.cfg.api_key_env} cannot be sent in a "
                                    "header: it has non-ASCII characters or line breaks")
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

    async def __aenter__(self):
        httpx = attempt_import("httpx", "synth")
        limits = httpx.Limits(max_connections=self.cfg.concurrency,
                              max_keepalive_connections=self.cfg.concurrency)
        self._client = httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits,
                                         headers=self._headers())
        return self

    async def __aexit__(self, *exc):
        await self._client.aclose()

    def _backoff(self, attempt: int) -> float:
        cap = min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * (2 ** attempt))
        return self._rng.uniform(0, cap)

    async def complete(self, prompt: str) -> Completion:
        httpx = attempt_import("httpx", "synth")
        body = self.cfg.chat_body(prompt)
        t0 = time.perf_counter()
        last = "no attempt"
        unreachable = True
        async with self._sem:
            for attempt in range(self.cfg.retries + 1):
                wait = None
                try:
                    r = await self._client.post(self.url, json=body)
                except httpx.TimeoutException:
                    last = f"timeout after {self.cfg.timeout_s}s"
                    unreachable = False
                except httpx.ConnectError as exc:
                    last = f"connection error: {exc or 'cannot connect'}"
                except httpx.TransportError as exc:
                    last = f"connection error: {type(exc).__name__}"
                    unreachable = False
                else:
                    unreachable = False
                    if r.status_code == 200:
                        return self._parse(r, t0, attempt + 1)
                    last = f"HTTP {r.status_code}: {r.text[:200]}"
                    if r.status_code not in self.RETRY_STATUS:
                        break
                    wait = _retry_after(r.headers.get("retry-after"))
                if attempt < self.cfg.retries:
                    await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        return Completion(ok=False, error=last, latency_s=time.perf_counter() - t0,
                          attempts=attempt + 1, unreachable=unreachable)

    def _parse(self, r, t0, attempts) -> Completion:
        latency = time.perf_counter() - t0
        try:
            doc = r.json()
            choice = doc["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("message.content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return Completion(ok=False, error=f"malformed response body ({type(exc).__name__}: "
                                              f"{exc}): {r.text[:200]}",
                              latency_s=latency, attempts=attempts)
        return Completion(ok=True, text=text, finish_reason=choice.get("finish_reason"),
                          usage=doc.get("usage"), model=doc.get("model"), latency_s=latency,
                          attempts=attempts)
