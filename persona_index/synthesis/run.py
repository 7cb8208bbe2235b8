"""Persona-conditioned generation runs: resumable, auditable, or offline.

One output row per persona x template, appended and flushed as soon as it is
done, so a crash loses nothing already written and a rerun skips what is
there (rows are keyed by ``custom_id = <persona id>:<template>``). Without an
endpoint, :func:`write_requests` writes the prompts as an OpenAI Batch API
jsonl instead of calling anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import InputFileError, SynthesisError
from .client import ChatClient, ClientConfig
from .templates import Template


def _unreachable(config: ClientConfig, n: int, error: str | None) -> SynthesisError:
    why = (error or "cannot connect").removeprefix("connection error: ")
    return SynthesisError(f"cannot reach the endpoint {ChatClient(config).url}: {why}; is the "
                          f"server running? ({n} request(s) not sent)")


def custom_id(persona: dict, template: Template) -> str:
    """The key of one output row: ``<persona id>:<template name>``.

    Examples
    --------
    >>> custom_id({"id": "p1", "text": "a nurse"}, Template("ask", "Ask as {persona}"))
    'p1:ask'
    """
    return f"{persona['id']}:{template.name}"


def unique_jobs(personas: Sequence[dict], templates: Sequence[Template]):
    """Every (persona, template) pair once: a repeated persona (same id) or a
    repeated template (same name) is deduplicated, keep-first, so custom_ids
    are unique (the Batch API refuses a file with repeats, and resuming by
    custom_id would skip rows). Returns (pairs, dropped personas, dropped
    templates).

    Examples
    --------
    >>> p1, p2 = {"id": "p1", "text": "a nurse"}, {"id": "p2", "text": "a baker"}
    >>> ask, poem = Template("ask", "Ask as {persona}"), Template("poem", "A poem by {persona}")
    >>> pairs, dropped_p, dropped_t = unique_jobs([p1, p1, p2], [ask, poem, ask])
    >>> [custom_id(p, t) for p, t in pairs], dropped_p, dropped_t
    (['p1:ask', 'p1:poem', 'p2:ask', 'p2:poem'], 1, 1)
    """
    seen_p, ps = set(), []
    for p in personas:
        if p["id"] not in seen_p:
            seen_p.add(p["id"])
            ps.append(p)
    seen_t, ts = set(), []
    for t in templates:
        if t.name not in seen_t:
            seen_t.add(t.name)
            ts.append(t)
    if len(ps) < len(personas) or len(ts) < len(templates):
        print(f"note: {len(personas) - len(ps)} repeated persona(s) and "
              f"{len(templates) - len(ts)} repeated template(s) left out: each persona x "
              "template pair is made once", file=sys.stderr)
    return [(p, t) for p in ps for t in ts], len(personas) - len(ps), len(templates) - len(ts)


def read_personas(path: str) -> list[dict]:
    """Personas from a jsonl (what ``sample --out`` writes): each needs ``text``
    (or ``persona``); ``id`` is derived from the text when missing.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "personas.jsonl"
    >>> _ = p.write_text('{"text": "A Nurse"}\\n{"id": "x7", "persona": "a baker"}\\n')
    >>> [(r["id"], r["text"]) for r in read_personas(str(p))]
    [('19ec70d333f07585822c', 'A Nurse'), ('x7', 'a baker')]
    """
    from ..ingest import iter_file
    from ..text import persona_id

    out = []
    for n, rec in iter_file(path, "jsonl"):
        text = rec.get("text") or rec.get("persona")
        if not isinstance(text, str) or not text.strip():
            raise InputFileError(path, n, "persona row without a 'text' (or 'persona') field")
        rec = dict(rec)
        rec.setdefault("text", text)
        rec.setdefault("id", persona_id(text))
        out.append(rec)
    if not out:
        raise InputFileError(path, None, "no personas")
    return out


def done_ids(out_path: str) -> set[str]:
    """custom_ids already written to ``out_path`` (a torn last line is ignored).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.jsonl"
    >>> done_ids(str(out))  # no file yet
    set()
    >>> _ = out.write_text('{"custom_id": "p1:ask"}\\n{"custom_id": "p2:a')  # a crash mid-line
    >>> done_ids(str(out))
    {'p1:ask'}
    """
    done = set()
    p = Path(out_path)
    if not p.exists():
        return done
    with open(p, encoding="utf-8") as fh:
        for line in fh:
            try:
                done.add(json.loads(line)["custom_id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash: that row is redone
    return done


def _repair_tail(out_path: str) -> None:
    """Cut a torn last line left by a crash, so appends start on a fresh line."""
    p = Path(out_path)
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        fh.seek(cut)
        fh.truncate()


def write_requests(personas: Sequence[dict], templates: Sequence[Template], out_path: str, *,
                   model: str, temperature: float = 0.7, max_tokens: int = 512,
                   inputs: Sequence[str] = ()) -> int:
    """Write an OpenAI Batch API request file (one request a line); nothing is called.
    Returns the number of requests written.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "requests.jsonl"
    >>> personas = [{"id": "p1", "text": "a nurse"}]
    >>> write_requests(personas, [Template("ask", "Ask as {persona}")], str(out), model="m")
    1
    >>> req = json.loads(out.read_text())
    >>> req["custom_id"], req["url"], req["body"]["messages"][0]["content"]
    ('p1:ask', '/v1/chat/completions', 'Ask as "a nurse"')
    """
    from ..outputs import output_file

    cfg = ClientConfig(base_url="", model=model, temperature=temperature, max_tokens=max_tokens)
    n = 0
    pairs, _, _ = unique_jobs(personas, templates)
    with output_file(out_path, inputs=inputs) as fh:
        for p, t in pairs:
            fh.write(json.dumps({"custom_id": custom_id(p, t), "method": "POST",
                                 "url": "/v1/chat/completions",
                                 "body": cfg.chat_body(t.render(p))}, ensure_ascii=False) + "\n")
            n += 1
    return n


@dataclass
class RunSummary:
    """What a :func:`synthesize` run did: ``planned`` pairs, of which
    ``skipped`` were already in ``out``, ``ok`` and ``failed`` were sent now.

    Examples
    --------
    >>> s = RunSummary("out.jsonl", planned=4, skipped=1, ok=2, failed=1, seconds=2.0,
    ...                completions_per_s=1.0, mean_latency_s=0.5)
    >>> s.to_dict()["planned"], s.to_dict()["ok"] + s.to_dict()["failed"] + s.skipped
    (4, 4)
    """

    out: str
    planned: int
    skipped: int
    ok: int
    failed: int
    seconds: float
    completions_per_s: float
    mean_latency_s: float | None

    def to_dict(self):
        return dict(self.__dict__)


def synthesize(personas: Sequence[dict], templates: Sequence[Template], out_path: str,
               config: ClientConfig, *, progress: bool = False) -> RunSummary:
    """Call the endpoint for every persona x template not yet in ``out_path``.

    Rows are appended as they complete, so a rerun resumes; raises
    :class:`SynthesisError` when the endpoint cannot be reached at all.

    Examples
    --------
    A rerun over an output that already holds every row sends no request:

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "out.jsonl"
    >>> _ = out.write_text('{"custom_id": "p1:ask", "status": "ok"}\\n')
    >>> personas, ask = [{"id": "p1", "text": "a nurse"}], Template("ask", "Ask as {persona}")
    >>> s = synthesize(personas, [ask], str(out), ClientConfig("http://127.0.0.1:8000/v1", "m"))
    >>> s.planned, s.skipped, s.ok, s.failed
    (1, 1, 0, 0)

    Templates are checked against the personas before anything is sent:

    >>> bad = Template("where", "{persona} in {city}")
    >>> synthesize(personas, [bad], str(out), ClientConfig("http://127.0.0.1:8000/v1", "m"))
    Traceback (most recent call last):
        ...
    persona_index.errors.InvalidQueryError: template 'where' uses unknown field(s) ['city']; \
personas have ['id', 'text']
    """
    return asyncio.run(_synthesize(personas, templates, out_path, config, progress))


async def _synthesize(personas, templates, out_path, config, progress):
    from tqdm.auto import tqdm

    for t in templates:
        t.validate(sorted({k for p in personas for k in p}))
    _repair_tail(out_path)
    done = done_ids(out_path)
    pairs, _, _ = unique_jobs(personas, templates)
    jobs = [(p, t) for p, t in pairs if custom_id(p, t) not in done]
    planned = len(pairs)
    t0 = time.perf_counter()
    ok = failed = unreached = 0
    latencies = []
    bar = tqdm(total=len(jobs), disable=not progress, file=sys.stderr, desc="synthesize",
               unit="req")
    with open(out_path, "a", encoding="utf-8") as fh:
        async with ChatClient(config) as client:
            async def one(p, t):
                prompt = t.render(p)
                c = await client.complete(prompt)
                return p, t, prompt, c

            pending = [asyncio.ensure_future(one(p, t)) for p, t in jobs]
            try:
                for fut in asyncio.as_completed(pending):
                    p, t, prompt, c = await fut
                    if c.unreachable:  # never sent: no row, so a rerun sends it
                        unreached += 1
                        failed += 1
                        last_error = c.error
                        bar.update(1)
                        continue
                    row = {"custom_id": custom_id(p, t), "persona_id": p["id"],
                           "persona": p["text"], "template": t.name, "licence": p.get("licence"),
                           "source": p.get("source"),
                           "prompt": prompt, "response": c.text, "model": c.model or config.model,
                           "finish_reason": c.finish_reason, "usage": c.usage,
                           "latency_s": round(c.latency_s, 4), "attempts": c.attempts,
                           "status": "ok" if c.ok else "failed", "error": c.error}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
                    if c.ok:
                        ok += 1
                        latencies.append(c.latency_s)
                    else:
                        failed += 1
                    bar.update(1)
            finally:  # after an error, stop the other requests and collect their outcome
                for f in pending:
                    f.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
    bar.close()
    if unreached and unreached == failed and not ok:
        raise _unreachable(config, unreached, last_error)
    secs = time.perf_counter() - t0
    return RunSummary(out=out_path, planned=planned, skipped=planned - len(jobs), ok=ok,
                      failed=failed, seconds=round(secs, 3),
                      completions_per_s=round(ok / secs, 1) if secs > 0 else 0.0,
                      mean_latency_s=round(sum(latencies) / len(latencies), 4) if latencies else None)


def complete_all(prompts: Sequence[str], config: ClientConfig):
    """Complete a list of prompts concurrently (no output file); returns Completions.

    Examples
    --------
    >>> complete_all([], ClientConfig("http://127.0.0.1:8000/v1", "m"))  # nothing to send
    []
    >>> complete_all(["Hi"], ClientConfig("localhost:8000", "m"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InvalidQueryError: base URL 'localhost:8000' must be an http:// or ...
    """

    async def go():
        async with ChatClient(config) as client:
            return await asyncio.gather(*(client.complete(p) for p in prompts))

    comps = asyncio.run(go())
    if comps and all(c.unreachable for c in comps):
        raise _unreachable(config, len(comps), comps[0].error)
    return comps
