"""Row output for the CLI: which columns a table shows and how wide.

Every row-printing command takes ``--columns a,b,c`` (exactly these, in this
order; ``--format csv/jsonl`` too) and ``--wide`` (no cutting of long text).
Without ``--columns``, a table shows the id and text, then the attributes
the command was asked about (``--by``, ``--target``, ``--where``), then
other attributes up to three in all.
"""

from __future__ import annotations

import functools
import re

import click

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
