"""Curation: keep the K generated outputs that cover *output* space.

Covering persona space barely reaches the outputs (the benchmark's
``curation`` section measures it); selecting among generated outputs does.
:func:`curate` takes output rows (what ``synthesize`` writes, or any table
with a response field), and

1. keys each row by its ``custom_id`` (a row without one by its line); where
   a key repeats (a rerun appended it again) the last row wins;
2. drops failed rows (``status`` other than ``ok``, or no response text);
3. embeds the responses, and with ``coherence=T`` drops the rows whose
   response is less similar than ``T`` to their persona (the coherence score
   of ``outputs-report``; control rows, ``"arm": "control"``, are exempt);
4. keeps ``k`` rows that cover the response embeddings: the curation default
   (:data:`DEFAULT_CURATION`, see :mod:`persona_index.samplers.medoids`) or
   any registered strategy; ``score_field`` adds ``score_weight`` times the
   standardised score to each pick's criterion; ``by`` gives each stratum of
   an attribute an equal quota, as ``sample --by`` does.

Every dropped row is counted (``failed``, ``incoherent``, ``repeated``), and
a manifest (the input's sha256, the parameters, the kept keys) lets
:func:`replay_curation` rerun it and check it gets the same rows.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import CurationError, ManifestError, StrategyParameterError

MANIFEST_KIND = "curation"
MANIFEST_VERSION = 1
#: the selection ``curate`` uses when no strategy is named
DEFAULT_CURATION = "medoids"
#: ``score_weight`` when a score field is named and no weight is given
DEFAULT_SCORE_WEIGHT = 0.5
#: strategies whose per-pick criterion takes the score term
SCORED_STRATEGIES = ("medoids", "herding")


@dataclass
class Curation:
    """What :func:`curate` returns: the kept input rows (unchanged, in input
    order), the dropped counts, the manifest and the coverage of the kept rows.

    Examples
    --------
    >>> c = Curation(kept=[{"response": "a"}], dropped={"failed": 0}, manifest={"k": 1})
    >>> sorted(c.to_dict())
    ['coverage', 'dropped', 'kept', 'manifest']
    """

    kept: list
    dropped: dict
    manifest: dict
    coverage: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kept": self.kept, "dropped": self.dropped, "manifest": self.manifest,
                "coverage": self.coverage}


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks.

    Examples
    --------
    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "x")
    >>> _ = open(p, "wb").write(b"abc")
    >>> file_sha256(p)[:12]
    'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _text(v) -> str | None:
    """A response or persona value as text: strings as they are, numbers and
    booleans and JSON values as JSON; None and blank strings as None."""
    if v is None:
        return None
    if isinstance(v, str):
        return v if v.strip() else None
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)


def _number(v):
    """A score as a finite float, or None (CSV gives strings; booleans are not scores)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(float(v)):
        return float(v)
    return None


def _failed(row: dict, text: str | None) -> bool:
    status = row.get("status", "ok")
    return text is None or (status is not None and str(status).lower() != "ok")


def _check_options(k, coherence, score_field, score_weight, strategy, params, by):
    """Validate the parameters (StrategyParameterError: the CLI's exit 2)."""
    from .samplers.registry import validate_params

    bad = StrategyParameterError
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise bad(f"k must be a whole number >= 1, got {k!r}")
    if coherence is not None and (isinstance(coherence, bool) or not isinstance(coherence, (int, float))
                                  or not -1.0 <= coherence <= 1.0):
        raise bad(f"coherence must be a cosine similarity in [-1, 1], got {coherence!r}")
    if score_weight is not None:
        if score_field is None:
            raise bad("score_weight needs a score_field")
        if isinstance(score_weight, bool) or not isinstance(score_weight, (int, float)) or \
                not math.isfinite(score_weight) or score_weight < 0:
            raise bad(f"score_weight must be a finite number >= 0, got {score_weight!r}")
    strategy = strategy or DEFAULT_CURATION
    if strategy == "stratified":
        raise bad("strategy 'stratified' needs attributes of the personas; to balance outputs "
                  "by a field, give by=[...] with another strategy")
    params = validate_params(strategy, params or {})
    if strategy == "herding":  # the rule recorded, as draw() does
        from .samplers.herding import recorded_params

        params = recorded_params(params)
    if score_field is not None and strategy not in SCORED_STRATEGIES:
        raise bad(f"score_field works with the strategies {', '.join(SCORED_STRATEGIES)}, "
                  f"not {strategy!r}")
    by = [by] if isinstance(by, str) else list(by or [])
    if not all(isinstance(b, str) and b for b in by):
        raise bad(f"by must be field names, got {by!r}")
    return strategy, params, by


def curate(rows: Iterable, k: int, *, embedder=None, persona_field: str | None = None,
           response_field: str = "response", id_field: str = "custom_id",
           coherence: float | None = None, strategy: str | None = None,
           params: Mapping | None = None, score_field: str | None = None,
           score_weight: float | None = None, by: Sequence[str] | str | None = None,
           seed=0, source: str = "<rows>", progress: bool = False, index=None,
           exclude_control: bool = False, at_most: bool = False) -> Curation:
    """Keep ``k`` output rows that cover output space (see the module docstring).

    Parameters
    ----------
    rows : dicts, or ``(line, dict)`` pairs as :func:`persona_index.ingest.iter_file`
        yields them (the line keys rows without an ``id_field`` and names bad rows).
    k : rows to keep, 1 <= k <= the rows left after dropping.
    embedder : an :class:`~persona_index.embed.Embedder` (default: the MiniLM).
    persona_field : the persona text field; default ``persona``, needed only for
        ``coherence`` (a named field must exist).
    response_field, id_field : the response text and the row key fields.
    coherence : drop rows whose persona . response cosine is below this (off
        when None; control rows, ``arm == "control"``, are never dropped).
    strategy, params : the selection (default :data:`DEFAULT_CURATION`) and its
        parameters, checked against the registry.
    score_field, score_weight : prefer higher scores: ``score_weight`` (default
        0.5) times the score's z over the candidates is added to each pick's
        criterion (the default strategy and herding).
    by : field(s) whose strata get equal quotas (largest remainder; a short
        stratum gives what it has, with a warning). A field no row has is read
        from ``index`` (a :class:`~persona_index.store.PersonaIndex`): the
        stored attribute of each row's ``persona_id``; the manifest's
        ``by_source`` says where each came from.
    seed : None, int or Generator; normalised with ``np.random.default_rng``.
        The default selection on fewer than 4,096 outputs uses no randomness.
    exclude_control : leave control rows (``arm == "control"``) out of the
        candidates (``synthesize --oversample`` keeps them in the raw file only).
    at_most : keep ``min(k, rows left)`` instead of raising when fewer than
        ``k`` are left; the manifest's counts give the ``shortfall``.

    Returns
    -------
    :class:`Curation`; ``kept`` rows are the input rows unchanged, in input order.

    Examples
    --------
    >>> from persona_index.embed import HashEmbedder
    >>> rows = [{"custom_id": f"p{i % 6}", "persona": "p", "response": f"answer {i % 6}"}
    ...         for i in range(8)]  # p0 and p1 come twice: the later rows win
    >>> rows.append({"custom_id": "p9", "persona": "p", "response": None, "status": "failed"})
    >>> c = curate(rows, 3, embedder=HashEmbedder(16))
    >>> len(c.kept), c.dropped
    (3, {'failed': 1, 'incoherent': 0, 'repeated': 2})
    >>> c.manifest["kept"] == [r["custom_id"] for r in c.kept]
    True
    >>> curate(rows, 7, embedder=HashEmbedder(16))
    Traceback (most recent call last):
    ...
    persona_index.errors.CurationError: k=7 is larger than the 6 rows left (of 9: 1 failed, 0 incoherent, 2 repeated)
    >>> curate(rows, 7, embedder=HashEmbedder(16), at_most=True).manifest["counts"]["shortfall"]
    1
    """
    strategy, params, by = _check_options(k, coherence, score_field, score_weight, strategy,
                                          params, by)
    if score_field is not None and score_weight is None:
        score_weight = DEFAULT_SCORE_WEIGHT
    rng = np.random.default_rng(seed)
    seed_rec = seed if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
    if embedder is None:
        from .embed import get_embedder

        embedder = get_embedder()
    rows_in, keyed, repeated = _keyed(rows, source, id_field)
    needed = [response_field] + ([persona_field or "persona"] if coherence is not None or
                                 persona_field is not None else [])
    by_source, snap = _check_fields(rows_in, needed + ([score_field] if score_field else []),
                                    by, source, index)
    live, texts, failed, control = _live(keyed, response_field, exclude_control)
    O = embedder.encode(texts, progress=progress) if texts else np.zeros((0, 1), np.float32)
    O = np.asarray(O, dtype=np.float32)
    live, O, incoherent = _coherence_filter(live, O, coherence, persona_field or "persona",
                                            embedder, source, progress)
    dropped = {"failed": failed, "incoherent": incoherent, "repeated": repeated}
    kk = min(k, len(live)) if at_most else k
    if kk > len(live):
        raise CurationError(f"k={k} is larger than the {len(live)} rows left (of "
                            f"{len(rows_in)}: {failed} failed, {incoherent} incoherent, "
                            f"{repeated} repeated)")
    bonus, s = _scores(live, score_field, score_weight, source)
    strata = _strata(live, by, by_source, snap)
    picks = (select_outputs(O, kk, strategy=strategy, params=params, bonus=bonus, strata=strata,
                            rng=rng) if kk else np.zeros(0, dtype=np.int64))
    chosen = sorted(int(i) for i in picks)
    cov = _coverage(O, np.asarray(chosen, dtype=np.int64)) if kk else {}
    if bonus is not None and kk:
        cov["mean_score_kept"] = float(s[picks].mean())
        cov["mean_score_candidates"] = float(s.mean())
    manifest = {
        "kind": MANIFEST_KIND, "manifest_version": MANIFEST_VERSION,
        "params": {"k": int(k), "strategy": strategy, "strategy_params": params,
                   "response_field": response_field, "persona_field": persona_field,
                   "id_field": id_field, "coherence": coherence, "score_field": score_field,
                   "score_weight": score_weight, "by": by, "by_source": by_source,
                   "seed": seed_rec, "embed_model": getattr(embedder, "name", None),
                   "exclude_control": exclude_control, "at_most": at_most},
        "counts": {"rows": len(rows_in), "candidates": len(live), "kept": len(chosen),
                   **dropped, "control": control, "shortfall": k - len(chosen)},
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kept": [live[i][0] for i in chosen],
    }
    return Curation(kept=[live[i][2] for i in chosen], dropped=dropped, manifest=manifest,
                    coverage=cov)


def _keyed(rows, source: str, id_field: str):
    """The input as (line, row) pairs (each a dict, else an error naming its
    line), and the rows that count (:func:`~persona_index.synthesis.rows.keyed_rows`)."""
    from .synthesis.rows import keyed_rows

    numbered = []
    for i, r in enumerate(rows, 1):
        line, rec = r if isinstance(r, tuple) else (i, r)
        if not isinstance(rec, dict):
            raise CurationError(f"{source}:{line}: expected an object, got {type(rec).__name__}")
        numbered.append((line, rec))
    if not numbered:
        raise CurationError(f"{source}: no rows")
    keyed, repeated = keyed_rows(numbered, id_field)
    return numbered, keyed, repeated


def _check_fields(numbered, needed, by, source, index):
    """Raise unless some row has each needed field; a ``by`` field no row has
    comes from the store's attribute of the same name, read from one snapshot.
    Returns (field -> where it comes from: ``"rows"``, or ``{"store": path,
    "table_version": v}``; the snapshot, or None)."""
    fields = set()
    for _, rec in numbered:
        fields.update(rec)
    for f in needed:
        if f not in fields:
            raise CurationError(f"{source}: no row has the field {f!r}; the fields are "
                                f"{', '.join(sorted(map(str, fields))[:20])}")
    out, snap = {}, None
    for b in by:
        if b in fields:
            out[b] = "rows"
            continue
        if index is None:
            raise CurationError(f"{source}: no row has the field {b!r} to balance by, and no "
                                "store was given (index) to read it by persona_id")
        snap = snap or (index.snapshot() if index.exists else None)
        attrs = list(snap.attributes) if snap is not None else []
        if b not in attrs:
            raise CurationError(f"{source}: no row has the field {b!r}, and the store at "
                                f"{index.path} has no attribute {b!r} (its attributes: "
                                f"{', '.join(attrs) or 'none'})")
        if "persona_id" not in fields:
            raise CurationError(f"{source}: no row has the field {b!r}, nor a 'persona_id' to "
                                f"read the store's {b!r} by")
        out[b] = {"store": str(index.path), "table_version": int(snap.version)}
    return out, snap


def _live(keyed, response_field: str, exclude_control: bool):
    """The rows that are candidates (not failed, and not control rows when
    ``exclude_control``): as (key, line, row), their response texts, and how
    many failed and control rows were left out."""
    live, texts, failed, control = [], [], 0, 0
    for item in keyed:
        rec = item[2]
        if exclude_control and rec.get("arm") == "control":
            control += 1
            continue
        t = _text(rec.get(response_field))
        if _failed(rec, t):
            failed += 1
            continue
        live.append(item)
        texts.append(t)
    return live, texts, failed, control


def _coherence_filter(live, O, coherence, pf, embedder, source, progress):
    """Drop the rows whose response is less similar than ``coherence`` to
    their persona (control rows are exempt); returns (live, O, dropped)."""
    if coherence is None or not live:
        return live, O, 0
    control = np.array([item[2].get("arm") == "control" for item in live])
    ptexts = [_text(item[2].get(pf)) for item in live]
    missing = [item[1] for item, t, c in zip(live, ptexts, control) if t is None and not c]
    if missing:
        raise CurationError(f"{source}:{missing[0]}: no {pf!r} text to measure coherence "
                            f"against ({len(missing)} such row(s))")
    sim = np.ones(len(live), dtype=np.float32)
    idx = np.flatnonzero(~control)
    if len(idx):
        from .synthesis.report import coherence as coherence_of

        P = np.asarray(embedder.encode([ptexts[i] for i in idx], progress=progress),
                       dtype=np.float32)
        sim[idx] = coherence_of(P, O[idx])
    keep = control | (sim >= coherence)
    return [item for item, kk in zip(live, keep) if kk], O[keep], int((~keep).sum())


def _scores(live, score_field, score_weight, source):
    """The score term (``score_weight`` x the score's z) and the scores, or (None, None)."""
    if score_field is None:
        return None, None
    vals = []
    for _, line, rec in live:
        v = _number(rec.get(score_field))
        if v is None:
            raise CurationError(f"{source}:{line}: {score_field!r} is not a finite number "
                                f"({rec.get(score_field)!r})")
        vals.append(v)
    s = np.asarray(vals)
    sd = s.std() if len(s) else 0.0
    z = (s - s.mean()) / (sd if sd > 0 else 1.0) if len(s) else s
    return np.float32(score_weight) * z.astype(np.float32), s


def _strata(live, by, by_source, snap):
    """field -> the column of each candidate's value (from the row, or the
    store's attribute of its ``persona_id``), or None without ``by``."""
    if not by:
        return None
    out = {}
    for b in by:
        if by_source[b] == "rows":
            out[b] = np.array([rec.get(b) for _, _, rec in live], dtype=object)
            continue
        ids = [rec.get("persona_id") for _, _, rec in live]
        want = sorted({i for i in ids if isinstance(i, str)})
        got = {r["id"]: r.get(b) for r in snap.get(want)} if want else {}
        out[b] = np.array([got.get(i) if isinstance(i, str) else None for i in ids],
                          dtype=object)
    return out


def _coverage(O: np.ndarray, picks: np.ndarray) -> dict:
    """How the kept outputs cover the candidates: Vendi of both, the kept
    share of the candidates' Vendi, and the mean cosine distance from a
    candidate to its nearest kept output."""
    from .metrics import kcenter_radius, vendi_score

    if len(O) == 0:
        return {}
    _, mean_near = kcenter_radius(O[picks], O)
    return {"vendi_kept": vendi_score(O[picks]), "vendi_candidates": vendi_score(O),
            "mean_nearest_distance": mean_near}


def select_outputs(O: np.ndarray, k: int, *, strategy: str = DEFAULT_CURATION,
                   params: Mapping | None = None, bonus: np.ndarray | None = None,
                   strata: Mapping[str, np.ndarray] | None = None, rng=None) -> np.ndarray:
    """``k`` distinct rows of the response embeddings ``O`` ((n, d) unit
    float32): the strategy's picks, with ``bonus`` (one number per row, added
    to each pick's criterion) and equal quotas over ``strata`` (name ->
    length-n column) when given. Assumes valid input (see :func:`curate`).

    Examples
    --------
    >>> X = np.eye(6, dtype=np.float32)
    >>> picks = select_outputs(X, 3, strata={"g": np.array(list("aabbcc"), dtype=object)},
    ...                        strategy="uniform", rng=np.random.default_rng(0))
    >>> sorted((picks // 2).tolist())  # one row of each stratum
    [0, 1, 2]
    """
    rng = np.random.default_rng(rng)
    params = dict(params or {})
    if strata:
        from .samplers.stratified import allocate, strata_codes

        inv, labels = strata_codes(strata, list(strata))
        sizes = np.bincount(inv, minlength=len(labels))
        quota = allocate(sizes, np.ones(len(labels)), k, rng)
        out = []
        for s in np.flatnonzero(quota):
            members = np.flatnonzero(inv == s)
            sub = select_outputs(O[members], int(quota[s]), strategy=strategy, params=params,
                                 bonus=None if bonus is None else bonus[members], rng=rng)
            out.append(members[sub])
        return np.concatenate(out)
    if bonus is not None:
        if strategy == "medoids":
            from .samplers.medoids import medoids_select

            return medoids_select(O, k, rng=rng, bonus=bonus, **params)
        from .samplers.herding import herding_select

        p = {key: v for key, v in params.items() if key != "device"}
        return herding_select(O, k, rng=rng, bonus=bonus, **p)
    from .samplers.base import sample

    return sample(O, k, strategy, seed=rng, **params)


def curate_file(path, k: int, *, fmt: str | None = None, **kw) -> Curation:
    """:func:`curate` over a jsonl, csv or parquet file; the manifest also
    records the file (path, sha256, format).

    Examples
    --------
    >>> import os, tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> p = os.path.join(tempfile.mkdtemp(), "out.jsonl")
    >>> with open(p, "w") as fh:
    ...     for i in range(5):
    ...         _ = fh.write(json.dumps({"persona": "p", "output": f"spec {i}"}) + "\\n")
    >>> c = curate_file(p, 2, response_field="output", embedder=HashEmbedder(16))
    >>> c.manifest["kept"][0].startswith("line:"), c.manifest["input"]["sha256"] == file_sha256(p)
    (True, True)
    >>> curate_file(p, 2, response_field="response", embedder=HashEmbedder(16))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.CurationError: ...out.jsonl: no row has the field 'response'; the fields are output, persona
    """
    from .readers import _detect_format, iter_file

    path = str(path)
    fmt = _detect_format(path, fmt)
    if fmt not in ("jsonl", "csv", "parquet"):
        raise CurationError(f"{path}: curate reads jsonl, csv or parquet, not {fmt}")
    digest = file_sha256(path)
    cur = curate(list(iter_file(path, fmt)), k, source=path, **kw)
    cur.manifest["input"] = {"path": path, "sha256": digest, "format": fmt}
    return cur


def check_curation_manifest(manifest) -> None:
    """Raise :class:`~persona_index.errors.ManifestError` unless ``manifest``
    is a curation manifest this version can replay.

    Examples
    --------
    >>> check_curation_manifest({"kind": "sample"})
    Traceback (most recent call last):
    ...
    persona_index.errors.ManifestError: not a curation manifest (kind 'sample')
    """
    if not isinstance(manifest, dict) or manifest.get("kind") != MANIFEST_KIND:
        kind = manifest.get("kind") if isinstance(manifest, dict) else type(manifest).__name__
        raise ManifestError(f"not a curation manifest (kind {kind!r})")
    if manifest.get("manifest_version") != MANIFEST_VERSION:
        raise ManifestError(f"curation manifest version {manifest.get('manifest_version')!r}; "
                            f"this version reads {MANIFEST_VERSION}")
    for key in ("params", "input", "kept"):
        if key not in manifest:
            raise ManifestError(f"curation manifest without {key!r}")


def load_curation_manifest(path) -> dict:
    """A curation manifest file, read and checked."""
    from .sampling import read_manifest_file

    return read_manifest_file(path, check_curation_manifest)


def _replayed_params(p: dict) -> dict | None:
    """A curation manifest's strategy parameters; herding without ``ramp`` or
    ``candidates_per_pick`` was the rule of its time (:func:`legacy_params`)."""
    sp = p.get("strategy_params")
    if p.get("strategy") == "herding":
        from .samplers.herding import legacy_params

        return legacy_params(sp)
    return sp


def replay_curation(manifest: dict, *, path=None, embedder=None) -> Curation:
    """Rerun a curation manifest on its input (``path``, default the one it
    names): the file must have the recorded sha256 and the kept keys must come
    out the same, else :class:`~persona_index.errors.ManifestError`.

    Examples
    --------
    >>> import os, tempfile
    >>> from persona_index.embed import HashEmbedder
    >>> p = os.path.join(tempfile.mkdtemp(), "out.jsonl")
    >>> with open(p, "w") as fh:
    ...     for i in range(9):
    ...         _ = fh.write(json.dumps({"custom_id": f"c{i}", "response": f"r {i}"}) + "\\n")
    >>> c = curate_file(p, 4, embedder=HashEmbedder(16), strategy="uniform", seed=3)
    >>> replay_curation(c.manifest, embedder=HashEmbedder(16)).manifest["kept"] == c.manifest["kept"]
    True
    >>> _ = open(p, "a").write(json.dumps({"custom_id": "c9", "response": "new"}) + "\\n")
    >>> replay_curation(c.manifest, embedder=HashEmbedder(16))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    persona_index.errors.ManifestError: ...out.jsonl has changed since the curation (sha256 ... now ...)
    """
    check_curation_manifest(manifest)
    inp = manifest["input"]
    path = str(path or inp["path"])
    now = file_sha256(path)
    if now != inp.get("sha256"):
        raise ManifestError(f"{path} has changed since the curation (sha256 "
                            f"{str(inp.get('sha256'))[:12]}, now {now[:12]})")
    p = manifest["params"]
    if embedder is None:
        from .embed import get_embedder

        embedder = get_embedder(p.get("embed_model"))
    elif p.get("embed_model") and getattr(embedder, "name", None) != p["embed_model"]:
        raise ManifestError(f"the manifest was made with the model {p['embed_model']!r}, not "
                            f"{getattr(embedder, 'name', None)!r}")
    stores = {(v["store"], v["table_version"]) for v in (p.get("by_source") or {}).values()
              if isinstance(v, dict)}
    index = None
    if stores:  # a by attribute came from a store: the same table version again
        from .store import PersonaIndex

        (db, version), = stores
        index = PersonaIndex(db, version=version, must_exist=True)
    cur = curate_file(path, p["k"], fmt=inp.get("format"), embedder=embedder, index=index,
                      exclude_control=bool(p.get("exclude_control")),
                      at_most=bool(p.get("at_most")),
                      persona_field=p.get("persona_field"),
                      response_field=p.get("response_field", "response"),
                      id_field=p.get("id_field", "custom_id"), coherence=p.get("coherence"),
                      strategy=p.get("strategy"), params=_replayed_params(p),
                      score_field=p.get("score_field"), score_weight=p.get("score_weight"),
                      by=p.get("by"), seed=p.get("seed"))
    if cur.manifest["kept"] != manifest["kept"]:
        diff = len(set(cur.manifest["kept"]) ^ set(manifest["kept"]))
        raise ManifestError(f"replay differs from the manifest ({diff} kept rows differ): the "
                            "code or the model changed in a way the manifest does not pin")
    return cur


def write_curation(cur: Curation, out: str | None, *, manifest_out: str | None = None,
                   inputs: Sequence = ()) -> str | None:
    """The kept rows as jsonl to ``out`` (``-``: stdout) and the manifest to
    ``manifest_out`` (default: OUT with ``.manifest.json``; none for stdout).
    Both paths are checked before either is written. Returns the manifest's path.

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> m = write_curation(Curation([{"response": "a"}], {}, {"kept": ["line:1"]}),
    ...                    os.path.join(d, "kept.jsonl"))
    >>> os.path.basename(m), open(os.path.join(d, "kept.jsonl")).read()
    ('kept.manifest.json', '{"response": "a"}\\n')
    """
    from .outputs import check_not_input, output_file
    from .sampling import manifest_path_for

    inputs = [str(i) for i in inputs if i]
    if out and out != "-":
        manifest_out = manifest_out or manifest_path_for(out)
    if out:
        check_not_input(out, inputs)
    if manifest_out:
        check_not_input(manifest_out, inputs + ([out] if out else []))
        if out and out != "-" and manifest_out == out:
            raise CurationError(f"the manifest and the rows would both go to {out!r}")
    if out:
        with output_file(out, inputs=inputs) as fh:
            for r in cur.kept:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    if manifest_out:
        with output_file(manifest_out, inputs=inputs) as fh:
            json.dump(cur.manifest, fh, indent=1, ensure_ascii=False, default=str)
            fh.write("\n")
    return manifest_out
