"""Row output for the CLI: which columns a table shows and how wide.

Every row-printing command takes ``--columns a,b,c`` (exactly these, in this
order; ``--format csv/jsonl`` too) and ``--wide`` (no cutting of long text).
Without ``--columns``, a table shows the id and text, then the attributes
the command was asked about (``--by``, ``--target``, ``--where``), then
other attributes up to three in all.
"""

from __future__ import annotations

import functools
import json
import math
import re

import click
import numpy as np

#: how many attribute columns a table shows when nobody asked for any
DEFAULT_ATTRS = 3
#: a cell's width in a table without --wide
CELL_WIDTH = 70


def column_options(fn):
    """``--columns`` and ``--wide``, kept in the context for :func:`format_rows`."""

    @click.option("--columns", "columns_opt", metavar="A,B,...",
                  help="Show exactly these columns, in this order (table, csv, jsonl).")
    @click.option("--wide", is_flag=True, help="Show long text in full (no cutting at "
                                               f"{CELL_WIDTH} characters).")
    @functools.wraps(fn)
    def wrapper(*args, columns_opt=None, wide=False, **kwargs):
        meta = click.get_current_context().meta
        meta["columns"] = [c.strip() for c in columns_opt.split(",") if c.strip()] \
            if columns_opt else None
        if columns_opt is not None and not meta["columns"]:
            raise click.BadParameter("name at least one column", param_hint="--columns")
        meta["wide"] = wide
        return fn(*args, **kwargs)

    return wrapper


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


def chosen_columns(rows: list, default: list | None) -> list | None:
    """The ``--columns`` list, checked against the rows' fields (a usage
    error naming the unknown ones and the valid ones), else ``default``."""
    ctx = click.get_current_context(silent=True)
    cols = ctx.meta.get("columns") if ctx is not None else None
    if not cols:
        return default
    known = list(dict.fromkeys(k for r in rows for k in r))
    unknown = [c for c in cols if c not in known]
    if unknown and rows:
        raise click.BadParameter(f"no column(s) {', '.join(map(repr, unknown))}; "
                                 f"the rows have {', '.join(known)}", param_hint="--columns")
    return cols


def select(rows: list, columns: list | None) -> list:
    """Rows cut down to ``columns`` (for csv and jsonl under ``--columns``)."""
    if not columns:
        return rows
    return [{c: r.get(c) for c in columns} for r in rows]


def format_rows(rows: list, columns: list | None = None) -> str:
    """Rows as an aligned table: ``--columns`` else ``columns``, cut at
    :data:`CELL_WIDTH` characters unless ``--wide``."""
    from persona_index.display import text_table

    ctx = click.get_current_context(silent=True)
    wide = bool(ctx is not None and ctx.meta.get("wide"))
    return text_table(rows, chosen_columns(rows, columns), None if wide else CELL_WIDTH)


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

    return column_options(wrapper)


def emit_rows(rows: list, fmt: str) -> None:
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
        emit_rows(rows, fmt)
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
    return format_rows(rows, columns)
