"""The CLI's output layer: one decorator for the output flags, one printer.

:func:`output_options` gives a command ``--json`` (one JSON document on
stdout) and, for a command that prints rows, ``--columns a,b,c`` (exactly
these, in this order; ``--format csv/jsonl`` too), ``--wide`` (no cutting of
long text) and ``--format table|json|jsonl|csv``; the command gets them as
one :class:`Output` argument, ``output``. :func:`emit` prints what a command
returns: the JSON document, the rows as jsonl or csv, or a readable table or
key/value list. Without ``--columns``, a table shows the id and text, then
the attributes the command was asked about (``--by``, ``--target``,
``--where``), then other attributes up to three in all (the command's
``columns``, from :func:`default_columns`).

The pattern is sqlite-utils' ``output_options`` and ``output_rows``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

import click
import numpy as np

#: how many attribute columns a table shows when nobody asked for any
DEFAULT_ATTRS = 3
#: a cell's width in a table without --wide
CELL_WIDTH = 70


_NAME = re.compile(r'"([^"]+)"|`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)')


def where_columns(where: str | None, attributes) -> list:
    """The attributes a SQL filter names, in the order it names them.

    >>> where_columns("region = 'Africa' AND age_band IN ('25-34')", ["age_band", "region", "x"])
    ['region', 'age_band']
    >>> where_columns("\\"job title\\" = 'nurse'", ["job title"])
    ['job title']
    """
    if not where:
        return []
    text = re.sub(r"'(?:[^']|'')*'", " ", where)  # string literals name no column
    found = [a or b or c for a, b, c in _NAME.findall(text)]
    attrs = set(attributes)
    return list(dict.fromkeys(f for f in found if f in attrs))


def default_columns(base, attributes, asked=()) -> list:
    """``base`` columns, the ``asked`` attributes, then others up to
    :data:`DEFAULT_ATTRS` attributes in all.

    >>> default_columns(["id", "text"], ["a", "b", "c", "d", "e"], asked=["e"])
    ['id', 'text', 'e', 'a', 'b']
    >>> default_columns(["id"], ["a", "b"], asked=["x", "b"])  # only stored ones
    ['id', 'b', 'a']
    """
    asked = [a for a in dict.fromkeys(asked) if a in attributes]
    rest = [a for a in attributes if a not in asked]
    return list(base) + asked + rest[:max(0, DEFAULT_ATTRS - len(asked))]


def chosen_columns(rows: list, default: list | None,
                   output: "Output | None" = None) -> list | None:
    """``output``'s ``--columns``, checked against the rows' fields (a usage
    error naming the unknown ones and the valid ones), else ``default``."""
    cols = output.columns if output is not None else None
    if not cols:
        return default
    known = list(dict.fromkeys(k for r in rows for k in r))
    unknown = [c for c in cols if c not in known]
    if unknown and rows:
        raise click.BadParameter(f"no column(s) {', '.join(map(repr, unknown))}; "
                                 f"the rows have {', '.join(known)}", param_hint="--columns")
    return list(cols)


def select(rows: list, columns: list | None) -> list:
    """Rows cut down to ``columns`` (for csv and jsonl under ``--columns``)."""
    if not columns:
        return rows
    return [{c: r.get(c) for c in columns} for r in rows]


def format_table(rows: list, columns: list | None = None, output: "Output | None" = None) -> str:
    """Rows as an aligned table: ``output``'s ``--columns`` else ``columns``,
    cut at :data:`CELL_WIDTH` characters unless ``--wide``. A command's
    secondary tables (a balance report, dropped rows) pass no ``output``."""
    from persona_index.display import text_table

    wide = bool(output is not None and output.wide)
    return text_table(rows, chosen_columns(rows, columns, output), None if wide else CELL_WIDTH)


def _check_plot(ctx, param, value):
    """``--plot PNG``: matplotlib must be there (the ``plots`` extra), else exit 2."""
    if value is None:
        return None
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise click.BadParameter("drawing a map needs matplotlib: "
                                 "pip install 'persona-index[plots]'", ctx=ctx, param=param)
    if not str(value).lower().endswith(".png"):
        raise click.BadParameter(f"{value!r}: the map is a PNG file (name it *.png)",
                                 ctx=ctx, param=param)
    return value


plot_option = click.option(
    "--plot", type=click.Path(dir_okay=False, writable=True), callback=_check_plot,
    metavar="MAP.png",
    help="Also draw the pool's 2-D map (PCA, shaded by density) with the batch on it, next "
         "to a uniform batch of the same size (the 'plots' extra).")


def draw_plot(idx, ids, path, where=None) -> None:
    """Draw :func:`persona_index.plots.coverage_map` and say where it went (stderr)."""
    from persona_index.plots import coverage_map

    info = coverage_map(idx, ids, path, where=where)
    click.echo(f"map: {path} ({info['width']} x {info['height']} px)", err=True)


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


@dataclass(frozen=True)
class Output:
    """What the output flags asked for: ``--json`` (or ``--format json``),
    ``--format``, ``--columns``, ``--wide``."""

    json: bool = False
    format: str = "table"
    columns: tuple | None = None
    wide: bool = False

    @property
    def streams_rows(self) -> bool:
        """jsonl or csv: stdout holds the rows and nothing else."""
        return not self.json and self.format in ("jsonl", "csv")

    @property
    def readable(self) -> bool:
        """A table for people (neither JSON nor jsonl/csv rows)."""
        return not self.json and not self.streams_rows


ROW_FORMATS = ("table", "json", "jsonl", "csv")


def output_options(fn=None, *, rows: bool = False):
    """The output flags, given to the command as one :class:`Output` argument
    ``output``: ``--json``; with ``rows=True`` (a command that prints rows)
    also ``--columns``, ``--wide`` and ``--format`` (table, the default;
    json prints the same document as ``--json``)."""
    if fn is None:
        return functools.partial(output_options, rows=rows)

    @functools.wraps(fn)
    def wrapper(*args, as_json=False, columns_opt=None, wide=False, row_format="table", **kwargs):
        cols = None
        if columns_opt is not None:
            cols = tuple(c.strip() for c in columns_opt.split(",") if c.strip())
            if not cols:
                raise click.BadParameter("name at least one column", param_hint="--columns")
        kwargs["output"] = Output(json=as_json or row_format == "json", format=row_format,
                                  columns=cols, wide=wide)
        return fn(*args, **kwargs)

    opts = [click.option("--json", "as_json", is_flag=True,
                         help="Print one JSON document on stdout.")]
    if rows:
        opts += [
            click.option("--columns", "columns_opt", metavar="A,B,...",
                         help="Show exactly these columns, in this order (table, csv, jsonl)."),
            click.option("--wide", is_flag=True, help="Show long text in full (no cutting at "
                                                      f"{CELL_WIDTH} characters)."),
            click.option("--format", "row_format", type=click.Choice(ROW_FORMATS),
                         default="table", show_default=True, help="How to print the rows."),
        ]
    for opt in reversed(opts):
        wrapper = opt(wrapper)
    return wrapper


def _write_rows(rows: list, output: Output) -> None:
    """``rows`` as jsonl or csv on stdout (``--columns`` applies)."""
    rows = select(rows, chosen_columns(rows, None, output))
    if output.format == "jsonl":
        for r in rows:
            click.echo(json.dumps(strict_json(r), ensure_ascii=False, default=str, allow_nan=False))
        return
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


def key_value_lines(d: dict) -> list:
    """A dict as aligned ``key  value`` lines (lists and dicts as JSON)."""
    width = max((len(k) for k in d), default=0)
    return [f"{k.ljust(width)}  " + (json.dumps(v, ensure_ascii=False, default=str)
                                    if isinstance(v, (list, dict)) else str(v))
            for k, v in d.items()]


def emit(output: Output, data, *, rows: list | None = None, columns: list | None = None,
         readable=None, err: bool = False) -> None:
    """Print a command's result, the one printer: ``data`` as one JSON
    document under ``--json``; ``rows`` as jsonl or csv under ``--format``;
    else the readable form: ``readable`` when the command gives one (lines, a
    dict or a text, or a function returning one: called only then), else
    ``rows`` as a table (``columns`` unless ``--columns``), else ``data`` (a
    dict as key/value lines). ``err``: print on stderr (where stdout holds
    something else)."""
    if output.json:
        click.echo(json.dumps(strict_json(data), ensure_ascii=False, default=str,
                              allow_nan=False), err=err)
        return
    if output.streams_rows and rows is not None:
        _write_rows(rows, output)
        return
    if callable(readable):
        readable = readable()
    if readable is None:
        readable = [format_table(rows, columns, output)] if rows is not None else \
            key_value_lines(data) if isinstance(data, dict) else [str(data)]
    elif isinstance(readable, dict):
        readable = key_value_lines(readable)
    for line in readable if isinstance(readable, list) else [readable]:
        click.echo(str(line), err=err)
