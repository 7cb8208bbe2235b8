"""synthesize's --control and --oversample options (a thin layer over
:mod:`persona_index.synthesis.control` and :mod:`persona_index.synthesis.oversample`).

``--control N``: N requests per template with the neutral persona line;
``--oversample M``: keep K = floor(persona requests / M) rows with ``curate``
after the run, to ``--curated`` (default OUT.curated.jsonl) and a manifest
beside it. With ``--requests-only`` the M x K requests (and the control ones)
are written and the summary says K: curate the results once they are rows.
Exit 1 when fewer than K rows could be kept (a rerun sends the failed rows
again and curates again).
"""

from __future__ import annotations

import click


def oversample_options(fn):
    for opt in reversed([
        click.option("--control", "control", type=click.IntRange(0), default=0, metavar="N",
                     show_default=True,
                     help="Also make N requests per template with no persona (the slot holds "
                          "'a typical user'): rows arm=control, custom_id "
                          "control:TEMPLATE:I, compared by outputs-report."),
        click.option("--oversample", type=click.FloatRange(1), default=None, metavar="M",
                     help="The personas are M x K: after the run keep K = requests / M rows "
                          "that cover output space (curate), in their own file; the raw rows "
                          "all stay in --out."),
        click.option("--curated", "curated_out", type=click.Path(dir_okay=False),
                     help="Where --oversample writes the kept rows (default: OUT with "
                          ".curated.jsonl; the manifest beside it)."),
    ]):
        fn = opt(fn)
    return fn


def check_usage(ctx, out: str, oversample, curated_out, calls: bool, personas_file) -> None:
    """Refuse bad combinations before anything is read or sent (exit 2)."""
    from persona_index.synthesis.oversample import curated_paths
    from persona_index.synthesis.rows import is_stream
    from persona_index_cli.base import check_outputs

    if curated_out and oversample is None:
        raise click.UsageError("--curated goes with --oversample")
    if curated_out and not calls:
        raise click.UsageError("--curated: nothing is curated when no endpoint is called "
                               "(--requests-only writes requests; curate the results later)")
    if oversample is None or not calls:
        return
    if is_stream(out):
        raise click.UsageError(f"--oversample reads the raw rows back to curate them: --out must "
                               f"be a regular file, not {out!r}")
    rows, manifest = curated_paths(out, curated_out)
    check_outputs(ctx, {"--out": out, "--curated": rows, "the curation manifest": manifest},
                  {"--personas": personas_file})


def requests_note(doc: dict, plan, oversample) -> None:
    """With --requests-only: say K in the summary and what to do next."""
    from persona_index.synthesis.oversample import keep_count

    doc["control"] = plan.control
    if oversample is None:
        return
    k = keep_count(len(plan.jobs) - plan.control, oversample)
    doc["oversample"], doc["keep"] = oversample, k
    click.echo(f"--oversample {oversample:g}: {len(plan.jobs) - plan.control} persona requests "
               f"written; once the results are back as rows (custom_id, persona, response, "
               f"status), keep {k} with `persona-index curate RESULTS -n {k}`", err=True)


def embedder(ctx, oversample):
    """The model curation embeds with: --embed-model, else the store's, else the default."""
    if oversample is None:
        return None
    from persona_index_cli.curate import _embedder

    return _embedder(ctx)


def shortfall_line(s) -> str | None:
    """One line when --oversample kept fewer than K rows (exit 1), else None."""
    c = s.curation
    if not c or not c.get("shortfall"):
        return None
    return (f"Error: --oversample kept {c['kept']} of K={c['k']} rows ({c['shortfall']} short: "
            f"only {c['candidates']} ok persona rows); rerun the same command to send the "
            "failed rows again and curate again")


def curation_line(s) -> str | None:
    """The plain summary's line about the curated file."""
    c = s.curation
    if not c:
        return None
    if not c.get("out"):
        return f"curated: nothing to curate (K={c['k']})"
    return (f"curated: kept {c['kept']} of {c['candidates']} persona rows (K={c['k']}, "
            f"--oversample {c['m']:g}) to {c['out']}; manifest {c['manifest']}")
