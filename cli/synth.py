"""Synthesis commands: synthesize, extract, expand, outputs-report."""

from __future__ import annotations

import json

import click

from persona_index.outputs import output_file
from persona_index_cli.base import Command, check_outputs, open_index
from persona_index_cli.output import (Output, emit, format_table, key_value_lines,
                                      output_options, renamed_option)
from persona_index_cli.oversample import oversample_options


def client_options(fn):
    for opt in reversed([
        click.option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1. "
                                        "Without it, nothing is called: requests are written."),
        click.option("--llm-model", default="gpt-4o-mini", show_default=True,
                     help="LLM name sent to the endpoint."),
        renamed_option("--model", "--llm-model", "llm_model"),
        click.option("--temperature", type=float, default=0.7, show_default=True),
        click.option("--max-tokens", type=click.IntRange(1), default=512, show_default=True),
        click.option("--concurrency", type=click.IntRange(1), default=8, show_default=True,
                     help="Requests in flight at once."),
        click.option("--timeout", type=float, default=60.0, show_default=True,
                     help="Seconds per request."),
        click.option("--retries", type=click.IntRange(0), default=5, show_default=True),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
                     help="Environment variable holding the API key (never written anywhere)."),
    ]):
        fn = opt(fn)
    return fn


def _sessionsonas(idx, session: str) -> list[dict]:
    """The stored rows of every persona a sampling session drew."""
    from persona_index.sessions import Sessions

    ids = Sessions(idx).drawn([session])
    if not ids:
        raise click.ClickException(f"session {session!r} has drawn nothing")
    return idx.get(ids)


def _client_config(base_url, llm_model, temperature, max_tokens, concurrency, timeout, retries,
                   api_key_env, **request):
    from persona_index.synthesis.client import ClientConfig

    return ClientConfig(base_url=base_url, model=llm_model, temperature=temperature,
                        max_tokens=max_tokens, concurrency=concurrency, timeout_s=timeout,
                        retries=retries, api_key_env=api_key_env, **request)


def _text_or_file(ctx, param, value):
    """TEXT, or the contents of FILE for @FILE."""
    if value is None or not value.startswith("@"):
        return value
    path = value[1:]
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path!r} is not UTF-8 text", param=param) from None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path!r}: {exc.strerror or exc}",
                                 param=param) from None


def _response_format(ctx, param, value):
    """json, or json-schema:FILE (the schema, read here)."""
    if value is None or value == "json":
        return value
    if not value.startswith("json-schema:") or len(value) == len("json-schema:"):
        raise click.BadParameter(f"{value!r}: give json or json-schema:FILE", param=param)
    path = value[len("json-schema:"):]
    try:
        with open(path, encoding="utf-8") as fh:
            schema = json.loads(fh.read(), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise click.BadParameter(f"cannot read a JSON schema from {path!r}: {why}",
                                 param=param) from None
    if not isinstance(schema, dict):
        raise click.BadParameter(f"{path!r} holds no JSON object (a schema)", param=param)
    return schema


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _json_object(ctx, param, value):
    if value is None:
        return {}
    try:
        doc = json.loads(value, parse_constant=_no_constant)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param=param) from None
    if not isinstance(doc, dict):
        raise click.BadParameter("must be a JSON object, e.g. '{\"min_p\": 0.05}'", param=param)
    return doc


def synth_options(fn):
    """synthesize's request and run options (see docs/synthesis.md)."""
    for opt in reversed([
        click.option("--system", callback=_text_or_file, metavar="TEXT|@FILE",
                     help="A system prompt sent before each persona prompt (@FILE reads it)."),
        click.option("--response-format", "response_format", callback=_response_format,
                     metavar="json|json-schema:FILE",
                     help="JSON mode, or a JSON schema: replies are checked, and a reply that "
                          "is not JSON or misses the schema is a failed row."),
        click.option("--seed", "llm_seed", type=click.IntRange(0, 2**63 - 1),
                     help="Sampling seed sent with each request (request i of --n gets "
                          "SEED+i)."),
        click.option("--top-p", type=click.FloatRange(0, 1, min_open=True)),
        click.option("--n", "n", type=click.IntRange(1, 10_000), default=1, show_default=True,
                     help="Completions per persona x template, as N separate requests; "
                          "custom_id PID:TEMPLATE, then PID:TEMPLATE:1 ..."),
        click.option("--extra-body", callback=_json_object, metavar="JSON",
                     help="More request body fields, a JSON object, e.g. '{\"min_p\": 0.05}'."),
        click.option("--missing", type=click.Choice(["error", "skip", "fill"]), default="error",
                     show_default=True,
                     help="A persona without a value for a template slot or --attr: refuse "
                          "the run, leave the pair out, or write 'unspecified'."),
        click.option("--max-retry-wait", type=click.FloatRange(0), default=60.0,
                     show_default=True,
                     help="Honour a server's Retry-After up to this many seconds; longer ones "
                          "get the usual backoff."),
        click.option("--deadline", type=click.FloatRange(0, min_open=True),
                     help="Stop after this many seconds: nothing more is sent, requests in "
                          "flight get no row (a rerun sends them)."),
        click.option("--max-runs", type=click.IntRange(1), default=3, show_default=True,
                     help="A failed row is sent again by later runs, up to N runs in all."),
        click.option("--skip-failed", is_flag=True,
                     help="Do not send failed rows again (keep them failed)."),
    ]):
        fn = opt(fn)
    return fn


@click.command(cls=Command)
@click.option("--template", "templates", multiple=True, required=True,
              help="A preset (instruction, math, knowledge, npc, tool, reasoning) or a template "
                   "file (str.format, {persona} and attribute slots). Repeatable.")
@click.option("--personas", "personas_file", type=click.Path(exists=True, dir_okay=False),
              help="jsonl of personas (what `sample --out` writes).")
@click.option("--session", help="Use every persona a sampling session drew.")
@click.option("--granularity", type=click.Choice(["text", "text+attrs"]), default="text",
              show_default=True, help="Persona text alone, or text plus --attr attributes.")
@click.option("--attr", "attrs", multiple=True, help="Attribute(s) for text+attrs.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output jsonl (results, or Batch API requests with --requests-only); "
                   "- (or a FIFO, /dev/stdout) streams the rows in input order.")
@click.option("--requests-only", is_flag=True,
              help="Write an OpenAI Batch API request file; call nothing.")
@click.option("--progress/--no-progress", default=True)
@client_options
@synth_options
@oversample_options
@output_options
@click.pass_context
def synthesize(ctx, templates, personas_file, session, granularity, attrs, out, requests_only,
               progress, base_url, llm_model, temperature, max_tokens, concurrency, timeout,
               retries, api_key_env, system, response_format, llm_seed, top_p, n, extra_body,
               missing, max_retry_wait, deadline, max_runs, skip_failed, control, oversample,
               curated_out, output):
    """Persona-conditioned generation: prompts -> endpoint -> outputs (resumable).

    A rerun sends the rows that failed again (up to --max-runs); exit 1 when
    rows remain failed or unsent at the end. --control N adds requests with
    no persona; --oversample M keeps 1/M of the rows that cover output space
    in a curated file. See docs/synthesis.md and docs/outputs.md.
    """
    from click.core import ParameterSource

    from . import oversample as ov

    from persona_index.outputs import check_not_input
    from persona_index.synthesis import run as srun
    from persona_index.synthesis.templates import load_template

    if bool(personas_file) == bool(session):
        raise click.UsageError("give exactly one of --personas FILE or --session NAME")
    calls = bool(base_url) and not requests_only
    if out == "-" and output.json:
        raise click.UsageError("--out - writes the rows to stdout; it cannot go with --json")
    resume_asked = [f"--{o.replace('_', '-')}" for o in ("max_runs", "skip_failed")
                    if ctx.get_parameter_source(o) is ParameterSource.COMMANDLINE]
    if calls and resume_asked and srun.is_stream(out):
        raise click.UsageError(f"{' and '.join(resume_asked)}: resuming needs --out to be a "
                               f"regular file; {out!r} is a stream (nothing is read back)")
    ov.check_usage(ctx, out, oversample, curated_out, calls, personas_file)
    cfg = _client_config(base_url or "", llm_model, temperature, max_tokens, concurrency, timeout,
                         retries, api_key_env, system=system, response_format=response_format,
                         seed=llm_seed, top_p=top_p, extra_body=extra_body,
                         max_retry_wait_s=max_retry_wait)
    if calls:  # the URL is checked before any file or progress bar exists
        from persona_index.synthesis.client import ChatClient

        ChatClient(cfg)
    check_not_input(out, [personas_file])
    check_outputs(ctx, {"--out": out}, {"--personas": personas_file})
    if personas_file:
        personas = srun.read_personas(personas_file)
    else:
        personas = _sessionsonas(open_index(ctx), session)
    tmpls = [load_template(t, granularity=granularity, attributes=attrs) for t in templates]
    if not calls:
        if not requests_only:
            click.echo("no --base-url given: writing Batch API requests instead of calling "
                       "an endpoint", err=True)
        plan = srun.plan_jobs(personas, tmpls, n=n, missing=missing, control=control)
        k = srun.write_requests(personas, tmpls, out, config=cfg, plan=plan,
                                inputs=[personas_file])
        doc = {"requests": k, "out": out, "format": "openai-batch-jsonl", "n": n,
               "missing": plan.missing, "request": cfg.request_options()}
        ov.requests_note(doc, plan, oversample)
        # the rows on stdout: the summary goes to stderr, as JSON
        emit(Output(json=True) if srun.is_stdout(out) else output, doc, err=srun.is_stdout(out))
        return
    s = srun.synthesize(personas, tmpls, out, cfg, progress=progress, n=n, missing=missing,
                        skip_failed=skip_failed, max_runs=max_runs, deadline_s=deadline,
                        control=control, oversample=oversample,
                        embedder=ov.embedder(ctx, oversample), curated_out=curated_out)
    d = s.to_dict()
    # the rows on stdout: the summary goes to stderr, as JSON; a readable
    # summary leaves out what is unset (nothing printed as None) and says
    # what the curation kept in one line
    emit(Output(json=True) if srun.is_stdout(out) else output, d, err=srun.is_stdout(out),
         readable=lambda: key_value_lines({k: v for k, v in d.items()
                                           if v is not None and k != "curation"})
         + ([ov.curation_line(s)] if ov.curation_line(s) else []))
    if not s.complete:  # the summary is printed; one line says what is left, exit 1
        hint = ("--skip-failed kept the failed ones" if skip_failed and not s.unsent else
                f"rerun the same command to send them again (up to --max-runs {max_runs} runs "
                "per row)")
        click.echo(f"Error: {s.remaining_failed + s.unsent} of {s.planned} request(s) did not "
                   f"end ok ({s.remaining_failed} failed: the error field in {out} says why; "
                   f"{s.unsent} not sent); {hint}", err=True)
    if ov.shortfall_line(s):
        click.echo(ov.shortfall_line(s), err=True)
    if not s.complete or s.shortfall:
        ctx.exit(1)


@click.command(cls=Command)
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False))
@click.option("--action", default="read", show_default=True,
              help="Who is likely to ACTION this text: read, write, like, dislike, ...")
@click.option("--licence", help="Licence tag for the new personas.")
@client_options
@output_options
@click.pass_context
def extract(ctx, corpus, action, licence, base_url, llm_model, temperature, max_tokens,
            concurrency, timeout, retries, api_key_env, output):
    """Text-to-persona: personas from a corpus (txt or jsonl), ingested with dedup."""
    from persona_index.synthesis.personas import read_corpus, text_to_persona

    if not base_url:
        raise click.UsageError("extract needs --base-url")
    cfg = _client_config(base_url, llm_model, temperature, max_tokens, concurrency, timeout,
                         retries, api_key_env)
    emit(output, text_to_persona(open_index(ctx, must_exist=False), read_corpus(corpus), cfg,
                                 action=action, licence=licence))


@click.command(cls=Command)
@click.option("--personas", "personas_file", type=click.Path(exists=True, dir_okay=False),
              help="Seed personas (jsonl).")
@click.option("--session", help="Seed with a sampling session's personas.")
@click.option("--rounds", type=click.IntRange(1), default=6, show_default=True)
@click.option("--licence", help="Licence tag for the new personas.")
@client_options
@output_options
@click.pass_context
def expand(ctx, personas_file, session, rounds, licence, base_url, llm_model, temperature,
           max_tokens, concurrency, timeout, retries, api_key_env, output):
    """Persona-to-persona expansion: N rounds of 'who is close to this persona'."""
    from persona_index.synthesis.personas import expand as do_expand
    from persona_index.synthesis.run import read_personas

    if not base_url:
        raise click.UsageError("expand needs --base-url")
    if bool(personas_file) == bool(session):
        raise click.UsageError("give exactly one of --personas FILE or --session NAME")
    idx = open_index(ctx, must_exist=False)  # expand writes no file: nothing to check against
    if personas_file:
        seeds = read_personas(personas_file)
    else:
        seeds = _sessionsonas(idx, session)
    cfg = _client_config(base_url, llm_model, temperature, max_tokens, concurrency, timeout,
                         retries, api_key_env)
    emit(output, do_expand(idx, seeds, cfg, rounds=rounds, licence=licence))


@click.command("outputs-report", cls=Command)
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False))
@click.option("--threshold", type=float, default=0.2, show_default=True,
              help="Keep outputs at least this similar to their persona.")
@click.option("--kept", type=click.Path(dir_okay=False), help="Write the kept rows here.")
@click.option("--by", help="Audit by this row field: per stratum count, coherence, output Vendi "
                           "against random subsets, over-represented words (log-odds z).")
@output_options
@click.pass_context
def outputs_report(ctx, outputs, threshold, kept, by, output):
    """Coherence filter and diversity report of a synthesize output file."""
    from persona_index.embed import get_embedder
    from persona_index.synthesis.report import output_report

    from persona_index.ingest import iter_file

    check_outputs(ctx, {"--kept": kept}, {"OUTPUTS": outputs})
    rows = [rec for _, rec in iter_file(outputs, "jsonl")]  # bad lines: file:line, exit 1
    rep, keep = output_report(rows, get_embedder(ctx.obj["model"]), threshold=threshold, by=by)
    if kept:
        with output_file(kept, inputs=[outputs]) as fh:
            for r in keep:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    def readable():
        from persona_index_cli.curate import audit_rows

        lines = key_value_lines({k: v for k, v in rep.items()
                                 if k not in ("audit", "control_comparison")})
        if by:
            lines += [f"\naudit by {by}:", format_table(audit_rows(rep["audit"]))]
        if "control_comparison" in rep:  # the one-line answer, last
            lines.append(rep["control_comparison"]["verdict"])
        return lines

    emit(output, rep, readable=readable)
