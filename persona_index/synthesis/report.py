"""Coherence filter and output report: did persona coverage become output coverage?"""

from __future__ import annotations


import numpy as np

from ..errors import InvalidQueryError
from ..metrics import mean_pairwise_distance, vendi_score


def coherence(P: np.ndarray, O: np.ndarray) -> np.ndarray:
    """The coherence score of each output: the cosine similarity of its
    persona's embedding (row of ``P``) to its response's (row of ``O``), both
    unit rows. ``outputs-report --threshold`` and ``curate --coherence`` use it.

    Examples
    --------
    >>> coherence(np.eye(2, dtype=np.float32), np.array([[1, 0], [1, 0]], dtype=np.float32))
    array([1., 0.], dtype=float32)
    """
    return (P * O).sum(axis=1)


def output_report(rows: list[dict], embedder, *, threshold: float = 0.2,
                  near_dup: float = 0.95, by: str | None = None) -> tuple[dict, list[dict]]:
    """Embed each ok row's persona and response; keep rows whose cosine
    similarity is at least ``threshold``. Returns (report, kept rows). With
    ``by`` (a row field), the report's ``audit`` holds
    :func:`persona_index.audit.audit` of the ok rows by that field.

    Rows are read as :func:`~persona_index.synthesis.rows.last_rows` reads
    them: a rerun appends a new row for a failed ``custom_id``, and only the
    last row of each id counts. Figures are rounded to 4 decimals.

    Examples
    --------
    >>> from persona_index.embed import HashEmbedder
    >>> rows = [{"persona": "a nurse", "response": "a nurse"},  # coherence 1
    ...         {"persona": "a baker", "response": "zzz"},
    ...         {"persona": "a poet", "status": "failed", "response": None}]
    >>> rep, kept = output_report(rows, HashEmbedder(dim=16), threshold=0.5)
    >>> rep["rows"], rep["ok"], rep["kept"]
    (3, 2, 1)
    >>> kept
    [{'persona': 'a nurse', 'response': 'a nurse', 'coherence': 1.0}]
    >>> retried = [{"custom_id": "a", "persona": "a poet", "status": "failed", "response": None},
    ...            {"custom_id": "a", "persona": "a poet", "response": "a poet"}]
    >>> output_report(retried, HashEmbedder(dim=16))[0]["rows"]  # the last row per id counts
    1
    """
    from .rows import last_rows

    for i, r in enumerate(rows, 1):  # rows as `synthesize` writes them; others are named
        if not isinstance(r, dict):
            raise InvalidQueryError(f"output row {i} is not a JSON object")
        control = r.get("arm") == "control"  # no persona: needs a response only
        if r.get("status", "ok") == "ok" and r.get("response") and not (
                (control or isinstance(r.get("persona"), str)) and isinstance(r["response"], str)):
            raise InvalidQueryError(f"output row {i} needs a 'persona' and a 'response' text")
    rows = last_rows(rows)
    ok_all = [r for r in rows if r.get("status", "ok") == "ok" and r.get("response")]
    ok = [r for r in ok_all if r.get("arm") != "control"]
    ctrl = [r for r in ok_all if r.get("arm") == "control"]  # out of the coherence filter
    if by is not None and not any(by in r for r in rows):
        raise InvalidQueryError(f"no output row has the field {by!r} to audit by")
    if not ok:
        return {"rows": len(rows), "ok": 0, "kept": len(ctrl), "control": len(ctrl)}, ctrl
    P = embedder.encode([r["persona"] for r in ok])
    O = embedder.encode([r["response"] for r in ok])
    sim = coherence(P, O)
    keep = sim >= threshold
    kept = [dict(r, coherence=round(float(s), 4)) for r, s, k in zip(ok, sim, keep) if k]
    Ok = O[keep]
    dup_rate = None
    if len(Ok) > 1:
        S = Ok @ Ok.T
        np.fill_diagonal(S, -np.inf)
        dup_rate = float((S.max(axis=1) >= near_dup).mean())
    q = np.quantile(sim, [0.05, 0.25, 0.5, 0.75, 0.95]).round(4).tolist()
    rep = {"rows": len(rows), "ok": len(ok), "kept": int(keep.sum()), "threshold": threshold,
           "coherence_quantiles": dict(zip(["p05", "p25", "p50", "p75", "p95"], q)),
           "output_vendi": _r4(vendi_score(Ok)) if len(Ok) else None,
           "output_mean_pairwise_distance": _r4(mean_pairwise_distance(Ok)) if len(Ok) else None,
           "output_near_duplicate_rate": _r4(dup_rate)}
    if ctrl:
        from ..audit import compare_arms

        rep["control"] = len(ctrl)
        C = embedder.encode([r["response"] for r in ctrl])
        # the bootstrap draws rows by position: in custom_id order, so a file's
        # completion order (which differs run to run) does not move the interval
        rep["control_comparison"] = compare_arms(O[_by_id(ok)], C[_by_id(ctrl)])
        kept = kept + ctrl
    if by is not None:
        from ..audit import audit

        rep["audit"] = {"by": by, "strata": audit([r["response"] for r in ok], O,
                                                  [r.get(by) for r in ok], coherence=sim)}
    return rep, kept


def _by_id(rows: list) -> list:
    """Positions of ``rows`` sorted by ``custom_id`` (rows without one keep file order)."""
    return sorted(range(len(rows)), key=lambda i: str(rows[i].get("custom_id") or ""))


def _r4(x):
    return None if x is None else round(float(x), 4)
