"""The persona-index command line: parse, call the library, format.

Every command takes ``--json`` and then prints exactly one JSON document on
stdout; progress and warnings go to stderr. Exit codes: 0 success, 1 a data
error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from persona_index.errors import PersonaIndexError


class _Group(click.Group):
    """Turns library errors into one-line ClickExceptions (exit 1)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PersonaIndexError as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from None
        except (ValueError, OSError) as exc:
            if isinstance(exc, click.ClickException):
                raise
            raise click.ClickException(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def output_options(fn):
    """``--json``: print one JSON document on stdout instead of a table."""

    @click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def emit(data, as_json: bool, *, rows: list | None = None, columns: list | None = None,
         title: str | None = None) -> None:
    """Print ``data`` as JSON, or ``rows`` (else ``data``) as a readable table."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
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


def format_table(rows: list[dict], columns: list | None = None, max_width: int = 70) -> str:
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0].keys())

    def cell(v):
        if isinstance(v, float):
            v = f"{v:.4f}"
        s = "" if v is None else str(v)
        return s if len(s) <= max_width else s[: max_width - 1] + "…"

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="PERSONA_INDEX_DB", default="personas.lance", show_default=True,
              help="The store's directory (or $PERSONA_INDEX_DB).")
@click.option("--model", default=None,
              help="Embedding model: a local sentence-transformers folder, or 'hash-384' for "
                   "tests. Default: the store's own model, or all-MiniLM-L6-v2 for a new store.")
@click.version_option(package_name="persona-index")
@click.pass_context
def cli(ctx, db, model):
    """persona-index: an embedded persona index with a coverage-aware sampler.

    Build a store of personas with embeddings and attributes, query similar
    and distant personas, draw batches that cover the persona space, and
    measure coverage.
    """
    ctx.obj = {"db": db, "model": model}


def open_index(ctx, must_exist: bool = True):
    from persona_index.store import PersonaIndex

    return PersonaIndex(ctx.obj["db"], ctx.obj["model"], must_exist=must_exist)


def _summary_out(summary, as_json):
    d = summary.to_dict()
    if as_json:
        emit(d, True)
        return
    keys = ["source", "read", "added", "exact_duplicates", "near_duplicates", "rejected",
            "over_token_window", "batches", "seconds", "personas_per_s", "version_after"]
    emit({k: (round(d[k], 2) if isinstance(d[k], float) else d[k]) for k in keys}, False)
    if d["examples"]:
        click.echo("examples of dropped rows:")
        click.echo(format_table(d["examples"][:6], ["line", "reason", "matched_id", "matched_in",
                                                    "similarity", "detail"]))


def ingest_options(fn):
    for opt in reversed([
        click.option("--near-dup-threshold", type=float, default=0.95, show_default=True,
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


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet", "txt"]),
              help="Input format (default: from the file's suffix).")
@click.option("--text-field", help="The field holding the persona text "
                                   "(default: persona, input persona, text or description).")
@click.option("--attr", "attrs", multiple=True,
              help="An attribute field (repeatable). Default: short categorical string fields.")
@click.option("--licence", "--license", "licence", help="Licence tag carried by every persona.")
@click.option("--strict", is_flag=True, help="Refuse the whole file if any row is unusable.")
@ingest_options
@output_options
@click.pass_context
def ingest(ctx, path, fmt, text_field, attrs, licence, strict, near_dup_threshold,
           no_near_dedup, batch_size, report, progress, as_json):
    """Ingest a jsonl, csv, parquet or txt file of personas (validate, embed, dedup)."""
    from persona_index.ingest import ingest_file

    idx = open_index(ctx, must_exist=False)
    s = ingest_file(idx, path, fmt=fmt, licence=licence, text_field=text_field,
                    attrs=list(attrs) or None, near_dedup=not no_near_dedup,
                    near_dup_threshold=near_dup_threshold, strict=strict,
                    batch_size=batch_size, report=report, progress=progress)
    _summary_out(s, as_json)


@cli.command()
@click.option("--count", "-n", type=click.IntRange(1), default=10000, show_default=True,
              help="How many personas to compose.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the personas to this jsonl file instead of the store.")
@ingest_options
@output_options
@click.pass_context
def generate(ctx, count, seed, out, near_dup_threshold, no_near_dedup, batch_size, report,
             progress, as_json):
    """Compose personas from the built-in attribute tables and add them to the store."""
    from persona_index import generate as gen

    if out:
        n = 0
        with open(out, "w", encoding="utf-8") as fh:
            for rec in gen.generate(count, seed=seed):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        emit({"written": n, "out": out}, as_json)
        return
    from persona_index.ingest import ingest_records

    idx = open_index(ctx, must_exist=False)
    s = ingest_records(idx, list(gen.generate(count, seed=seed)),
                       source=f"generated:seed={seed}", licence=gen.LICENCE,
                       attrs=list(gen.ATTRIBUTES), near_dedup=not no_near_dedup,
                       near_dup_threshold=near_dup_threshold, batch_size=batch_size,
                       report=report, progress=progress)
    _summary_out(s, as_json)


def query_command(name, doc):
    @cli.command(name=name, help=doc)
    @click.argument("text", required=False)
    @click.option("--id", "pid", help="Query by a stored persona's id instead of a text.")
    @click.option("-k", type=int, default=10, show_default=True, help="How many results.")
    @click.option("--where", help="LanceDB SQL filter on attributes, e.g. \"region = 'Africa'\".")
    @output_options
    @click.pass_context
    def cmd(ctx, text, pid, k, where, as_json):
        idx = open_index(ctx)
        hits = getattr(idx, name)(text, id=pid, k=k, where=where)
        rows = [h.to_dict() for h in hits]
        cols = ["similarity", "id", "text"] + [a for a in idx.attributes[:3]]
        emit(rows, as_json, rows=rows, columns=cols)

    return cmd


query_command("similar", "The k personas most similar to TEXT (or --id), exact cosine.")
query_command("distant", "The k personas least similar to TEXT (or --id), exact cosine.")


@cli.command()
@click.argument("ids", nargs=-1, required=True)
@output_options
@click.pass_context
def get(ctx, ids, as_json):
    """Show stored personas by id."""
    rows = open_index(ctx).get(list(ids))
    emit(rows, as_json, rows=rows)


@cli.command()
@output_options
@click.pass_context
def info(ctx, as_json):
    """Count, model, dimension, attributes, table and format version of the store."""
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
    """Export the store (with attributes, source and licence) to jsonl or parquet."""
    n = open_index(ctx).export(out, fmt, where=where, vectors=vectors)
    emit({"exported": n, "out": out}, as_json)


@cli.command()
@click.argument("new_db", type=click.Path(file_okay=False))
@click.option("--to-model", required=True, help="The model for the copy (local folder or name).")
@click.option("--batch-size", type=click.IntRange(1), default=1024, show_default=True)
@click.option("--progress/--no-progress", default=True)
@output_options
@click.pass_context
def reembed(ctx, new_db, to_model, batch_size, progress, as_json):
    """Copy the store into NEW_DB with every persona embedded by another model."""
    from persona_index.maintenance import reembed as do_reembed

    res = do_reembed(open_index(ctx), new_db, to_model, batch_size=batch_size, progress=progress)
    emit(res, as_json)


def main():  # pragma: no cover
    cli(prog_name="persona-index")


if __name__ == "__main__":  # pragma: no cover
    main()
