"""Commands that fill and read the store: ingest, generate, get, info,
export, reembed, tag."""

from __future__ import annotations

import json

import click

from persona_index.minhash import DEFAULT_NUM_PERM, DEFAULT_THRESHOLD
from persona_index.generate import WEIGHTS
from persona_index.outputs import output_file
from persona_index.plan import DEFAULT_NEAR_DUP
from persona_index.readers import DEFAULT_BATCH, FORMATS
from persona_index.schemas import SCHEMAS
from persona_index.text import TEXT_FIELDS
from persona_index_cli.base import Command, check_outputs, open_index
from persona_index_cli.output import emit, format_table, key_value_lines, output_options


def _summary_out(summary, output):
    """An ingest summary: the JSON document, or the main counts, the
    single-valued fields and some dropped rows."""
    d = summary.to_dict()
    keys = ["source", "read", "added", "exact_duplicates", "near_duplicates", "rejected",
            "over_token_window", "batches", "seconds", "personas_per_s", "version_after", "fields"]
    if d.get("minhash"):  # the MinHash stage ran
        keys[4:4] = ["minhash_duplicates"]
        keys[-2:-2] = ["minhash_seconds"]
    lines = key_value_lines({k: (round(d[k], 2) if isinstance(d[k], float) else d[k])
                             for k in keys})
    if d.get("single_valued"):
        lines.append("not strata (one value on every row, kept as plain columns): " + ", ".join(
            f"{f} = {v!r}" for f, v in d["single_valued"].items()))
    if d["examples"]:
        cols = ["line", "reason", "matched_id", "matched_in", "similarity", "detail"]
        if any("jaccard" in e for e in d["examples"]):
            cols[5:5] = ["jaccard"]
        lines += ["examples of dropped rows:", format_table(d["examples"][:6], cols)]
    emit(output, d, readable=lines)


def ingest_options(fn):
    for opt in reversed([
        click.option("--near-dup-threshold", type=click.FloatRange(0, 1, min_open=True),
                     default=DEFAULT_NEAR_DUP, show_default=True,
                     help="Cosine similarity at or above which a persona is a near duplicate."),
        click.option("--no-near-dedup", is_flag=True, help="Drop exact duplicates only."),
        click.option("--batch-size", type=click.IntRange(1), default=DEFAULT_BATCH,
                     show_default=True,
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


@click.command(cls=Command)
@click.argument("path", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format (default: from the file's suffix; a folder: a datasets "
                   "save_to_disk folder, else its parquet shards).")
@click.option("--text-field", help="The field holding the persona text (default: "
                                   f"{', '.join(TEXT_FIELDS[:-1])} or {TEXT_FIELDS[-1]}).")
@click.option("--attr", "attrs", multiple=True,
              help="An attribute field (repeatable). Default: short categorical string fields.")
@click.option("--licence", "--license", "licence", help="Licence tag carried by every persona "
              "(default: the schema's own, when a schema applies).")
@click.option("--schema", type=click.Choice(["auto", "none", *SCHEMAS]),
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
                   f"persona.  [default: {DEFAULT_THRESHOLD}]")
@click.option("--minhash-perms", type=click.IntRange(1, 4096), default=None,
              help=f"MinHash permutations for --minhash.  [default: {DEFAULT_NUM_PERM}]")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: embed on a Ray Data actor pool (the 'ray' extra).")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True,
              help="Embedding actors for --engine ray.")
@click.option("--gpu", is_flag=True, help="GPU actors for --engine ray.")
@click.option("--vectors-field", metavar="FIELD",
              help="A field holding each row's precomputed vector (a list of numbers from the "
                   "store's model, of its length): nothing is embedded. Past a few million rows "
                   "add --no-near-dedup (docs/scale.md).")
@ingest_options
@output_options
@click.pass_context
def ingest(ctx, path, fmt, text_field, attrs, licence, schema, template, bands, strict, minhash,
           minhash_threshold, minhash_perms, engine, workers, gpu, vectors_field,
           near_dup_threshold, no_near_dedup, batch_size, report, progress, output):
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
    kw.update(strict=strict, schema=schema, template=template, bands=bands, minhash=mh)
    if engine == "ray":  # the same options: the plan is made once, the windows embed on Ray
        if vectors_field:
            raise click.UsageError("--vectors-field needs no embedding: leave out --engine ray")
        from persona_index.distributed import ingest_file_ray

        s = ingest_file_ray(idx, path, num_workers=workers, use_gpu=gpu, **kw)
    else:
        s = ingest_file(idx, path, vectors_field=vectors_field, **kw)
    _summary_out(s, output)


@click.command(cls=Command)
@click.option("--count", "-n", type=click.IntRange(1), default=10000, show_default=True,
              help="How many personas to compose.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Random seed (a whole number >= 0).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the personas to this jsonl file instead of the store.")
@click.option("--weights", type=click.Choice(WEIGHTS), default=WEIGHTS[0],
              show_default=True,
              help="How countries and age bands are drawn: equally, or in proportion to "
                   "population (World Bank 2024) and world age structure (UN WPP 2024); see "
                   "persona_index/data/population.json.")
@ingest_options
@output_options
@click.pass_context
def generate(ctx, count, seed, out, weights, near_dup_threshold, no_near_dedup, batch_size,
             report, progress, output):
    """Compose personas from the built-in attribute tables and add them to the store."""
    from persona_index import generate as gen

    check_outputs(ctx, {"--out": out, "--report": report})
    if out:
        n = 0
        with output_file(out) as fh:
            for rec in gen.generate(count, seed=seed, weights=weights):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                n += 1
        emit(output, {"written": n, "out": out})
        return
    from persona_index.ingest import ingest_records

    idx = open_index(ctx, must_exist=False)
    source = f"generated:seed={seed}" + ("" if weights == "uniform" else f",weights={weights}")
    s = ingest_records(idx, list(gen.generate(count, seed=seed, weights=weights)),
                       source=source, licence=gen.LICENCE,
                       attrs=list(gen.ATTRIBUTES), near_dedup=not no_near_dedup,
                       near_dup_threshold=near_dup_threshold, batch_size=batch_size,
                       report=report, progress=progress)
    _summary_out(s, output)


@click.command(cls=Command)
@click.argument("ids", nargs=-1, required=True)
@click.option("--ignore-missing", is_flag=True,
              help="Print the ids that are stored and name the others on stderr (exit 0).")
@output_options(rows=True)
@click.pass_context
def get(ctx, ids, ignore_missing, output):
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
    emit(output, rows, rows=rows)


@click.command(cls=Command)
@output_options
@click.pass_context
def info(ctx, output):
    """Count, model, dimension, attributes, field mapping, table and format version of the store."""
    emit(output, open_index(ctx).info())


@click.command(cls=Command)
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]),
              help="Default: from OUT's suffix (.parquet, else jsonl).")
@click.option("--where", help="Export only the rows matching this SQL filter.")
@click.option("--vectors", is_flag=True, help="Include the embedding vectors.")
@output_options
@click.pass_context
def export(ctx, out, fmt, where, vectors, output):
    """Export the store (with attributes, source and licence) to jsonl or parquet
    (OUT ``-``: standard output)."""
    check_outputs(ctx, {"OUT": out})
    if out == "-" and output.json:
        raise click.UsageError("export - writes the rows to stdout; it cannot go with --json")
    n = open_index(ctx).export(out, fmt, where=where, vectors=vectors)
    if out == "-":
        return
    emit(output, {"exported": n, "out": out})


@click.command(cls=Command)
@click.argument("new_db", type=click.Path(file_okay=False))
@click.option("--to-model", required=True, help="The model for the copy (local folder or name).")
@click.option("--batch-size", type=click.IntRange(1, 2**32 - 1),  # lance's limit
              default=DEFAULT_BATCH,
              show_default=True)
@click.option("--progress/--no-progress", default=True)
@output_options
@click.pass_context
def reembed(ctx, new_db, to_model, batch_size, progress, output):
    """Copy the store into NEW_DB with every persona embedded by another model."""
    from persona_index.maintenance import reembed as do_reembed

    if new_db == "-":
        raise click.UsageError("NEW_DB is a store directory; '-' (stdout) cannot hold one")
    check_outputs(ctx, {"NEW_DB": new_db})
    res = do_reembed(open_index(ctx), new_db, to_model, batch_size=batch_size, progress=progress)
    emit(output, res)


@click.command(cls=Command)
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
def tag(ctx, name, labels, labels_file, template, replace, progress, output):
    """Tag every persona with its nearest label (zero-shot), as an attribute."""
    from persona_index.tagging import tag as do_tag

    if bool(labels) == bool(labels_file):
        raise click.UsageError("give exactly one of --labels or --labels-file")
    if labels_file:
        with open(labels_file, encoding="utf-8") as fh:
            lab = [l.strip() for l in fh if l.strip()]
    else:
        lab = [l.strip() for l in labels.split(",")]
    emit(output, do_tag(open_index(ctx), name, lab, template=template, replace=replace,
                        progress=progress and not output.json))
