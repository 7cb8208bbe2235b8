"""``similar`` and ``distant``: the k nearest or farthest personas."""

from __future__ import annotations

import click

from persona_index.samplers.registry import DEVICES
from persona_index_cli.base import Command, open_index
from persona_index_cli.output import (default_columns, emit, output_options,
                                      where_columns)


def query_command(name, doc):
    @click.command(name=name, help=doc, cls=Command)
    @click.argument("text", required=False)
    @click.option("--id", "pid", help="Query by a stored persona's id instead of a text.")
    @click.option("-k", type=click.IntRange(1), default=10, show_default=True,
                  help="How many results.")
    @click.option("--where", help="LanceDB SQL filter on attributes, e.g. \"region = 'Africa'\".")
    @click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                  help="Rank in numpy or torch (auto: numpy unless torch is already loaded and "
                       "sees a GPU; $PERSONA_INDEX_DEVICE sets it).")
    @output_options(rows=True)
    @click.pass_context
    def cmd(ctx, text, pid, k, where, device, output):
        if text is None and pid is None:
            raise click.UsageError("give a query TEXT or --id ID")
        idx = open_index(ctx)
        hits = getattr(idx, name)(text, id=pid, k=k, where=where, device=device)
        rows = [h.to_dict() for h in hits]
        cols = default_columns(["similarity", "id", "text"], idx.attributes,
                               asked=where_columns(where, idx.attributes))
        emit(output, rows, rows=rows, columns=cols)

    return cmd




similar = query_command("similar", "The k personas most similar to TEXT (or --id), exact cosine.")
distant = query_command("distant", "The k personas least similar to TEXT (or --id), exact cosine.")
