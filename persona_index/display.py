"""How results read: the rows and tables behind ``repr`` and notebook
``_repr_html_`` of :class:`~persona_index.snapshot.Hits`,
:class:`~persona_index.sampling.Batch` and :class:`Coverage`, and the
coverage table the CLI prints.

Examples
--------
>>> print(text_table([{"id": "a1", "text": "a nurse", "n": 3}], max_width=5))
id  text   n
--  -----  -
a1  a nu…  3
>>> html_table([{"id": "<b>"}])
'<table><thead><tr><th>id</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>'
"""

from __future__ import annotations

import html
import math

#: how many rows a repr shows before "... N more"
REPR_ROWS = 10
#: a cell's width in a repr (the CLI's --wide shows everything)
REPR_WIDTH = 60


def cell(v, max_width: int | None = None) -> str:
    """One table cell: floats with 4 decimals, None empty, long text cut with an ellipsis."""
    if isinstance(v, float):
        v = "—" if not math.isfinite(v) else f"{v:.4f}"
    s = "" if v is None else str(v)
    s = " ".join(s.split()) if "\n" in s or "\t" in s else s
    return s if max_width is None or len(s) <= max_width else s[: max_width - 1] + "…"


def text_table(rows: list, columns: list | None = None, max_width: int | None = 70) -> str:
    """Rows (dicts) as aligned text columns; ``max_width`` None: no cutting."""
    if not rows:
        return "(no rows)"
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))
    cells = [[cell(r.get(c), max_width) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def html_table(rows: list, columns: list | None = None, caption: str | None = None) -> str:
    """Rows (dicts) as an HTML table (escaped), for notebooks."""
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(r.get(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def clipped(rows: list, limit: int = REPR_ROWS) -> tuple[list, str]:
    """The first ``limit`` rows and a note on how many are left out ('' if none)."""
    more = len(rows) - limit
    return rows[:limit], (f"... {more} more" if more > 0 else "")


def coverage_rows(report: dict) -> list[dict]:
    """The rows of a coverage table: each metric, the sample's value and,
    when the report holds a ``uniform`` comparison, the uniform batches'
    mean ± sd, z (signed so that positive is better than uniform) and which
    way is better. The balance of each attribute follows.

    >>> rows = coverage_rows({"n": 2, "vendi": 1.5, "kcenter_radius": 0.4,
    ...     "uniform": {"draws": 3, "mean": {"vendi": 1.2, "kcenter_radius": 0.5},
    ...                 "sd": {"vendi": 0.1, "kcenter_radius": 0.05},
    ...                 "z": {"vendi": 3.0, "kcenter_radius": 2.0}}})
    >>> [(r["metric"], r["uniform (mean ± sd)"], r["z"], r["better"]) for r in rows]
    [('vendi', '1.2000 ± 0.1000', '+3.00', 'higher ↑'), ('kcenter_radius', '0.5000 ± 0.0500', '+2.00', 'lower ↓')]
    """
    from .metrics import BETTER

    uni = report.get("uniform")
    rows = []
    for k, v in report.items():
        if not isinstance(v, float):
            continue
        row = {"metric": k, "sample": v}
        if uni:
            mean, sd, z = uni["mean"].get(k), uni["sd"].get(k), uni["z"].get(k)
            row["uniform (mean ± sd)"] = (f"{cell(mean)} ± {cell(sd)}" if mean is not None
                                          else "")
            row["z"] = "—" if z is None or not math.isfinite(z) else f"{z:+.2f}"
        better = BETTER.get(k)
        row["better"] = {1: "higher ↑", -1: "lower ↓"}.get(better, "")
        rows.append(row)
    for name, v in (report.get("attribute_balance") or {}).items():
        key = f"balance[{name}]"
        row = {"metric": key, "sample": v}
        if uni and key in uni["mean"]:
            z = uni["z"].get(key)
            row["uniform (mean ± sd)"] = f"{cell(uni['mean'][key])} ± {cell(uni['sd'][key])}"
            row["z"] = "—" if z is None or not math.isfinite(z) else f"{z:+.2f}"
        rows.append({**row, "better": "higher ↑"})
    return rows
