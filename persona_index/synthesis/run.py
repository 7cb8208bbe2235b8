"""Persona-conditioned generation runs: resumable, auditable, or offline.

One output row per persona x template (x ``n``), keyed by ``custom_id``:
``<persona id>:<template>`` for the first of ``n`` requests and
``<persona id>:<template>:<i>`` for the others. Without an endpoint,
:func:`write_requests` writes the prompts as an OpenAI Batch API jsonl
instead of calling anything.

Output files and order
----------------------
* A regular file (or a new path) is appended to, one row flushed as soon as
  it completes (completion order), so a crash loses nothing already written.
  A rerun reads it back: rows whose last row is ``ok`` are skipped, failed
  ones are sent again (up to ``max_runs`` runs in all; ``skip_failed``
  keeps them as they are), and the new row is appended. The last row per
  ``custom_id`` wins for every reader (:func:`last_rows`).
* A stream (``-`` for standard output, ``/dev/stdout``, a FIFO, any other
  non-regular file) receives rows in input order (persona order, then
  template order, then the i of ``n``), each as soon as it and every row
  before it are done. Nothing is read back from a stream, so a run to a
  stream cannot resume: resuming needs a regular file.

A request that never reached the endpoint, or that was still in flight
when the ``deadline_s`` ran out, writes no row: the next run sends it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputFileError, InvalidQueryError, SynthesisError, warn
from .client import ChatClient, ClientConfig
from .control import control_jobs, is_control
from .rows import (done_ids, is_stdout, is_stream, last_rows, repair_tail,  # noqa: F401
                   row_states)
from .templates import Template

#: what to do with a persona that lacks a field its template (or ``attributes``) names
MISSING_RULES = ("error", "skip", "fill")
#: default bound on the runs that may send one row
MAX_RUNS = 3


def _unreachable(config: ClientConfig, n: int, error: str | None) -> SynthesisError:
    why = (error or "cannot connect").removeprefix("connection error: ")
    return SynthesisError(f"cannot reach the endpoint {ChatClient(config).url}: {why}; is the "
                          f"server running? ({n} request(s) not sent)")


def custom_id(persona: dict, template: Template, index: int = 0) -> str:
    """The key of one output row: ``<persona id>:<template name>``, and
    ``:<index>`` after it for the second and later of ``n`` requests (so
    files written before ``n`` existed still resume).

    Examples
    --------
    >>> t = Template("ask", "Ask as {persona}")
    >>> custom_id({"id": "p1", "text": "a nurse"}, t), custom_id({"id": "p1"}, t, 2)
    ('p1:ask', 'p1:ask:2')
    """
    base = f"{persona['id']}:{template.name}"
    return base if index == 0 else f"{base}:{index}"


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
        warn(f"{len(personas) - len(ps)} repeated persona(s) and "
             f"{len(templates) - len(ts)} repeated template(s) left out: each persona x "
             "template pair is made once")
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


@dataclass
class Plan:
    """The requests of a run: ``jobs`` as (persona, template, index,
    custom_id), what the missing-attribute rule did (``missing``), and how
    many of the jobs (the last ones) are control requests (``control``)."""

    jobs: list
    missing: dict
    control: int = 0


def plan_jobs(personas: Sequence[dict], templates: Sequence[Template], *, n: int = 1,
              missing: str = "error", control: int = 0) -> Plan:
    """Every request of a run, checked before anything is sent or written.

    A persona *lacks* a field when a template slot (or, with granularity
    ``text+attrs``, one of ``attributes``) names it and the persona's value
    is absent or null. ``missing`` says what happens then, alike for
    templates and attributes: ``"error"`` (the default) raises
    :class:`InvalidQueryError` naming the first such persona and field,
    ``"skip"`` leaves the pair out, ``"fill"`` writes ``unspecified``. A
    field that no persona has at all is an error whatever the rule (a typo).
    ``control`` adds that many control requests per template after the
    persona ones (:mod:`persona_index.synthesis.control`).

    Examples
    --------
    >>> ps = [{"id": "p1", "text": "a nurse", "city": "Lyon"}, {"id": "p2", "text": "a baker"}]
    >>> t = Template("where", "{persona} in {city}")
    >>> plan = plan_jobs(ps, [t], n=2, missing="skip")
    >>> [j[3] for j in plan.jobs], plan.missing
    (['p1:where', 'p1:where:1'], {'rule': 'skip', 'pairs': 1, 'fields': {'city': 1}})
    >>> plan_jobs(ps, [t])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InvalidQueryError: 1 persona x template pair(s) lack a value: persona 'p2' has no 'city' (template 'where'); ...
    """
    if missing not in MISSING_RULES:
        raise InvalidQueryError(f"missing must be one of {', '.join(MISSING_RULES)}, "
                                f"not {missing!r}")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidQueryError(f"n must be an integer >= 1, not {n!r}")
    available = sorted({k for p in personas for k in p})
    for t in templates:
        t.validate(available)
    pairs, _, _ = unique_jobs(personas, templates)
    jobs, fields, lacking, first = [], {}, 0, None
    for p, t in pairs:
        lack = t.missing_fields(p)
        if lack:
            lacking += 1
            for f in lack:
                fields[f] = fields.get(f, 0) + 1
            first = first or (p.get("id"), lack[0], t.name)
            if missing != "fill":
                continue
        jobs.extend((p, t, i, custom_id(p, t, i)) for i in range(n))
    if lacking and missing == "error":
        raise InvalidQueryError(
            f"{lacking} persona x template pair(s) lack a value: persona {first[0]!r} has no "
            f"{first[1]!r} (template {first[2]!r}); fields lacking: {fields}; missing='skip' "
            "leaves such pairs out, missing='fill' writes 'unspecified'")
    ctl = control_jobs(templates, control, taken={j[3] for j in jobs})
    return Plan(jobs + ctl, {"rule": missing, "pairs": lacking, "fields": fields}, len(ctl))


def write_requests(personas: Sequence[dict], templates: Sequence[Template], out_path: str, *,
                   model: str = "gpt-4o-mini", temperature: float = 0.7, max_tokens: int = 512,
                   inputs: Sequence[str] = (), config: ClientConfig | None = None, n: int = 1,
                   missing: str = "error", plan: Plan | None = None, control: int = 0) -> int:
    """Write an OpenAI Batch API request file (one request a line); nothing is called.
    Returns the number of requests written.

    ``config`` carries the request options (system prompt, response format,
    seed, top_p, extra body fields; ``model``, ``temperature`` and
    ``max_tokens`` are used without it); ``n``, ``missing`` and ``control``
    are :func:`plan_jobs`'s (or pass its ``plan``).

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
    >>> cfg = ClientConfig("", "m", system="Be brief.", seed=5)
    >>> write_requests(personas, [Template("ask", "Ask as {persona}")], str(out), config=cfg, n=2)
    2
    >>> [(json.loads(l)["custom_id"], json.loads(l)["body"]["seed"]) for l in open(out)]
    [('p1:ask', 5), ('p1:ask:1', 6)]
    """
    from ..outputs import output_file

    cfg = config or ClientConfig(base_url="", model=model, temperature=temperature,
                                 max_tokens=max_tokens)
    plan = plan or plan_jobs(personas, templates, n=n, missing=missing, control=control)
    count = 0
    with output_file(out_path, inputs=inputs) as fh:
        for p, t, i, cid in plan.jobs:
            fh.write(json.dumps({"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
                                 "body": cfg.chat_body(t.render(p), i)}, ensure_ascii=False)
                     + "\n")
            count += 1
    return count


@dataclass
class RunSummary:
    """What a :func:`synthesize` run did. Of the ``planned`` requests,
    ``skipped`` were not sent (ok already, or failed and kept: see
    ``max_runs``), ``ok`` and ``failed`` were sent now (``retried`` of them
    had failed before), ``unsent`` got no row (in flight at the deadline, or
    the endpoint unreachable); ``remaining_failed`` is how many requests
    end the run with a failed last row. ``missing`` is what the missing rule
    did, ``request`` the request options.

    Examples
    --------
    >>> s = RunSummary("out.jsonl", planned=4, skipped=1, ok=2, failed=1, seconds=2.0,
    ...                completions_per_s=1.0, mean_latency_s=0.5)
    >>> s.to_dict()["planned"], s.to_dict()["ok"] + s.to_dict()["failed"] + s.skipped
    (4, 4)
    >>> s.complete  # a row failed
    False
    """

    out: str
    planned: int
    skipped: int
    ok: int
    failed: int
    seconds: float
    completions_per_s: float
    mean_latency_s: float | None
    retried: int = 0
    unsent: int = 0
    remaining_failed: int = 0
    deadline_reached: bool = False
    order: str = "completion"
    n: int = 1
    missing: dict = field(default_factory=dict)
    request: dict = field(default_factory=dict)
    control: int = 0
    oversample: float | None = None
    curation: dict | None = None

    @property
    def complete(self) -> bool:
        """Every planned request ends the run with an ok row."""
        return not (self.remaining_failed or self.unsent or self.failed)

    @property
    def shortfall(self) -> int:
        """With ``oversample``: how many of the K rows to keep were missing."""
        return int((self.curation or {}).get("shortfall") or 0)

    def to_dict(self):
        return dict(self.__dict__)


def synthesize(personas: Sequence[dict], templates: Sequence[Template], out_path: str,
               config: ClientConfig, *, progress: bool = False, n: int = 1,
               missing: str = "error", skip_failed: bool = False, max_runs: int = MAX_RUNS,
               deadline_s: float | None = None, heartbeat_s: float | None = 10.0,
               resume: bool | None = None, control: int = 0, oversample: float | None = None,
               embedder=None, curated_out: str | None = None) -> RunSummary:
    """Call the endpoint for every persona x template (x ``n``) not yet done in ``out_path``.

    See the module docstring for files, streams, the order of rows and
    reruns. ``n`` and ``missing`` are :func:`plan_jobs`'s. A failed row is
    sent again by a rerun unless ``skip_failed``, up to ``max_runs`` runs in
    all (each row records its ``runs``; ``attempts`` counts the HTTP attempts
    within its run). ``deadline_s`` bounds the whole run: then nothing more
    is sent and requests still in flight are dropped without a row.
    ``heartbeat_s``: when no row was written for that long, one line on
    stderr says what the run waits for (None: never). ``resume=True``
    refuses a stream (nothing can be read back from it).

    ``control=N`` adds N control requests per template (the template with a
    neutral persona line: :mod:`persona_index.synthesis.control`).
    ``oversample=M`` then keeps K = floor(persona requests / M) of the
    persona rows with :func:`persona_index.curate.curate` (``embedder``:
    default the MiniLM) and writes them to ``curated_out`` (default
    ``OUT.curated.jsonl``) with a manifest, after every run
    (:mod:`persona_index.synthesis.oversample`); the summary's ``curation``
    says what it kept and any ``shortfall``. It needs ``out`` to be a file.

    Everything is checked (templates, missing fields, the base URL) before
    any file or progress bar is created. Raises :class:`SynthesisError` when
    the endpoint cannot be reached at all.

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
    if not isinstance(max_runs, int) or isinstance(max_runs, bool) or max_runs < 1:
        raise InvalidQueryError(f"max_runs must be an integer >= 1, not {max_runs!r}")
    if deadline_s is not None and not 0 < deadline_s < math.inf:
        raise InvalidQueryError(f"deadline_s must be a number of seconds > 0, not {deadline_s!r}")
    if heartbeat_s is not None and not heartbeat_s > 0:
        raise InvalidQueryError(f"heartbeat_s must be > 0 or None, not {heartbeat_s!r}")
    plan = plan_jobs(personas, templates, n=n, missing=missing, control=control)
    client = ChatClient(config)  # checks the URL: before any file or bar exists
    if (resume or oversample is not None) and is_stream(out_path):
        raise InvalidQueryError(f"{'resuming' if resume else 'oversample'} needs a regular file: "
                                f"out {out_path!r} is a stream (standard output, a FIFO or a "
                                "device), nothing can be read back")
    if oversample is not None:
        from ..outputs import check_not_input
        from .oversample import check_oversample, curated_paths, keep_count

        oversample = check_oversample(oversample)
        if keep_count(len(plan.jobs) - plan.control, oversample) < 1:
            raise InvalidQueryError(f"oversample={oversample:g} keeps K = 0 of "
                                    f"{len(plan.jobs) - plan.control} persona request(s): give at "
                                    f"least {math.ceil(oversample)} personas")
        check_not_input(curated_paths(out_path, curated_out)[0], [out_path])
    s = asyncio.run(_Run(plan, out_path, client, progress=progress, skip_failed=skip_failed,
                         max_runs=max_runs, deadline_s=deadline_s, heartbeat_s=heartbeat_s,
                         n=n).go())
    if oversample is not None:
        from .oversample import curate_run

        s.oversample = oversample
        s.curation = curate_run(out_path, keep_count(len(plan.jobs) - plan.control, oversample),
                                templates=len({t.name for t in templates}), embedder=embedder,
                                curated_out=curated_out, m=oversample)
    return s


class _Sink:
    """Where rows go: appended to a file, or written to a stream."""

    def __init__(self, out_path: str):
        self.stream = is_stream(out_path)
        self._own = True
        if out_path == "-":
            sys.stdout.flush()
            self.fh, self._own = sys.stdout.buffer, False
        elif self.stream:
            try:  # a FIFO without a reader refuses a non-blocking open: say what we wait for
                fd = os.open(out_path, os.O_WRONLY | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                self.fh = os.fdopen(fd, "wb")
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                warn(f"synthesize: waiting for a reader to open {out_path}")
                self.fh = open(out_path, "wb")
        else:
            repair_tail(out_path)
            self.fh = open(out_path, "ab")

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.fh.flush()

    def close(self) -> None:
        if self._own:
            self.fh.close()


class _Run:
    def __init__(self, plan, out_path, client, *, progress, skip_failed, max_runs, deadline_s,
                 heartbeat_s, n):
        self.plan, self.out, self.client, self.cfg = plan, out_path, client, client.cfg
        self.progress, self.deadline_s, self.heartbeat_s, self.n = (progress, deadline_s,
                                                                    heartbeat_s, n)
        self.skip_failed, self.max_runs = skip_failed, max_runs
        self.ok = self.failed = self.written = self.unreached = 0
        self.latencies: list = []
        self.last_error = None
        self.last_progress = time.monotonic()
        self.bar = None

    def _todo(self, prev: dict):
        todo, skipped, kept_failed, retried = [], 0, 0, 0
        for job in self.plan.jobs:
            st = prev.get(job[3])
            if st is None:
                todo.append((job, 1, False))
            elif st[0] == "ok":
                skipped += 1
            elif self.skip_failed or st[1] >= self.max_runs:
                skipped += 1
                kept_failed += 1
            else:
                todo.append((job, st[1] + 1, True))
                retried += 1
        return todo, skipped, kept_failed, retried

    def _row(self, job, runs, prompt, c) -> bytes:
        p, t, i, cid = job
        ctl = is_control(p)
        row = {"custom_id": cid, "persona_id": p["id"], "persona": None if ctl else p["text"],
               "template": t.name,
               "licence": p.get("licence"), "source": p.get("source"), "prompt": prompt,
               "response": c.text, "model": c.model or self.cfg.model,
               "finish_reason": c.finish_reason, "usage": c.usage,
               "latency_s": round(c.latency_s, 4), "attempts": c.attempts, "runs": runs,
               "status": "ok" if c.ok else "failed", "error": c.error}
        if ctl:
            row["arm"] = "control"
        try:
            return (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        except UnicodeEncodeError:  # unpaired surrogates in the persona itself: escape them
            return (json.dumps(row, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")
        except (TypeError, ValueError):  # a persona field that is not JSON: the row still lands
            row = {k: (v if isinstance(v, (str, int, float, type(None))) else str(v))
                   for k, v in row.items()}
            row = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                   for k, v in row.items()}
            return (json.dumps(row, ensure_ascii=True) + "\n").encode("ascii")

    def _say(self, msg: str) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr, flush=True)

    async def _heartbeat(self, total: int):
        while True:
            await asyncio.sleep(self.heartbeat_s)
            now = time.monotonic()
            if now - self.last_progress < self.heartbeat_s:
                continue
            msg = (f"synthesize: {self.written}/{total} row(s) written, "
                   f"{self.client.in_flight} request(s) in flight")
            waiting = list(self.client.waiting.values())
            if waiting:
                until, why = max(waiting, key=lambda w: w[0])
                msg += (f", {len(waiting)} of them waiting to retry (the longest for "
                        f"{max(0.0, until - now):.0f} s more, after: {why})")
            if self.deadline_s is not None:
                msg += f"; deadline in {max(0.0, self.t_end - now):.0f} s"
            self._say(msg)

    async def go(self) -> RunSummary:
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        self.t_end = time.monotonic() + (self.deadline_s or 0)
        prev = {} if is_stream(self.out) else row_states(self.out)
        self.todo, skipped, kept_failed, retried = self._todo(prev)
        self.sink = _Sink(self.out)
        self.bar = tqdm(total=len(self.todo), disable=not self.progress, file=sys.stderr,
                        desc="synthesize", unit="req")
        self.ordered = self.sink.stream
        self.window = max(4 * self.cfg.concurrency, 64)
        self.next, self.results, self.cond = 0, {}, asyncio.Condition()
        self.it = iter(range(len(self.todo)))
        self.sent = [False] * len(self.todo)
        deadline_reached = await self._run_workers()
        if self.unreached and not self.client.reached:
            raise _unreachable(self.cfg, len(self.todo), self.last_error)
        unsent = sum(1 for s in self.sent if not s)
        unsent_prev_failed = sum(1 for k, s in enumerate(self.sent) if not s and self.todo[k][2])
        secs = time.perf_counter() - t0
        if deadline_reached:
            self._say(f"synthesize: the deadline of {self.deadline_s:g} s ran out; {unsent} "
                      "request(s) not sent or not finished (no row: a rerun sends them)")
        return RunSummary(
            out=self.out, planned=len(self.plan.jobs), skipped=skipped, ok=self.ok,
            failed=self.failed, seconds=round(secs, 3),
            completions_per_s=round(self.ok / secs, 1) if secs > 0 else 0.0,
            mean_latency_s=(round(sum(self.latencies) / len(self.latencies), 4)
                            if self.latencies else None),
            retried=retried, unsent=unsent,
            remaining_failed=kept_failed + self.failed + unsent_prev_failed,
            deadline_reached=deadline_reached, order="input" if self.ordered else "completion",
            n=self.n, missing=self.plan.missing, request=self.cfg.request_options(),
            control=self.plan.control)

    def _put(self, k, data) -> None:
        """Row k is done (``data`` None: no row): to the file now, or to a
        stream once every row before it is done."""
        if not self.ordered:
            if data is not None:
                self.sink.write(data)
            return
        self.results[k] = data
        while self.next in self.results:
            d = self.results.pop(self.next)
            if d is not None:
                self.sink.write(d)
            self.next += 1

    async def _worker(self):
        for k in self.it:
            if self.ordered:
                async with self.cond:
                    await self.cond.wait_for(lambda: k < self.next + self.window)
            job, runs, _ = self.todo[k]
            p, t, i, cid = job
            prompt = t.render(p)
            c = await self.client.complete(prompt, index=i)
            self.last_progress = time.monotonic()
            if c.unreachable:  # never sent: no row, so a rerun sends it
                self.unreached += 1
                self.last_error = c.error
                if not self.client.reached:  # the endpoint has never answered: stop now
                    raise _Unreachable()
                self._put(k, None)
            else:
                self.sent[k] = True
                self._put(k, self._row(job, runs, prompt, c))
                self.written += 1
                if c.ok:
                    self.ok += 1
                    self.latencies.append(c.latency_s)
                else:
                    self.failed += 1
            self.bar.update(1)
            if self.ordered:
                async with self.cond:
                    self.cond.notify_all()

    async def _run_workers(self) -> bool:
        """Run the requests; returns whether the deadline cut the run short."""
        deadline_reached = False
        async with self.client:
            tasks = [asyncio.ensure_future(self._worker())
                     for _ in range(min(self.cfg.concurrency, len(self.todo)))]
            beat = (asyncio.ensure_future(self._heartbeat(len(self.todo)))
                    if self.heartbeat_s and tasks else None)
            try:
                if tasks:
                    done, pending = await asyncio.wait(tasks, timeout=self.deadline_s,
                                                       return_when=asyncio.FIRST_EXCEPTION)
                    for task in done:
                        if task.exception() is not None:
                            raise task.exception()
                    deadline_reached = bool(pending)
            except _Unreachable:
                pass
            finally:  # stop the other requests (and the heartbeat) and collect their outcome
                for task in tasks + ([beat] if beat else []):
                    task.cancel()
                await asyncio.gather(*tasks, *([beat] if beat else []), return_exceptions=True)
                if self.ordered:  # rows done behind one cut off by the deadline still go out
                    for k in sorted(self.results):
                        if self.results[k] is not None:
                            self.sink.write(self.results[k])
                self.sink.close()
                self.bar.close()
        return deadline_reached


class _Unreachable(Exception):
    """The endpoint never answered: the run stops at the first request that gave up."""


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
