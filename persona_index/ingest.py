"""Ingest: plan -> check -> write.

Two reads of the input. The first, the validation pass
(:func:`persona_index.plan.prepare_file`), parses everything once: it detects
a published schema, chooses the columns and under ``strict`` finds the first
unusable row; the values are then checked against the store's columns on one
snapshot of the store, before anything is written. A malformed file raises
:class:`InputFileError` naming the file and line, and the store is untouched.
The second read streams batches: drop exact duplicates, then (with
``minhash``) lexical near duplicates, embed, drop near duplicates by cosine
(:mod:`persona_index.dedup`: within the batch and against the store, first
occurrence kept), write one commit per batch. Ids are content hashes, so
re-running an interrupted ingest skips what was committed and adds only the
rest.

Where things live: readers in :mod:`persona_index.readers`, planning and
checks in :mod:`persona_index.plan`, the dedup indexes in
:mod:`persona_index.dedup`, identity in :mod:`persona_index.text`. Their
public names stay importable from here for one release.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .dedup import (BLOCKING_MIN, LEXICAL_MIN, PROBES, LexicalIndex, StoreIndex, drop_near,
                    lexical_similarity, shingles)
from .errors import IngestNote, IngestWarning, InputFileError
from .plan import (ATTR_MAX_DISTINCT, ATTR_MAX_LEN, ATTR_SMALL, DEFAULT_NEAR_DUP, MAX_TEXT_BYTES, FieldStats, IngestOptions, Plan, Prepared, check_against_store,
                   check_strict, plan_records, prepare_file, prepare_records, resolve_options,
                   row_problem, warn)
from .precomputed import unit_rows
from .readers import DEFAULT_BATCH, datasets_kind, iter_dataset, iter_file, iter_folder, numbered
from .store import PersonaIndex
from .text import RESERVED, TEXT_FIELDS, as_text, column_name, normalize_text, persona_id

__all__ = [  # the ingest API; the names from readers, plan, dedup and text are kept for old callers
    "ingest_file", "ingest_records", "IngestOptions", "IngestSummary", "IngestWarning", "IngestNote",
    "prepare_file", "prepare_records", "resolve_options", "Plan", "Prepared", "FieldStats",
    "plan_records", "check_strict", "check_against_store", "row_problem", "iter_file",
    "iter_folder", "iter_dataset", "InputFileError", "normalize_text", "persona_id",
    "column_name", "as_text", "RESERVED", "TEXT_FIELDS", "shingles", "lexical_similarity",
    "LEXICAL_MIN", "BLOCKING_MIN", "PROBES", "MAX_TEXT_BYTES", "DEFAULT_NEAR_DUP",
    "DEFAULT_BATCH", "ATTR_MAX_DISTINCT", "ATTR_MAX_LEN", "ATTR_SMALL", "EXAMPLES",
    "EXAMPLES_PER_KIND", "SUMMED",
]

#: the summary keeps the first EXAMPLES_PER_KIND report entries of each kind,
#: EXAMPLES in all
EXAMPLES = 20
EXAMPLES_PER_KIND = 5


# -- the summary -------------------------------------------------------------

@dataclass
class IngestSummary:
    """What an ingest did. ``examples`` holds the first report entries of
    each kind; the full list goes to the report file when one is given.

    Examples
    --------
    >>> s = IngestSummary(source="p.jsonl", read=10, added=8, exact_duplicates=2, seconds=2.0)
    >>> d = s.to_dict()
    >>> d["added"], d["exact_duplicates"], d["personas_per_s"]
    (8, 2, 5.0)
    >>> IngestSummary(source="p.jsonl").to_dict()["personas_per_s"] is None  # nothing timed
    True
    """

    source: str
    read: int = 0
    added: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    #: dropped by the MinHash stage (``minhash``), before embedding
    minhash_duplicates: int = 0
    #: near-identical vectors for texts that differ (kept; see LEXICAL_MIN)
    embedder_collisions: int = 0
    rejected: int = 0
    over_token_window: int = 0
    batches: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    #: the MinHash stage's share of ``seconds``, the store's sketches included
    minhash_seconds: float = 0.0
    load_seconds: float = 0.0
    near_dedup_method: str = "exact"
    #: the MinHash settings (:meth:`MinHashParams.to_dict`), None when the stage is off
    minhash: dict | None = None
    version_before: int | None = None
    version_after: int | None = None
    text_field: str | None = None
    attributes: list = field(default_factory=list)
    #: source field name -> the column it landed in (the store's field mapping), by name
    fields: dict = field(default_factory=dict)
    schema: str | None = None
    examples: list = field(default_factory=list)
    #: field -> its one value: short categorical fields kept as plain columns, not strata
    single_valued: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["personas_per_s"] = round(self.read / self.seconds, 1) if self.seconds else None
        return d

    def merge(self, other: IngestSummary) -> IngestSummary:
        """The summary of this ingest followed by ``other`` (e.g. the next
        window of the same file): every count and time summed, the versions
        from the first's start to the last's end, the examples as one report
        over both would keep them.

        Examples
        --------
        >>> a = IngestSummary("p.jsonl", read=3, added=2, embedder_collisions=1, version_before=1,
        ...                   version_after=2, examples=[{"reason": "near-duplicate"}])
        >>> b = IngestSummary("p.jsonl", read=4, added=4, load_seconds=0.5, version_before=2,
        ...                   version_after=3)
        >>> m = a.merge(b)
        >>> m.read, m.added, m.embedder_collisions, m.load_seconds, m.version_before, m.version_after
        (7, 6, 1, 0.5, 1, 3)
        """
        out = dataclasses.replace(self, attributes=list(self.attributes),
                                  fields={**self.fields, **other.fields}, examples=[])
        for name in SUMMED:
            setattr(out, name, getattr(self, name) + getattr(other, name))
        if other.version_after is not None:
            out.version_after = other.version_after
        counts: dict = {}
        for e in self.examples + other.examples:
            c = counts[e["reason"]] = counts.get(e["reason"], 0) + 1
            if c <= EXAMPLES_PER_KIND and len(out.examples) < EXAMPLES:
                out.examples.append(e)
        return out

    def warnings(self) -> list[str]:
        """What the caller should be warned of (issued as :class:`IngestWarning`)."""
        out = []
        if self.embedder_collisions:
            out.append(f"{self.embedder_collisions} persona(s) got nearly the same vector as "
                       "another whose text differs (the model cannot represent their script "
                       "well, e.g. Thai or Chinese for MiniLM); kept, not merged: see the report "
                       "(report=...) or the summary's examples")
        if self.over_token_window:
            out.append(f"{self.over_token_window} text(s) exceed the model's token window "
                       "and were embedded truncated")
        return out


#: the summary's counts and times, which :meth:`IngestSummary.merge` sums
SUMMED = tuple(f.name for f in dataclasses.fields(IngestSummary)
               if type(f.default) in (int, float))


class _Report:
    """The report: every entry to ``target`` (a path, opened here; or an
    open text file, left open), the first of each kind kept as examples."""

    def __init__(self, target):
        import sys

        if isinstance(target, str) and target == "-":  # standard output, left open
            target = sys.stdout
        self.own = isinstance(target, (str, os.PathLike))
        self.fh = open(target, "w", encoding="utf-8") if self.own else target
        self.counts: dict = {}
        self.examples: list = []

    def add(self, entry: dict):
        kind = entry["reason"]
        c = self.counts.get(kind, 0)
        self.counts[kind] = c + 1
        if c < EXAMPLES_PER_KIND and len(self.examples) < EXAMPLES:
            self.examples.append(entry)
        if self.fh:
            self.fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self):
        if self.own:
            self.fh.close()


# -- write -------------------------------------------------------------------

@dataclass
class _Run:
    """One write pass: what every batch needs."""

    index: PersonaIndex
    prep: Prepared
    embedder: Any
    known: StoreIndex
    lex: LexicalIndex | None
    rep: _Report
    summary: IngestSummary
    tick: Any = None  # advances the progress bar by a number of rows


#: rows embedded per call inside a batch, so that the progress bar moves about
#: every second on a CPU (a whole batch of 1,024 took several seconds)
EMBED_CHUNK = 128


def _embed(run: _Run, texts: list) -> np.ndarray:
    """``texts`` embedded in chunks of :data:`EMBED_CHUNK`, the bar advanced
    after each chunk."""
    parts = []
    for i in range(0, len(texts), EMBED_CHUNK):
        chunk = texts[i:i + EMBED_CHUNK]
        parts.append(np.asarray(run.embedder.encode(chunk), dtype=np.float32))
        if run.tick:
            run.tick(len(chunk))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _write(index: PersonaIndex, prep: Prepared, *, embedder=None) -> IngestSummary:
    """The write pass over a :class:`Prepared` input: MinHash stage, embed
    (``embedder`` or the store's), dedup, commit batch by batch, each index
    read from the snapshot the checks ran on.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from persona_index.embed import HashEmbedder
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "p.jsonl").write_text('{"text": "a nurse"}\\n{"text": "A  nurse"}\\n')
    >>> idx = PersonaIndex(d / "p.lance", HashEmbedder(16))
    >>> s = _write(idx, prepare_file(idx, d / "p.jsonl"))
    >>> s.read, s.added, s.exact_duplicates
    (2, 1, 1)
    """
    from tqdm.auto import tqdm

    opts, plan, snap = prep.options, prep.plan, prep.snapshot
    embedder = embedder or index.embedder
    tl = time.perf_counter()
    if not opts.vectors_field:  # precomputed vectors need no model
        getattr(embedder, "model", None)  # loads the model, outside the ingest timing
    summary = IngestSummary(source=prep.source, text_field=plan.text_field,
                            attributes=list(plan.attributes.values()), schema=plan.schema,
                            single_valued=dict(plan.single_valued),
                            load_seconds=time.perf_counter() - tl,
                            version_before=snap.version if snap is not None else None)
    t0 = time.perf_counter()
    known = StoreIndex(snap, opts.near_dedup, opts.blocking_min)
    summary.near_dedup_method = known.method if opts.near_dedup else "off"
    lex = None
    if opts.minhash is not None:
        tm = time.perf_counter()
        lex = LexicalIndex(snap, opts.minhash)
        summary.minhash = opts.minhash.to_dict()
        summary.minhash_seconds = time.perf_counter() - tm
    rep = _Report(opts.report)
    bar = tqdm(total=plan.rows, disable=not opts.progress, file=sys.stderr, unit="persona",
               desc="ingest", mininterval=0.5)
    run = _Run(index, prep, embedder, known, lex, rep, summary, tick=bar.update)
    try:
        it = prep.records()
        while batch := list(itertools.islice(it, opts.batch_size)):
            embedded = _do_batch(run, batch)
            bar.update(len(batch) - embedded)  # the rows that needed no embedding
    finally:
        bar.close()
        rep.close()
    summary.examples = rep.examples
    summary.seconds = time.perf_counter() - t0
    summary.version_after = index.version if index.exists else None
    _final_columns(summary, plan, index)
    for message in summary.warnings():
        warn(message)
    return summary


def _final_columns(summary: IngestSummary, plan, index: PersonaIndex) -> None:
    """The summary's attributes and fields as the store mapped them (the
    writer may have moved a field the plan named, see
    :meth:`PersonaIndex.write`); fields by name, whatever the key order."""
    stored = (index.meta.get("fields") or {}) if index.exists else {}
    col = {f: stored.get(f, c) for c, f in plan.columns.items()}
    summary.fields = dict(sorted(col.items()))
    summary.attributes = [col[f] for f in plan.attributes]


def _do_batch(run: _Run, batch: list) -> int:
    """Dedup, embed and write one batch; returns how many rows it embedded
    (the progress bar has advanced by those already)."""
    summary, opts = run.summary, run.prep.options
    summary.read += len(batch)
    lines, recs, texts, ids = _new_rows(run, batch)
    lex_keys: list = []
    if run.lex is not None and texts:  # lexical near duplicates go before they cost an embedding
        tm = time.perf_counter()
        pos, lex_keys = run.lex.check(lines, ids, texts, run.rep)
        summary.minhash_duplicates += len(texts) - len(pos)
        lines, recs, texts, ids = ([x[i] for i in pos] for x in (lines, recs, texts, ids))
        summary.minhash_seconds += time.perf_counter() - tm
    if not texts:
        return 0
    te = time.perf_counter()
    if opts.vectors_field:  # checked in the validation pass; scaled to unit length
        vecs = unit_rows(recs, opts.vectors_field)
        if run.tick:
            run.tick(len(texts))
    else:
        vecs = _embed(run, texts)
        summary.over_token_window += run.embedder.count_over_window(texts)
    summary.embed_seconds += time.perf_counter() - te
    keep = np.ones(len(texts), dtype=bool)
    if opts.near_dedup:
        keep, collisions = drop_near(run.known, vecs, texts, lines, ids, opts.near_dup_threshold,
                                     run.rep, lambda some: run.index.snapshot().texts_of(some))
        summary.embedder_collisions += collisions
        summary.near_duplicates += int((~keep).sum())
        if lex_keys:
            run.lex.forget([lex_keys[i] for i in np.flatnonzero(~keep)])
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return len(texts)
    vecs = np.ascontiguousarray(vecs[idx])
    table = _arrow_table(run, [lines[i] for i in idx], [recs[i] for i in idx],
                         [texts[i] for i in idx], [ids[i] for i in idx], vecs)
    w = run.index.write(table, attributes=list(run.prep.plan.attributes.values()),
                        fields=run.prep.plan.columns)
    run.known.add(table.column("id").to_pylist(), vecs if opts.near_dedup else None)
    # rows another process committed meanwhile were skipped by the store
    summary.added += w.added
    summary.exact_duplicates += w.skipped
    summary.batches += 1
    return len(texts)


def _new_rows(run: _Run, batch: list) -> tuple[list, list, list, list]:
    """The batch's usable rows whose id is new (lines, records, texts, ids);
    rejected rows and exact duplicates are counted and reported."""
    summary, rep, known = run.summary, run.rep, run.known
    tf = run.prep.plan.text_field
    lines, recs, texts, ids = [], [], [], []
    seen: dict = {}
    for n, rec in batch:
        why = row_problem(rec, tf)
        if why:  # under strict the whole input was refused before any write
            summary.rejected += 1
            rep.add({"line": n, "reason": "rejected", "detail": why})
            continue
        text = rec[tf].strip()
        pid = persona_id(text)
        if pid in known.ids or pid in seen:
            summary.exact_duplicates += 1
            where = "batch" if pid in seen else known.where(pid)
            rep.add({"line": n, "id": pid, "reason": "exact-duplicate", "matched_id": pid,
                     "matched_in": where, "matched_line": seen.get(pid), "similarity": 1.0})
            continue
        seen[pid] = n
        lines.append(n); recs.append(rec); texts.append(text); ids.append(pid)
    return lines, recs, texts, ids


def _arrow_table(run: _Run, lines, recs, texts, ids, vecs: np.ndarray):
    """The rows to commit as one Arrow table, columns as the plan says."""
    import pyarrow as pa

    plan, opts = run.prep.plan, run.prep.options
    n = len(ids)
    cols = {
        "id": pa.array(ids, pa.string()),
        "text": pa.array(texts, pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), pa.float32()),
                                                    vecs.shape[1]),
        "source": pa.array([run.prep.source] * n, pa.string()),
        "source_line": pa.array(lines, pa.int64()),
        "licence": pa.array([opts.licence] * n, pa.string()),
    }
    for f, col in plan.attributes.items():
        cols[col] = pa.array([as_text(r.get(f)) for r in recs], pa.string())
    types = {"string": pa.string, "int64": pa.int64, "float64": pa.float64, "bool": pa.bool_}
    for f, (col, typ) in plan.plain.items():
        vals = [r.get(f) for r in recs]
        if typ == "string":
            vals = [as_text(v) for v in vals]
        elif typ == "float64":
            vals = [None if v is None else float(v) for v in vals]
        cols[col] = pa.array(vals, types[typ]())
    for col, val in (opts.extra_columns or {}).items():
        cols[col] = pa.nulls(n, pa.string()) if val is None else pa.array([val] * n)
    return pa.table(cols)


# -- the public entry points -------------------------------------------------

def ingest_records(index: PersonaIndex, records: Iterable[tuple[int, dict]] | Any,
                   options: IngestOptions | None = None, *, plan: Plan | None = None,
                   source: str = "python", embedder=None, **overrides) -> IngestSummary:
    """Embed, deduplicate and write records into ``index``.

    Parameters
    ----------
    records : iterable of dict, or of ``(line, dict)``, a pyarrow Table, a
        pandas DataFrame, or a ``datasets.Dataset`` / ``IterableDataset``
        (whose layout, e.g. Persona-Chat's, is detected unless ``options`` or
        ``schema`` is given: ``schema="auto"`` by default for datasets).
        Plain iterables are materialised (the Python API); files stream
        through :func:`ingest_file` instead. A Hugging Face dataset is not:
        it is read twice (the validation pass, then the write pass), in
        batches of ``batch_size`` rows as Arrow, with its row numbers as lines;
        this code never downloads anything (an ``IterableDataset`` reads
        whatever it was built on, each pass).
    options : IngestOptions, optional
        How to ingest; any of its fields may also be given as a keyword
        argument (``near_dup_threshold=0.9``, ``minhash=True``, ``strict=True``,
        ``extra_columns={...}``, ...), overriding ``options``.
    plan : Plan, optional
        The columns, when an earlier pass chose them (else planned here).
    source : str
        The ``source`` column of every row, and the name in messages.
    embedder : optional
        Embeds the texts instead of the store's embedder (same model).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> s = ingest_records(idx, [{"text": "a nurse", "city": "Lyon"},
    ...                          {"text": "A  nurse", "city": "Oslo"},  # same normalised text
    ...                          {"text": "a baker", "city": "Lyon"}, {"text": ""}])
    >>> s.read, s.added, s.exact_duplicates, s.rejected, s.attributes
    (4, 2, 1, 1, ['city'])
    >>> ingest_records(idx, ["a baker", "a welder"]).added  # a rerun adds only what is new
    1
    >>> idx.info()["count"]
    3

    With ``minhash``, a reworded copy (same words, other punctuation and order)
    goes before it is embedded:

    >>> s = ingest_records(idx, ["A welder, and a baker!", "a welder and a baker"], minhash=True)
    >>> s.added, s.minhash_duplicates, s.examples[0]["reason"], s.examples[0]["jaccard"]
    (1, 1, 'minhash-duplicate', 1.0)
    """
    if datasets_kind(records) and options is None and "schema" not in overrides:
        overrides["schema"] = "auto"  # a dataset's layout is detected, as a file's is by the CLI
    opts = resolve_options(options, **overrides)
    if datasets_kind(records):
        ds = records

        def make_iter():
            return iter_dataset(ds, opts.batch_size, path=source)
    else:
        rows = numbered(records)

        def make_iter():
            return iter(rows)
    return _write(index, prepare_records(index, make_iter, opts, source, plan), embedder=embedder)


def ingest_file(index: PersonaIndex, path: str | Path, options: IngestOptions | None = None,
                **overrides) -> IngestSummary:
    """Ingest a jsonl, csv, parquet or txt file into ``index``, or a folder:
    parquet shards, or a ``datasets`` ``save_to_disk`` folder (:func:`iter_folder`).

    The whole file is validated before the first write (:func:`prepare_file`,
    one read); a malformed file raises :class:`InputFileError` (file and line)
    and writes nothing. Then rows stream through in batches of ``batch_size``
    with one commit each (the write pass, the second read). ``options``: an
    :class:`IngestOptions`; its fields may also be given as keyword arguments
    (``schema="auto"``, ``bands={"age": [18, 40, 65]}``, ``minhash=True``,
    ``report="dropped.jsonl"``, ...). Under ``schema="auto"`` a detected schema
    is announced as an :class:`IngestNote`; embedder collisions and truncated
    texts as an :class:`IngestWarning`.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> d = Path(tempfile.mkdtemp())
    >>> table = "persona,sex,age\\na nurse,f,34\\na baker,m,51\\na nurse,f,34\\n"
    >>> _ = (d / "p.csv").write_text(table)
    >>> idx = PersonaIndex(d / "p.lance", HashEmbedder(dim=16))
    >>> s = ingest_file(idx, d / "p.csv", bands={"age": [18, 40, 65]})
    >>> s.read, s.added, s.exact_duplicates, s.text_field, s.attributes
    (3, 2, 1, 'persona', ['sex', 'age', 'age_band'])

    A malformed file is refused as a whole, and nothing is written:

    >>> _ = (d / "bad.jsonl").write_text('{"text": "a cook"}\\n{oops\\n')
    >>> ingest_file(idx, d / "bad.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    persona_index.errors.InputFileError: .../bad.jsonl:2: malformed JSON (...)
    >>> idx.info()["count"]
    2
    """
    return _write(index, prepare_file(index, path, options, **overrides))
