"""Oversample, then curate: generate for M x K personas, keep the K outputs that cover.

``synthesize(..., oversample=M)`` (``--oversample M``) treats the personas it
is given as the oversampled pool: draw them with ``sample -n M*K`` (or a
session of that size), and the run keeps ``K = floor(persona requests / M)``
rows (persona requests = personas x templates x ``n``, after the missing
rule). ``synthesize`` draws nothing itself: ``sample`` is the one command
that draws, so a session's rule that no persona is handed out twice stays in
one place, and the plan of a run (hence its resume) depends on its inputs
only.

After the run (every run: a rerun that sends nothing curates again, so a
resumed run's curation covers the rows it added), the raw file is read back
and :func:`persona_index.curate.curate_file` keeps K of its persona rows
(control rows are not candidates; failed rows are dropped; the last row per
``custom_id`` counts; no coherence filter), with the curation default, one
equal quota per template when the run has several. Nothing generated is
lost: the raw file keeps every row; the kept rows go to a file of their own
(default ``RAW.curated.jsonl``) with a curation manifest beside it
(``RAW.curated.manifest.json``: ``curate --replay`` reruns it). When fewer
than K rows are left (failed or unsent requests), all of them are kept and
the summary's ``curation.shortfall`` says how many are missing; the CLI then
exits 1, and a rerun sends the failed rows again and curates again.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import InvalidQueryError


def check_oversample(m) -> float:
    """``m`` as a number >= 1, else :class:`InvalidQueryError`.

    Examples
    --------
    >>> check_oversample(2), check_oversample(1.5)
    (2.0, 1.5)
    >>> check_oversample(0.5)
    Traceback (most recent call last):
    ...
    persona_index.errors.InvalidQueryError: oversample must be a number >= 1, not 0.5
    """
    if isinstance(m, bool) or not isinstance(m, (int, float)) or not 1 <= m < math.inf:
        raise InvalidQueryError(f"oversample must be a number >= 1, not {m!r}")
    return float(m)


def keep_count(persona_requests: int, m: float) -> int:
    """K: how many rows a run of ``persona_requests`` persona requests keeps
    at ``oversample=m`` (the floor of their ratio).

    Examples
    --------
    >>> keep_count(200, 2), keep_count(201, 2), keep_count(10, 4), keep_count(7, 1)
    (100, 100, 2, 7)
    """
    return int(persona_requests // m)


def curated_paths(out: str, curated_out: str | None = None) -> tuple[str, str]:
    """Where the kept rows and their manifest go: ``curated_out`` (default
    RAW with ``.curated.jsonl``) and the same with ``.manifest.json``.

    Examples
    --------
    >>> curated_paths("runs/raw.jsonl")
    ('runs/raw.curated.jsonl', 'runs/raw.curated.manifest.json')
    >>> curated_paths("raw.jsonl", "kept.jsonl")
    ('kept.jsonl', 'kept.manifest.json')
    """
    from ..sampling import manifest_path_for

    rows = curated_out or str(Path(out).with_suffix("")) + ".curated.jsonl"
    return rows, manifest_path_for(rows)


def curate_run(out: str, k: int, *, templates: int = 1, embedder=None,
               curated_out: str | None = None, seed=0, m: float | None = None) -> dict:
    """Keep ``k`` of the persona rows in the raw file ``out`` (see the module
    docstring); write them and the manifest. Returns the summary's
    ``curation`` entry: ``k``, ``kept``, ``shortfall``, ``candidates``,
    ``dropped``, the two paths and the strategy.

    Examples
    --------
    >>> import json, os, tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> raw = os.path.join(tempfile.mkdtemp(), "raw.jsonl")
    >>> rows = [{"custom_id": f"p{i}:ask", "persona": f"p{i}", "response": f"reply {i}",
    ...          "template": "ask", "status": "ok"} for i in range(6)]
    >>> rows.append({"custom_id": "control:ask:0", "arm": "control", "persona": None,
    ...              "response": "plain reply", "template": "ask", "status": "ok"})
    >>> _ = open(raw, "w").write("".join(json.dumps(r) + "\\n" for r in rows))
    >>> c = curate_run(raw, 3, embedder=HashEmbedder(16))
    >>> c["kept"], c["shortfall"], c["candidates"], os.path.basename(c["out"])
    (3, 0, 6, 'raw.curated.jsonl')
    >>> curate_run(raw, 9, embedder=HashEmbedder(16))["shortfall"]  # 6 persona rows: keeps 6
    3
    """
    from ..curate import DEFAULT_CURATION, curate_file, write_curation

    rows_path, manifest_path = curated_paths(out, curated_out)
    summary = {"k": k, "m": m, "kept": 0, "shortfall": k, "candidates": 0,
               "out": rows_path, "manifest": manifest_path, "strategy": DEFAULT_CURATION}
    if k < 1 or not Path(out).is_file() or Path(out).stat().st_size == 0:
        summary.update(out=None, manifest=None)  # nothing to curate: nothing written
        return summary
    if embedder is None:
        from ..embed import get_embedder

        embedder = get_embedder()
    cur = curate_file(out, k, fmt="jsonl", embedder=embedder, exclude_control=True,
                      at_most=True, by=["template"] if templates > 1 else None, seed=seed)
    write_curation(cur, rows_path, manifest_out=manifest_path, inputs=[out])
    counts = cur.manifest["counts"]
    summary.update(kept=counts["kept"], shortfall=counts["shortfall"],
                   candidates=counts["candidates"], dropped=cur.dropped,
                   control_rows=counts["control"])
    return summary
