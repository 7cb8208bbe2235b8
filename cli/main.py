"""The persona-index command line: parse, call the library, format.

Every command takes ``--json`` and then prints exactly one JSON document on
stdout; progress and warnings go to stderr. Exit codes: 0 success, 1 a data
error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import functools
import json
import math

import click
import numpy as np

from .output import default_columns, draw_plot, plot_option, where_columns
from persona_index.outputs import output_file
from persona_index_cli.messages import as_flags, library_warnings
from persona_index.errors import (InvalidFilterError, ManifestError, OutputPathError,
                                  PersonaIndexError,
                                  StrategyParameterError)
from persona_index.samplers.registry import DEFAULT_STRATEGY, STRATEGIES as _SPECS
from persona_index.samplers.registry import DEVICES, strategy_names, validate_params


def strict_json(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON null), so
    what ``--json`` prints is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.floating):
        return strict_json(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


class _Command(click.Command):
    """A command whose usage errors show its own usage (not the group's), and
    whose library usage errors (a bad strategy parameter or where clause)
    are click usage errors of the command (exit 2)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if exc.ctx is None or exc.ctx.command is not self:
                exc.ctx, exc.cmd = ctx, self
            raise
        except (StrategyParameterError, InvalidFilterError) as exc:
            msg = _one_line(exc)
            raise click.UsageError(as_flags(ctx.parent, msg) if ctx.parent else msg,
                                   ctx=ctx) from None


class _SubGroup(click.Group):
    command_class = _Command


class _Group(click.Group):
    """The CLI's error contract: a usage or parameter error exits 2, a data
    error exits 1, each with one line on stderr naming the option, the file
    and line or the field; with ``--json`` the same error is also printed as
    one JSON document (``{"error": ..., "kind": "usage" | "data"}``) on stdout.
    No Python exception type names or internal paths reach the user."""

    command_class = _Command
    group_class = _SubGroup

    def parse_args(self, ctx, args):
        ctx.meta["persona_index_json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            with library_warnings(ctx):
                return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.Abort:
            raise
        except click.UsageError as exc:
            self._json_error(ctx, exc.format_message(), "usage")
            raise
        except click.ClickException as exc:
            self._json_error(ctx, exc.format_message(), "data")
            raise
        except (StrategyParameterError, InvalidFilterError, OutputPathError) as exc:  # exit 2
            msg = as_flags(ctx, _one_line(exc))
            self._json_error(ctx, msg, "usage")
            raise click.UsageError(msg, ctx=ctx) from None
        except BrokenPipeError:  # `| head` closed stdout: end quietly, exit 0
            _stdout_gone()
            raise click.exceptions.Exit(0) from None
        except (PersonaIndexError, ValueError, OSError, RuntimeError) as exc:
            msg = as_flags(ctx, _one_line(exc))
            self._json_error(ctx, msg, "data")
            raise click.ClickException(msg) from None

    @staticmethod
    def _json_error(ctx, message, kind):
        if ctx.meta.get("persona_index_json"):
            click.echo(json.dumps({"error": message, "kind": kind}))


def _stdout_gone() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that the
    interpreter's last flush cannot fail again."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _one_line(exc) -> str:
    from persona_index.errors import write_cause
    from persona_index.store import clean_error

    msg = clean_error(exc)
    if not isinstance(exc, PersonaIndexError):  # a library's own error: say what kind, plainly
        kind = {"FileNotFoundError": "no such file", "PermissionError": "permission denied",
                "IsADirectoryError": "is a directory"}.get(type(exc).__name__, "error")
        cause = write_cause(exc)
        if kind == "error" and cause != msg:  # disk full, file too large, read-only ...
            kind = cause
        msg = f"{kind}: {msg}" if kind != "error" else msg
    return msg


def output_options(fn):
    """``--json``: print one JSON document on stdout instead of a table."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def renamed_option(old: str, new: str, dest: str, **attrs):
    """Keep ``old``, the previous spelling of the option ``new`` (parameter
    ``dest``), working for one release: hidden from --help, a one-line note on
    stderr when it is used, and a usage error (exit 2) when both are given
    with different values. ``attrs`` (e.g. ``type``) should match ``new``'s."""
    from click.core import ParameterSource

    old_dest = "deprecated_" + old.lstrip("-").replace("-", "_")

    def decorator(fn):
        @click.option(old, old_dest, hidden=True, default=None, **attrs)
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            value = kwargs.pop(old_dest, None)
            if value is not None:
                ctx = click.get_current_context()
                click.echo(f"note: {old} is deprecated; use {new}", err=True)
                source = ctx.get_parameter_source(dest)
                explicit = source not in (None, ParameterSource.DEFAULT,
                                          ParameterSource.DEFAULT_MAP)
                if explicit and kwargs[dest] != value:
                    raise click.UsageError(f"{old} {value!r} and {new} {kwargs[dest]!r} "
                                           f"disagree: give only {new}", ctx=ctx)
                kwargs[dest] = value
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def row_format_option(fn):
    """``--format json|jsonl|csv|table`` for commands that print rows (table
    is the default; json prints the same document as ``--json``)."""

    @click.option("--format", "row_format", type=click.Choice(["table", "json", "jsonl", "csv"]),
                  default="table", show_default=True, help="How to print the rows.")
    @functools.wraps(fn)
    def wrapper(*args, row_format="table", **kwargs):
        click.get_current_context().meta["row_format"] = row_format
        if row_format == "json":
            kwargs["as_json"] = True
        return fn(*args, **kwargs)

    from .output import column_options

    return column_options(wrapper)


def _emit_rows(rows: list, fmt: str) -> None:
    from .output import chosen_columns, select

    rows = select(rows, chosen_columns(rows, None))
    if fmt == "jsonl":
        for r in rows:
            click.echo(json.dumps(strict_json(r), ensure_ascii=False, default=str, allow_nan=False))
    else:  # csv
        import csv
        import io

        cols = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                        for k, v in r.items()})
        click.echo(buf.getvalue(), nl=False)


def emit(data, as_json: bool, *, rows: list | None = None, columns: list | None = None,
         title: str | None = None) -> None:
    """Print ``data`` as JSON, or ``rows`` (else ``data``) as a readable table,
    or as jsonl / csv under ``--format``."""
    ctx = click.get_current_context(silent=True)
    fmt = ctx.meta.get("row_format") if ctx is not None else None
    if not as_json and rows is not None and fmt in ("jsonl", "csv"):
        _emit_rows(rows, fmt)
        return
    if as_json:
        click.echo(json.dumps(strict_json(data), ensure_ascii=False, default=str, allow_nan=False))
        return
    if title:
        click.echo(title)
    if rows is not None:
        click.echo(format_table(rows, columns))
    elif isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for k, v in data.items():
            if isinstance(v, (list, dict)):
                v = json.dumps(v, ensure_ascii=False, default=str)
            click.echo(f"{k.ljust(width)}  {v}")
    else:
        click.echo(str(data))


def format_table(rows: list[dict], columns: list | None = None) -> str:
    """Rows as an aligned table (``--columns`` and ``--wide`` apply; see cli/output.py)."""
    from .output import format_rows

    return format_rows(rows, columns)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PERSONA_INDEX_DB", default="personas.lance", show_default=True,
              help="The store's directory (or $PERSONA_INDEX_DB).")
@click.option("--embed-model", default=None,
              help="Embedding model: a local sentence-transformers folder, or 'hash-384' for "
                   "tests. Default: the store's own model, or all-MiniLM-L6-v2 for a new store.")
@click.option("--single-writer", is_flag=True,
              help="Object-storage stores (s3://) cannot be locked: promise that no other "
                   "process writes or draws meanwhile, to allow writes and session draws there.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Give up (exit 1) when the store's writer or session lock is not free within "
                   "SECONDS (default: wait; a waiter says after 2 s what it waits for).")
@click.version_option(package_name="persona-index")
@renamed_option("--model", "--embed-model", "embed_model")
@click.pass_context
def cli(ctx, db, embed_model, single_writer, lock_timeout):
    """persona-index: an embedded persona index with a coverage-aware sampler.

    Build a store of personas with embeddings and attributes, query similar
    and distant personas, draw batches that cover the persona space, and
    measure coverage.
    """
    from click.core import ParameterSource

    ctx.obj = {"db": db, "model": embed_model, "single_writer": single_writer,
               "lock_timeout": lock_timeout,
               "db_given": ctx.get_parameter_source("db") is not ParameterSource.DEFAULT,
               "sources": {"db": ctx.get_parameter_source("db"),
                           "model": ctx.get_parameter_source("embed_model")}}


def open_index(ctx, must_exist: bool = True):
    from persona_index.store import PersonaIndex

    return PersonaIndex(ctx.obj["db"], ctx.obj["model"], must_exist=must_exist,
                        single_writer=ctx.obj.get("single_writer", False),
                        lock_timeout=ctx.obj.get("lock_timeout"))


def check_outputs(ctx, outputs: dict, inputs: dict | None = None) -> None:
    """Refuse (exit 2) outputs under the store or any Lance table, or equal
    to an input or to each other, before any work
    (:func:`persona_index.outputs.check_outputs`)."""
    from persona_index.outputs import check_outputs as check

    check(outputs, db=ctx.obj["db"], inputs=inputs or {})


def _summary_out(summary, as_json):
    d = summary.to_dict()
    if as_json:
        emit(d, True)
        return
    keys = ["source", "read", "added", "exact_duplicates", "near_duplicates", "rejected",
            "over_token_window", "batches", "seconds", "personas_per_s", "version_after", "fields"]
    if d.get("minhash"):  # the MinHash stage ran
        keys[4:4] = ["minhash_duplicates"]
        keys[-2:-2] = ["minhash_seconds"]
    emit({k: (round(d[k], 2) if isinstance(d[k], float) else d[k]) for k in keys}, False)
    if d.get("single_valued"):
        click.echo("not strata (one value on every row, kept as plain columns): " + ", ".join(
            f"{f} = {v!r}" for f, v in d["single_valued"].items()))
    if d["examples"]:
        click.echo("examples of dropped rows:")
        cols = ["line", "reason", "matched_id", "matched_in", "similarity", "detail"]
        if any("jaccard" in e for e in d["examples"]):
            cols[5:5] = ["jaccard"]
        click.echo(format_table(d["examples"][:6], cols))


def ingest_options(fn):
    for opt in reversed([
        click.option("--near-dup-threshold", type=click.FloatRange(0, 1, min_open=True),
                     default=0.95,
                     show_default=True,
                     help="Cosine similarity at or above which a persona is a near duplicate."),
        click.option("--no-near-dedup", is_flag=True, help="Drop exact duplicates only."),
        click.option("--batch-size", type=click.IntRange(1), default=1024, show_default=True,
                     help="Rows per embed-and-commit batch."),
        click.option("--report", type=click.Path(dir_okay=False, writable=True),
                     help="Write every dropped row with its reason to this jsonl file."),
        click.option("--progress/--no-progress", default=True, help="Progress bar on stderr."),
    ]):
        fn = opt(fn)
    return fn


def _schema_option(check):
    """A click callback: ``persona_index.schemas.<check>(value)``, its errors as
    usage errors naming the option (exit 2)."""
    def callback(ctx, param, value):
        from persona_index import schemas
        from persona_index.errors import IngestOptionError

        try:
            return None if value is None else getattr(schemas, check)(value)
        except IngestOptionError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return callback


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet", "txt"]),
              help="Input format (default: from the file's suffix; a folder: a datasets "
                   "save_to_disk folder, else its parquet shards).")
@click.option("--text-field", help="The field holding the persona text "
                                   "(default: persona, input persona, text or description).")
@click.option("--attr", "attrs", multiple=True,
              help="An attribute field (repeatable). Default: short categorical string fields.")
@click.option("--licence", "--license", "licence", help="Licence tag carried by every persona "
              "(default: the schema's own, when a schema applies).")
@click.option("--schema", type=click.Choice(["auto", "none", "personahub", "persona-chat",
                                             "nemotron", "finepersonas", "profiles"]),
              default="auto", show_default=True,
              help="A published data set's layout; auto detects it from the columns.")
@click.option("--template", callback=_schema_option("check_template"),
              help="The text of a profiles row, e.g. 'A {age}-year-old {occupation}"
                   "[ from {city_country}]' ([ ]: left out when a field in it is missing).")
@click.option("--bands", "bands", multiple=True, metavar="NAME=EDGES",
              callback=_schema_option("parse_bands"),
              help="Derive attribute NAME_band from numeric field NAME, e.g. age=18,25,35,50,65 "
                   "(repeatable).")
@click.option("--strict", is_flag=True, help="Refuse the whole file if any row is unusable.")
@click.option("--minhash", is_flag=True,
              help="Drop lexical near duplicates (MinHash over words) before embedding, against "
                   "the file and the store (the 'minhash' extra).")
@click.option("--minhash-threshold", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Estimated Jaccard of the word sets at or above which --minhash drops a "
                   "persona.  [default: 0.9]")
@click.option("--minhash-perms", type=click.IntRange(1, 4096), default=None,
              help="MinHash permutations for --minhash.  [default: 128]")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: embed on a Ray Data actor pool (the 'ray' extra).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Embedding actors for --engine ray.")
@click.option("--gpu", is_flag=True, help="GPU actors for --engine ray.")
@ingest_options
@output_options
@click.pass_context
def ingest(ctx, path, fmt, text_field, attrs, licence, schema, template, bands, strict, minhash,
           minhash_threshold, minhash_perms, engine, workers, gpu, near_dup_threshold,
           no_near_dedup, batch_size, report, progress, as_json):
    """Ingest a jsonl, csv, parquet or txt file of personas (validate, embed, dedup).

    PATH may also be a folder of parquet shards, or a folder written by
    datasets' save_to_disk (the 'hf' extra); nothing is downloaded.
    """
    from persona_index.ingest import ingest_file

    if template and schema not in ("auto", "profiles"):
        raise click.UsageError(f"--template composes a profile's text: it goes with "
                               f"--schema profiles (or auto), not {schema}")
    if not minhash and (minhash_threshold is not None or minhash_perms is not None):
        raise click.UsageError("--minhash-threshold and --minhash-perms go with --minhash")
    mh = False
    if minhash:
        mh = {k: v for k, v in (("threshold", minhash_threshold), ("num_perm", minhash_perms))
              if v is not None}
    check_outputs(ctx, {"--report": report}, {"PATH": path})
    idx = open_index(ctx, must_exist=False)
    kw = dict(fmt=fmt, licence=licence, text_field=text_field, attrs=list(attrs) or None,
              near_dedup=not no_near_dedup, near_dup_threshold=near_dup_threshold,
              batch_size=batch_size, report=report, progress=progress)
    if engine == "ray":
        if strict or template or bands or minhash:
            raise click.UsageError("--strict, --template, --bands and --minhash are not "
                                   "supported with --engine ray yet")
        from persona_index.distributed import ingest_file_ray

        s = ingest_file_ray(idx, path, num_workers=workers, use_gpu=gpu, **kw)
    else:
        s = ingest_file(idx, path, strict=strict, schema=schema, template=template, bands=bands,
                        minhash=mh, **kw)
    _summary_out(s, as_json)


@cli.command()
@click.option("--count", "-n", type=click.IntRange(1), default=10000, show_default=True,
              help="How many personas to compose.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Random seed (a whole number >= 0).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the personas to this jsonl file instead of the store.")
@click.option("--weights", type=click.Choice(["uniform", "population"]), default="uniform",
              show_default=True,
              help="How countries and age bands are drawn: equally, or in proportion to "
                   "population (World Bank 2024) and world age structure (UN WPP 2024); see "
                   "persona_index/data/population.json.")
@ingest_options
@output_options
@click.pass_context
def generate(ctx, count, seed, out, weights, near_dup_threshold, no_near_dedup, batch_size,
             report, progress, as_json):
    """Compose personas from the built-in attribute tables and add them to the store."""
    from persona_index import generate as gen

    check_outputs(ctx, {"--out": out, "--report": report})
    if out:
        n = 0
        with output_file(out) as fh:
            for rec in gen.generate(count, seed=seed, weights=weights):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        emit({"written": n, "out": out}, as_json)
        return
    from persona_index.ingest import ingest_records

    idx = open_index(ctx, must_exist=False)
    source = f"generated:seed={seed}" + ("" if weights == "uniform" else f",weights={weights}")
    s = ingest_records(idx, list(gen.generate(count, seed=seed, weights=weights)),
                       source=source, licence=gen.LICENCE,
                       attrs=list(gen.ATTRIBUTES), near_dedup=not no_near_dedup,
                       near_dup_threshold=near_dup_threshold, batch_size=batch_size,
                       report=report, progress=progress)
    _summary_out(s, as_json)


def query_command(name, doc):
    @cli.command(name=name, help=doc)
    @click.argument("text", required=False)
    @click.option("--id", "pid", help="Query by a stored persona's id instead of a text.")
    @click.option("-k", type=click.IntRange(1), default=10, show_default=True,
                  help="How many results.")
    @click.option("--where", help="LanceDB SQL filter on attributes, e.g. \"region = 'Africa'\".")
    @click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                  help="Rank in numpy or torch (auto: numpy unless torch is already loaded and "
                       "sees a GPU; $PERSONA_INDEX_DEVICE sets it).")
    @output_options
    @row_format_option
    @click.pass_context
    def cmd(ctx, text, pid, k, where, device, as_json):
        if text is None and pid is None:
            raise click.UsageError("give a query TEXT or --id ID")
        idx = open_index(ctx)
        hits = getattr(idx, name)(text, id=pid, k=k, where=where, device=device)
        rows = [h.to_dict() for h in hits]
        cols = default_columns(["similarity", "id", "text"], idx.attributes,
                               asked=where_columns(where, idx.attributes))
        emit(rows, as_json, rows=rows, columns=cols)

    return cmd


query_command("similar", "The k personas most similar to TEXT (or --id), exact cosine.")
query_command("distant", "The k personas least similar to TEXT (or --id), exact cosine.")


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@click.option("--ignore-missing", is_flag=True,
              help="Print the ids that are stored and name the others on stderr (exit 0).")
@output_options
@row_format_option
@click.pass_context
def get(ctx, ids, ignore_missing, as_json):
    """Show stored personas by id (``-`` reads ids from stdin, one a line or jsonl).

    An id that is not stored is an error (exit 1, naming it) unless
    --ignore-missing."""
    if list(ids) == ["-"]:
        from persona_index.sampling import read_ids

        with click.open_file("-") as fh:
            ids = read_ids(fh, "<stdin>")
    snap = open_index(ctx).snapshot()  # one version for the check and the rows
    rows = snap.get(list(ids))
    missing = list(dict.fromkeys(i for i in ids if snap.position_of_id(i) is None))
    if missing:
        shown = ", ".join(map(repr, missing[:5])) + (f" and {len(missing) - 5} more"
                                                     if len(missing) > 5 else "")
        if not ignore_missing:
            raise click.ClickException(f"{len(missing)} id(s) not in the store: {shown} "
                                       "(--ignore-missing to print the others)")
        click.echo(f"note: {len(missing)} id(s) not in the store: {shown}", err=True)
    emit(rows, as_json, rows=rows)


@cli.command()
@output_options
@click.pass_context
def info(ctx, as_json):
    """Count, model, dimension, attributes, field mapping, table and format version of the store."""
    emit(open_index(ctx).info(), as_json)


@cli.command()
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]),
              help="Default: from OUT's suffix (.parquet, else jsonl).")
@click.option("--where", help="Export only the rows matching this SQL filter.")
@click.option("--vectors", is_flag=True, help="Include the embedding vectors.")
@output_options
@click.pass_context
def export(ctx, out, fmt, where, vectors, as_json):
    """Export the store (with attributes, source and licence) to jsonl or parquet
    (OUT ``-``: standard output)."""
    check_outputs(ctx, {"OUT": out})
    if out == "-" and as_json:
        raise click.UsageError("export - writes the rows to stdout; it cannot go with --json")
    n = open_index(ctx).export(out, fmt, where=where, vectors=vectors)
    if out == "-":
        return
    emit({"exported": n, "out": out}, as_json)


@cli.command()
@click.argument("new_db", type=click.Path(file_okay=False))
@click.option("--to-model", required=True, help="The model for the copy (local folder or name).")
@click.option("--batch-size", type=click.IntRange(1, 2**32 - 1), default=1024,  # lance's limit
              show_default=True)
@click.option("--progress/--no-progress", default=True)
@output_options
@click.pass_context
def reembed(ctx, new_db, to_model, batch_size, progress, as_json):
    """Copy the store into NEW_DB with every persona embedded by another model."""
    from persona_index.maintenance import reembed as do_reembed

    if new_db == "-":
        raise click.UsageError("NEW_DB is a store directory; '-' (stdout) cannot hold one")
    check_outputs(ctx, {"NEW_DB": new_db})
    res = do_reembed(open_index(ctx), new_db, to_model, batch_size=batch_size, progress=progress)
    emit(res, as_json)


STRATEGIES = strategy_names()


@cli.command()
@output_options
def strategies(as_json):
    """List the sampling strategies, their parameters and defaults."""
    specs = [_SPECS[n].to_dict() for n in STRATEGIES]
    if as_json:
        emit(specs, True)
        return
    for name in STRATEGIES:
        spec = _SPECS[name]
        params = ", ".join(p.describe() for p in spec.params) or "no parameters"
        mark = " (default)" if name == DEFAULT_STRATEGY else ""
        click.echo(f"{name}{mark}: {spec.description}. Parameters: {params}")


@cli.command()
@click.option("-n", "n", type=click.IntRange(1), required=False, help="Batch size.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help=f"Sampling strategy (default: {DEFAULT_STRATEGY}; `persona-index strategies` "
                   "lists them).")
@click.option("--by", multiple=True, help="Attribute(s) to stratify by (stratified).")
@click.option("--allocation", type=click.Choice(["equal", "proportional"]),
              help="Starting allocation of the cells (stratified; default equal, proportional "
                   "with a target); targets are then met by raking.")
@click.option("--target", multiple=True,
              help="Target distribution, ATTR=VALUE:WEIGHT,... (one per attribute), or 'world' "
                   "(population shares for country, region, age band).")
@click.option("--target-file", type=click.Path(exists=True, dir_okay=False),
              help="Targets from a JSON file {attr: {value: weight}}.")
@click.option("--min-per-cell", type=click.IntRange(0), default=None,
              help="At least this many from every non-empty cell, or all it has (stratified).")
@click.option("--stratum-method", type=click.Choice(["herding", "uniform", "farthest"]),
              help="How to draw inside a stratum (stratified; default herding).")
@renamed_option("--within-stratum", "--stratum-method", "stratum_method",
                type=click.Choice(["herding", "uniform", "farthest"]))
@click.option("--alpha", type=float, help="inverse-density exponent (0 = uniform).")
@click.option("--n-cells", type=click.IntRange(1), help="Number of k-means cells (cells).")
@click.option("--trim", type=float, help="core-farthest: share of most isolated personas left out.")
@click.option("--lam", type=float, help="blend: diversity weight in [0, 1] (default 0.45).")
@click.option("--beta", type=float, help="herding: weight of the spread term (default 0.5).")
@click.option("--tau", type=float, help="herding, blend: kernel width.")
@click.option("--param", "extra", multiple=True, help="Any other strategy parameter NAME=VALUE.")
@click.option("--device", type=click.Choice(DEVICES),
              help="farthest, herding, inverse-density: run the kernel in numpy or torch "
                   "(default auto: numpy unless torch is already loaded and sees a GPU).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default=None,
              help="herding: local, or two rounds on Ray (partitions with masses, then the "
                   "driver); needs the ray extra.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="herding with --engine ray: Ray CPUs (default 2).")
@click.option("--where", help="SQL filter: draw only from matching personas.")
@click.option("--near", help="Draw among the personas nearest to this text (with --within).")
@click.option("--within", type=click.IntRange(1), help="Neighbourhood size for --near.")
@click.option("--seed", type=click.IntRange(0),
              help="Random seed, a whole number >= 0 (default: a fresh one, recorded).")
@click.option("--session", help="Sampling session: never repeat a persona, fill earlier gaps.")
@click.option("--exclude-session", "exclude", multiple=True,
              help="Exclude what this other session drew (repeatable).")
@click.option("--replay", "replay_path", type=click.Path(exists=True, dir_okay=False),
              help="Re-run a manifest file and check that it gives the same ids.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the batch as jsonl here.")
@click.option("--manifest", "manifest_out", type=click.Path(dir_okay=False),
              help="Write the manifest here (default: OUT with .manifest.json).")
@plot_option
@output_options
@row_format_option
@click.pass_context
def sample(ctx, n, strategy, by, allocation, target, target_file, min_per_cell, stratum_method,
           alpha, n_cells, trim, lam, beta, tau, extra, device, engine, workers,
           where, near, within, seed, session, exclude, replay_path, out, manifest_out, plot,
           as_json):
    """Draw a batch of personas that covers the persona space."""
    from functools import partial

    from persona_index.sampling import (batch_rows, draw, load_manifest, manifest_path_for, replay,
                                        sampling_params, stage_batch, upgrade_manifest)

    if out and out != "-" and not manifest_out:
        manifest_out = manifest_path_for(out)
    # every output checked before anything is drawn (exit 2)
    check_outputs(ctx, {"--out": out, "--manifest": manifest_out}, {"--replay": replay_path})
    deliver = partial(stage_batch, out=out, manifest_out=manifest_out)

    if replay_path:
        # the manifest's own store, unless --db (or $PERSONA_INDEX_DB) names one
        db = ctx.obj["db"] if ctx.obj.get("db_given") else None
        manifest, notes = upgrade_manifest(load_manifest(replay_path))
        for note in notes:
            click.echo(f"note: {note}", err=True)
        try:
            b = replay(manifest, path=db)
        except ManifestError as exc:  # the library names its parameter; here it is --db
            raise click.ClickException(_one_line(exc).replace("path=", "--db")) from None
        click.echo(f"replayed on {db or b.manifest['store']}", err=True)
        deliver(b).commit()
    else:
        if n is None:
            raise click.UsageError("give -n N (or --replay MANIFEST)")
        if out == "-" and as_json:
            raise click.UsageError("--out - writes the batch to stdout; it cannot go with --json")
        world = _world_target(target, target_file)
        params = sampling_params(by=by, allocation=allocation,
                                 target=[] if world else target, target_file=target_file,
                                 stratum_method=stratum_method, extra=extra, alpha=alpha,
                                 n_cells=n_cells, trim=trim, lam=lam, beta=beta, tau=tau,
                                 min_per_cell=min_per_cell)
        if device is not None:
            params["device"] = device
        if engine is not None:
            params["engine"] = engine
        if workers is not None:
            params["workers"] = workers
        strategy = strategy or ("stratified" if params.get("by") or world else DEFAULT_STRATEGY)
        if world and strategy != "stratified":
            raise click.UsageError("--target world needs --strategy stratified")
        params = validate_params(strategy, params)  # exit 2 before the store is opened
        if ctx.meta.get("columns"):  # a typo in --columns must not cost a recorded draw
            from .output import chosen_columns

            attrs = open_index(ctx).attributes
            chosen_columns([dict.fromkeys(["id", "text", *attrs, "licence", "source"])], None)
        if near is not None and not near.strip():
            raise click.BadParameter("must be a non-empty text", param_hint="--near")
        if (near is None) != (within is None):
            raise click.UsageError("--near TEXT and --within M go together")
        # the outputs are staged beside their targets, the session records the
        # batch, then the outputs move into place: nothing drawn goes undelivered
        b = draw(open_index(ctx), n, strategy, seed=seed, where=where, near=near, within=within,
                 session=session, exclude_sessions=exclude, params=params,
                 target="world" if world else None, deliver=deliver)
    idx_attrs = b.attributes
    rows = batch_rows(b)
    if plot:  # the pool the batch came from: its store at its table version
        from persona_index.store import PersonaIndex

        draw_plot(PersonaIndex(b.manifest["store"], version=b.manifest["table_version"]),
                  b.ids, plot, where=b.manifest.get("where"))
    if out == "-":
        return
    rows_only = not as_json and ctx.meta.get("row_format") in ("jsonl", "csv")
    balance = None if rows_only else b.balance()  # printed only in the table and --json
    matched = b.manifest.get("target_matched")
    if matched and not as_json:
        click.echo(f"target world: matched {', '.join(matched['matched'])}"
                   + (f"; the store has no {', '.join(matched['unmatched'])}"
                      if matched["unmatched"] else ""), err=True)
    if as_json:
        emit({"manifest": {k: v for k, v in b.manifest.items() if k != "ids"}, "personas": rows,
              **({"balance": balance} if balance else {})}, True)
    elif ctx.meta.get("row_format") in ("jsonl", "csv"):
        _emit_rows(rows, ctx.meta["row_format"])
    else:
        m = b.manifest
        click.echo(f"{len(rows)} personas, strategy {m['strategy']}, seed {m['seed']}, "
                   f"table version {m['table_version']}"
                   + (f", session {m['session']} batch {m['batch']}" if m.get("session") else ""),
                   err=True)
        p = m.get("params") or {}
        asked = list(p.get("by") or []) + list(p.get("target") or {}) \
            + where_columns(m.get("where"), idx_attrs)
        click.echo(format_table(rows, default_columns(["id", "text"], idx_attrs, asked)))
        if balance:
            _echo_balance(balance)


def _world_target(target, target_file) -> bool:
    """True for ``--target world`` (which goes alone)."""
    if "world" not in target:
        return False
    if len(target) > 1 or target_file:
        raise click.UsageError("--target world goes alone (not with other --target or "
                               "--target-file)")
    return True


def _echo_balance(rep: dict, err: bool = True) -> None:
    """The balance report (on stderr where stdout holds the rows): error
    against the targets, coverage inside the strata, thin cells."""
    from persona_index.balance import balance_rows

    click.echo(f"balance over {' x '.join(rep['by'])} ({rep['k']} personas; stratified-uniform: "
               f"{rep['within']['uniform_draws']} draws of the same counts):", err=err)
    rows = balance_rows(rep)
    click.echo(format_table(rows, list(max(rows, key=len))), err=err)
    for t in rep["thin_cells"][:5]:
        cell = ", ".join(f"{a}={v}" for a, v in t["cell"].items())
        click.echo(f"thin cell {cell}: {t['size']} personas for a quota of {t['wanted']:g}",
                   err=err)
    if len(rep["thin_cells"]) > 5:
        click.echo(f"... and {len(rep['thin_cells']) - 5} more thin cells (--json lists them)",
                   err=err)


@cli.command()
@click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="jsonl with an 'id' field per line (what `sample --out` writes).")
@click.option("--session", help="Measure everything a session has drawn.")
@click.option("--where", help="Measure against the matching personas only.")
@click.option("--target", multiple=True, help="Target distribution ATTR=VALUE:WEIGHT,... "
              "(one per attribute), or 'world'; adds the error against it.")
@click.option("--target-file", type=click.Path(exists=True, dir_okay=False),
              help="Targets from a JSON file {attr: {value: weight}}.")
@click.option("--compare-uniform", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Also measure this many uniform batches of the same size (mean ± sd, z).")
@plot_option
@output_options
@click.pass_context
def coverage(ctx, ids_file, session, where, target, target_file, compare_uniform, plot, as_json):
    """Coverage metrics of a batch (or a session) against the pool."""
    from persona_index.sampling import balance_of, coverage_vs_uniform, read_ids, sampling_params
    from persona_index.sessions import Sessions

    if bool(ids_file) == bool(session):
        raise click.UsageError("give exactly one of --ids FILE or --session NAME")
    idx = open_index(ctx)
    if ids_file:
        with click.open_file(ids_file, encoding="utf-8") as fh:  # "-": stdin
            ids = read_ids(fh, ids_file)
    else:
        ids = Sessions(idx).drawn([session])
    world = _world_target(target, target_file)
    targets = sampling_params(target=[] if world else target,
                              target_file=target_file).get("target")
    if world:
        from persona_index.targets import world_target

        snap = idx.snapshot()
        targets, matched = world_target(snap.attribute_columns(snap.attributes))
        click.echo(f"target world: matched {', '.join(matched['matched'])}", err=True)
    balance = balance_of(idx, ids, target=targets, where=where) if targets else None
    result = coverage_vs_uniform(idx, ids, where=where, targets=targets,
                                 uniform_draws=compare_uniform, progress=not as_json)
    if balance:
        result["balance"] = balance
    rep = result["sample"]
    if plot:
        draw_plot(idx, ids, plot, where=where)
    if as_json:
        emit(result, True)
        return
    from persona_index.display import coverage_rows

    if compare_uniform:
        rep = {**rep, "uniform": {"draws": compare_uniform, "mean": result["uniform_mean"],
                                  "sd": result["uniform_sd"], "z": result["z"]}}
        click.echo(f"{rep['n']} personas in a pool of {rep['pool']}, next to {compare_uniform} "
                   "uniform batches of the same size (z: sds from their mean, + is better)",
                   err=True)
    click.echo(format_table(coverage_rows(rep)))
    if balance:
        _echo_balance(balance, err=False)


@cli.group()
def sessions():
    """List, show and reset sampling sessions."""


@sessions.command("list")
@output_options
@click.pass_context
def sessions_list(ctx, as_json):
    """Every session with its persona and batch counts."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    rows = s.list()
    for r in rows:  # which sessions each is kept disjoint from (both ways)
        r["excludes"] = sorted(s.excluded_by(r["session"]))
    emit(rows, as_json, rows=[{**r, "excludes": ", ".join(r["excludes"]) or "-"} for r in rows])


@sessions.command("show")
@click.argument("name")
@output_options
@click.pass_context
def sessions_show(ctx, name, as_json):
    """A session's batches (manifests, without the id lists)."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    _known_session(s, name)
    ms = s.manifests(name)
    rows = [{k: m.get(k) for k in ("batch", "strategy", "n", "seed", "table_version", "time")}
            for m in ms]
    emit(ms if as_json else rows, as_json, rows=rows)


@sessions.command("reset")
@click.argument("name")
@output_options
@click.pass_context
def sessions_reset(ctx, name, as_json):
    """Forget what a session drew."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    _known_session(s, name)
    n = s.reset(name)
    emit({"session": name, "forgotten": n}, as_json)


def _known_session(sessions, name) -> None:
    """Exit 1 naming the sessions there are when ``name`` is none of them."""
    names = [r["session"] for r in sessions.list()]
    if name not in names:
        raise click.ClickException(f"no session {name!r} in this store; its sessions: "
                                   + (", ".join(names) or "none yet"))


@cli.command()
@click.option("--attr", "name", required=True, help="The attribute column to create.")
@click.option("--labels", help="Comma-separated labels.")
@click.option("--labels-file", type=click.Path(exists=True, dir_okay=False),
              help="One label per line.")
@click.option("--template", default="{label}", show_default=True,
              help="How a label is phrased before embedding, e.g. 'a person working in {label}'.")
@click.option("--replace", is_flag=True, help="Overwrite an existing column of that name.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@output_options
@click.pass_context
def tag(ctx, name, labels, labels_file, template, replace, progress, as_json):
    """Tag every persona with its nearest label (zero-shot), as an attribute."""
    from persona_index.tagging import tag as do_tag

    if bool(labels) == bool(labels_file):
        raise click.UsageError("give exactly one of --labels or --labels-file")
    if labels_file:
        with open(labels_file, encoding="utf-8") as fh:
            lab = [l.strip() for l in fh if l.strip()]
    else:
        lab = [l.strip() for l in labels.split(",")]
    emit(do_tag(open_index(ctx), name, lab, template=template, replace=replace,
                progress=progress and not as_json), as_json)


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


@cli.command()
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
@output_options
@click.pass_context
def synthesize(ctx, templates, personas_file, session, granularity, attrs, out, requests_only,
               progress, base_url, llm_model, temperature, max_tokens, concurrency, timeout,
               retries, api_key_env, system, response_format, llm_seed, top_p, n, extra_body,
               missing, max_retry_wait, deadline, max_runs, skip_failed, as_json):
    """Persona-conditioned generation: prompts -> endpoint -> outputs (resumable).

    A rerun sends the rows that failed again (up to --max-runs); exit 1 when
    rows remain failed or unsent at the end. See docs/synthesis.md.
    """
    from click.core import ParameterSource

    from persona_index.outputs import check_not_input
    from persona_index.synthesis import run as srun
    from persona_index.synthesis.templates import load_template

    if bool(personas_file) == bool(session):
        raise click.UsageError("give exactly one of --personas FILE or --session NAME")
    calls = bool(base_url) and not requests_only
    if out == "-" and as_json:
        raise click.UsageError("--out - writes the rows to stdout; it cannot go with --json")
    resume_asked = [f"--{o.replace('_', '-')}" for o in ("max_runs", "skip_failed")
                    if ctx.get_parameter_source(o) is ParameterSource.COMMANDLINE]
    if calls and resume_asked and srun.is_stream(out):
        raise click.UsageError(f"{' and '.join(resume_asked)}: resuming needs --out to be a "
                               f"regular file; {out!r} is a stream (nothing is read back)")
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
        plan = srun.plan_jobs(personas, tmpls, n=n, missing=missing)
        k = srun.write_requests(personas, tmpls, out, config=cfg, plan=plan,
                                inputs=[personas_file])
        doc = {"requests": k, "out": out, "format": "openai-batch-jsonl", "n": n,
               "missing": plan.missing, "request": cfg.request_options()}
        if srun.is_stdout(out):
            click.echo(json.dumps(strict_json(doc), ensure_ascii=False), err=True)
        else:
            emit(doc, as_json)
        return
    s = srun.synthesize(personas, tmpls, out, cfg, progress=progress, n=n, missing=missing,
                        skip_failed=skip_failed, max_runs=max_runs, deadline_s=deadline)
    d = s.to_dict()
    if srun.is_stdout(out):  # the rows own stdout: the summary goes to stderr
        click.echo(json.dumps(strict_json(d), ensure_ascii=False), err=True)
    elif as_json:
        emit(d, True)
    else:  # a readable summary: nothing unset, nothing printed as None
        emit({k: v for k, v in d.items() if v is not None}, False)
    if not s.complete:  # the summary is printed; one line says what is left, exit 1
        hint = ("--skip-failed kept the failed ones" if skip_failed and not s.unsent else
                f"rerun the same command to send them again (up to --max-runs {max_runs} runs "
                "per row)")
        click.echo(f"Error: {s.remaining_failed + s.unsent} of {s.planned} request(s) did not "
                   f"end ok ({s.remaining_failed} failed: the error field in {out} says why; "
                   f"{s.unsent} not sent); {hint}", err=True)
        ctx.exit(1)


@cli.command()
@click.argument("corpus", type=click.Path(exists=True, dir_okay=False))
@click.option("--action", default="read", show_default=True,
              help="Who is likely to ACTION this text: read, write, like, dislike, ...")
@click.option("--licence", help="Licence tag for the new personas.")
@client_options
@output_options
@click.pass_context
def extract(ctx, corpus, action, licence, base_url, llm_model, temperature, max_tokens,
            concurrency, timeout, retries, api_key_env, as_json):
    """Text-to-persona: personas from a corpus (txt or jsonl), ingested with dedup."""
    from persona_index.synthesis.personas import read_corpus, text_to_persona

    if not base_url:
        raise click.UsageError("extract needs --base-url")
    cfg = _client_config(base_url, llm_model, temperature, max_tokens, concurrency, timeout,
                         retries, api_key_env)
    emit(text_to_persona(open_index(ctx, must_exist=False), read_corpus(corpus), cfg,
                         action=action, licence=licence), as_json)


@cli.command()
@click.option("--personas", "personas_file", type=click.Path(exists=True, dir_okay=False),
              help="Seed personas (jsonl).")
@click.option("--session", help="Seed with a sampling session's personas.")
@click.option("--rounds", type=click.IntRange(1), default=6, show_default=True)
@click.option("--licence", help="Licence tag for the new personas.")
@client_options
@output_options
@click.pass_context
def expand(ctx, personas_file, session, rounds, licence, base_url, llm_model, temperature,
           max_tokens, concurrency, timeout, retries, api_key_env, as_json):
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
    emit(do_expand(idx, seeds, cfg, rounds=rounds, licence=licence), as_json)


@cli.command("outputs-report")
@click.argument("outputs", type=click.Path(exists=True, dir_okay=False))
@click.option("--threshold", type=float, default=0.2, show_default=True,
              help="Keep outputs at least this similar to their persona.")
@click.option("--kept", type=click.Path(dir_okay=False), help="Write the kept rows here.")
@click.option("--by", help="Audit by this row field: per stratum count, coherence, output Vendi "
                           "against random subsets, over-represented words (log-odds z).")
@output_options
@click.pass_context
def outputs_report(ctx, outputs, threshold, kept, by, as_json):
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
    if as_json:
        emit(rep, True)
        return
    emit({k: v for k, v in rep.items() if k not in ("audit", "control_comparison")}, False)
    if by:
        from persona_index_cli.curate import audit_rows

        click.echo(f"\naudit by {by}:")
        click.echo(format_table(audit_rows(rep["audit"])))
    if "control_comparison" in rep:  # the one-line answer, last
        click.echo(rep["control_comparison"]["verdict"])


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench(ctx):
    """Run the benchmark suite: from a checkout, `python -m benchmarks` (e.g. --quick)."""
    try:
        from benchmarks.__main__ import main as bench_main
    except ImportError:
        raise click.ClickException("the benchmarks live in the source checkout, not in the "
                                   "installed package: run `python -m benchmarks` from the "
                                   "repository root") from None
    ctx.exit(bench_main(list(ctx.args)))


from persona_index_cli.curate import curate_command  # noqa: E402  (its own file)

cli.add_command(curate_command)

from .habits import add_store_options  # noqa: E402

add_store_options(cli, skip=("bench",))


def main():
    """The console script's entry point (pyproject's ``persona-index``): the
    CLI, plus a reader of stdout that goes away (``| head``) ending any
    command with exit 0 and no noise, also when the last flush is the one that
    finds the pipe closed."""
    import sys

    try:
        cli(prog_name="persona-index")
        code = 0
    except SystemExit as exc:
        code = exc.code
    except BrokenPipeError:
        code = 0
        _stdout_gone()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _stdout_gone()  # the command's own exit status stands
    except OSError:
        pass
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
