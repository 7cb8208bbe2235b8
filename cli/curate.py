"""``persona-index curate``: keep the K generated outputs that cover output space.

A thin layer over :mod:`persona_index.curate`; registered on the main group by
``cli/main.py``. Errors follow the group's contract: bad data exit 1 with one
line, bad option values exit 2, and nothing is written on either.
"""

from __future__ import annotations

import click

from persona_index.curate import DEFAULT_CURATION, DEFAULT_SCORE_WEIGHT
from persona_index.samplers.registry import strategy_names
from persona_index_cli.output import emit, output_options

STRATEGIES = [DEFAULT_CURATION] + [s for s in strategy_names()
                                   if s not in (DEFAULT_CURATION, "stratified")]


def _embedder(ctx):
    """--embed-model, else the store's model when --db names an existing
    store, else the default MiniLM."""
    from persona_index.embed import get_embedder

    if ctx.obj.get("model"):
        return get_embedder(ctx.obj["model"])
    from pathlib import Path

    if ctx.obj.get("db_given") or Path(ctx.obj["db"]).exists():
        from persona_index_cli.base import open_index

        idx = open_index(ctx, must_exist=False)
        if idx.exists:
            return idx.embedder
    return get_embedder()


def _store(ctx):
    """The store named by --db, or the default one when it exists: where
    --by reads an attribute that no row has."""
    from pathlib import Path

    if not (ctx.obj.get("db_given") or Path(ctx.obj["db"]).exists()):
        return None
    from persona_index_cli.base import open_index

    return open_index(ctx, must_exist=False)


def _by_note(params) -> str:
    """Where each --by field came from, for the summary."""
    parts = []
    for b, src in (params.get("by_source") or {}).items():
        parts.append(f"{b} from the rows" if src == "rows" else
                     f"{b} from the store {src['store']} (table version "
                     f"{src['table_version']}) by persona_id")
    return "; by " + ", ".join(parts) if parts else ""


def _summary(cur) -> str:
    m, c = cur.manifest, cur.coverage
    n = m["counts"]
    p = m["params"]
    line = (f"kept {n['kept']} of {n['candidates']} rows ({n['rows']} read: {n['failed']} failed, "
            f"{n['incoherent']} incoherent, {n['repeated']} repeated); strategy {p['strategy']}")
    if p.get("coherence") is not None:
        share = n["incoherent"] / max(1, n["rows"] - n["failed"] - n["repeated"])
        line += f"; coherence >= {p['coherence']} dropped {n['incoherent']} ({100 * share:.0f}%)"
    line += _by_note(p)
    if c:
        line += (f"; output Vendi {c['vendi_kept']:.1f} (all candidates {c['vendi_candidates']:.1f}),"
                 f" mean distance to the nearest kept {c['mean_nearest_distance']:.3f}")
    if "mean_score_kept" in c:
        line += (f"; mean {p['score_field']} {c['mean_score_kept']:.3f} (candidates "
                 f"{c['mean_score_candidates']:.3f})")
    return line


@click.command("curate")
@click.argument("outputs", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-n", "n", type=click.IntRange(1), help="How many rows to keep.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]),
              help="Input format (default: from the file's suffix).")
@click.option("--response-field", default="response", show_default=True,
              help="The field holding the generated text (the shared sets: output).")
@click.option("--persona-field", default=None,
              help="The field holding the persona text (for --coherence).  [default: persona]")
@click.option("--id-field", default="custom_id", show_default=True,
              help="The row key; a repeated key keeps its last row, a row without one is keyed "
                   "by its line.")
@click.option("--coherence", type=click.FloatRange(-1.0, 1.0), default=None,
              help="Drop rows whose response is less similar than this to their persona (as "
                   "outputs-report --threshold). Off by default.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help=f"Selection on the response embeddings (default: {DEFAULT_CURATION}).")
@click.option("--param", "extra", multiple=True, metavar="NAME=VALUE",
              help="A strategy parameter (repeatable; `persona-index strategies` lists them).")
@click.option("--score-field", help="A numeric field: prefer higher scores among outputs that "
                                    "cover alike.")
@click.option("--score-weight", type=click.FloatRange(min=0.0), default=None,
              help="Weight of the standardised score in each pick's criterion.  "
                   f"[default: {DEFAULT_SCORE_WEIGHT} with --score-field]")
@click.option("--by", multiple=True, help="A field whose values get equal quotas (repeatable: "
                                          "crossed).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed (used above 4,096 outputs and by random strategies).")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write the kept rows as jsonl here ('-': stdout).")
@click.option("--manifest", "manifest_out", type=click.Path(dir_okay=False),
              help="Write the manifest here (default: OUT with .manifest.json).")
@click.option("--replay", "replay_path", type=click.Path(exists=True, dir_okay=False),
              help="Rerun a curation manifest (on OUTPUTS, or the file it names) and check that "
                   "it keeps the same rows.")
@click.option("--progress/--no-progress", default=False, help="Embedding progress on stderr.")
@output_options
@click.pass_context
def curate_command(ctx, outputs, n, fmt, response_field, persona_field, id_field, coherence,
                   strategy, extra, score_field, score_weight, by, seed, out, manifest_out,
                   replay_path, progress, output):
    """Keep the N generated outputs (of OUTPUTS, a synthesize file or any jsonl,
    csv or parquet) that cover output space; write them and a manifest.

    The last row of a repeated custom_id wins; failed rows are dropped; the
    rest are embedded and N of them kept with the curation default (medoids)
    or --strategy. --json prints {"kept", "dropped", "manifest", "coverage"}.
    """
    from persona_index import curate as C
    from persona_index.errors import CurationError
    from persona_index.sampling import sampling_params
    if out == "-" and output.json:
        raise click.UsageError("--out - writes the rows to stdout; it cannot go with --json")
    if replay_path:
        manifest = C.load_curation_manifest(replay_path)
        cur = C.replay_curation(manifest, path=outputs, embedder=_embedder(ctx))
        inputs = [outputs or manifest["input"]["path"], replay_path]
    else:
        if outputs is None:
            raise click.UsageError("give OUTPUTS (or --replay MANIFEST)")
        if n is None:
            raise click.UsageError("give -n N (or --replay MANIFEST)")
        params = sampling_params(extra=extra)
        C._check_options(n, coherence, score_field, score_weight, strategy, params, by)  # exit 2
        try:
            cur = C.curate_file(outputs, n, fmt=fmt, embedder=_embedder(ctx),
                                persona_field=persona_field, response_field=response_field,
                                id_field=id_field, coherence=coherence, strategy=strategy,
                                params=params, score_field=score_field,
                                score_weight=score_weight, by=list(by), seed=seed,
                                progress=progress, index=_store(ctx) if by else None)
        except CurationError as exc:  # the library's parameter is the CLI's --db
            raise click.ClickException(str(exc).replace("(index)", "(--db STORE)")) from None
        inputs = [outputs]
    written = C.write_curation(cur, out, manifest_out=manifest_out, inputs=inputs)
    lines = [_summary(cur)]
    if written and out != "-":
        lines.append(f"wrote {len(cur.kept)} rows to {out} and the manifest to {written}"
                     if out else f"wrote the manifest to {written}")
    emit(output, cur.to_dict(), readable=lines, err=(out == "-"))  # '-': the rows own stdout
    if output.readable and not out:
        click.echo("(no --out: nothing written)", err=True)


def audit_rows(audit: dict) -> list[dict]:
    """``outputs-report --by``'s table: one row per stratum."""
    rows = []
    for e in audit["strata"]:
        v = e["output_vendi"] or {}
        rows.append({"stratum": e["stratum"], "count": e["count"],
                     "coherence": e["mean_coherence"],
                     "vendi": v.get("vendi"), "vendi z vs random": v.get("z"),
                     "over-represented words (z)": ", ".join(
                         f"{w['word']} {w['z']:.1f}" for w in e["words"][:5])})
    return rows
