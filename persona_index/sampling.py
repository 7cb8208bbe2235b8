"""Drawing persona batches from a store: the glue between the store, the
strategies (array in, indices out) and sessions.

:func:`draw` picks the candidate pool (a ``where`` filter, a neighbourhood of
a query, minus what this and other sessions already drew), hands the vectors
to a strategy, and records the batch with a manifest. :func:`replay` re-runs a
manifest on the store version and session state it names and checks that it
gets the same ids.

Examples
--------
>>> import tempfile
>>> from persona_index import PersonaIndex
>>> from persona_index.embed import HashEmbedder
>>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
>>> _ = idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(30)],
...             attributes=["region"])
>>> b = draw(idx, 5, seed=0, session="train")
>>> len(b.ids), b.manifest["strategy"], b.manifest["table_version"] == idx.version
(5, 'herding', True)
>>> later = draw(idx, 5, seed=0, session="train")  # the session never repeats a persona
>>> set(b.ids) & set(later.ids)
set()
>>> replay(b.manifest).ids == b.ids
True
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .commits import fault_point
# the parameter helpers, the batch files and the manifests live in their own
# modules; their names stay importable from here
from .draw_params import sampling_params, stratified_params  # noqa: F401
from .errors import ManifestError, SamplingError
from .manifests import (MANIFEST_VERSION, RENAMED_PARAMS, batch_rows, check_manifest,  # noqa: F401
                        load_manifest, manifest_path_for, read_ids, read_manifest_file,
                        stage_batch, upgrade_manifest, write_batch)
from .samplers.base import get_strategy, sample
from .samplers.registry import DEFAULT_STRATEGY, validate_params
from .sessions import Sessions, check_name, session_lock
from .snapshot import Snapshot, matrix_dot
from .store import PersonaIndex


@dataclass
class Batch:
    """One drawn batch: ids (in pick order), their rows (no vectors), and the
    manifest that replays it.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}"} for i in range(10)])
    >>> b = draw(idx, 3, "uniform", seed=1)
    >>> [r["id"] for r in b.rows] == b.ids, b.to_arrow().num_rows
    (True, 3)
    """

    ids: list
    rows: list
    manifest: dict
    attributes: list = field(default_factory=list)
    pool_positions: np.ndarray = field(repr=False, default=None)
    positions: np.ndarray = field(repr=False, default=None)
    snapshot: object = field(repr=False, default=None)

    def balance(self, uniform_draws: int = 20) -> dict | None:
        """A stratified batch's error against its targets and its coverage
        inside the strata (:func:`persona_index.balance.balance_report`, on the
        pool it was drawn from); None for other strategies."""
        if self.manifest.get("strategy") != "stratified" or self.snapshot is None:
            return None
        from .balance import balance_report

        p = self.manifest["params"]
        snap, pool = self.snapshot, self.pool_positions
        cols = snap.attribute_columns(p["by"])
        where = {int(x): i for i, x in enumerate(pool)}
        sel = [where[int(x)] for x in self.positions]
        X = snap.vectors if len(pool) == len(snap.vectors) else snap.vectors[pool]
        return balance_report(X, {k: v[pool] for k, v in cols.items()}, sel, p["by"],
                              target=p.get("target"), allocation=p.get("allocation"),
                              min_per_cell=p.get("min_per_cell") or 0,
                              uniform_draws=uniform_draws)

    def _caption(self) -> str:
        m = self.manifest or {}
        bits = [f"{len(self.ids)} personas"]
        if m.get("strategy"):
            bits.append(f"strategy {m['strategy']}, seed {m.get('seed')}, "
                        f"table version {m.get('table_version')}")
        if m.get("session"):
            bits.append(f"session {m['session']} batch {m.get('batch')}")
        return ", ".join(bits)

    def _table_rows(self) -> list:
        return [{"id": r.get("id"), "text": r.get("text"),
                 **{a: r.get(a) for a in self.attributes}} for r in self.rows]

    def __repr__(self) -> str:
        """The manifest's gist and a table of the first ten personas."""
        from .display import REPR_WIDTH, clipped, text_table

        rows, more = clipped(self._table_rows())
        return (f"Batch: {self._caption()}\n" + text_table(rows, max_width=REPR_WIDTH)
                + (f"\n{more}" if more else ""))

    def _repr_html_(self) -> str:
        from .display import clipped, html_table

        rows, more = clipped(self._table_rows())
        return html_table(rows, caption=self._caption() + (f" ({more})" if more else ""))

    def to_arrow(self):
        """The batch's personas as an Arrow table (no vectors)."""
        from .snapshot import table_of

        return table_of(self.rows)

    def to_pandas(self):
        from .snapshot import pandas_of

        return pandas_of(self.rows)


def candidate_pool(index: PersonaIndex, snap: Snapshot, *, where=None, near=None,
                   within=None) -> np.ndarray:
    """Positions (in ``snap``) of the personas a batch may come from: the rows
    matching ``where``, narrowed to the ``within`` nearest to the text ``near``.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(10)],
    ...             attributes=["region"])
    >>> candidate_pool(idx, idx.snapshot(), where="region = 'A'").tolist()
    [0, 2, 4, 6, 8]
    >>> len(candidate_pool(idx, idx.snapshot(), near="persona 3", within=4))
    4
    >>> candidate_pool(idx, idx.snapshot(), within=4)
    Traceback (most recent call last):
    persona_index.errors.SamplingError: within=... needs near=TEXT
    """
    m = snap
    pos = snap.positions(where) if where else np.arange(len(m.ids))
    if near is not None:
        if not within or within <= 0:
            raise SamplingError(f"near=... needs within=M > 0, got within={within!r}")
        q = index.embed_query([near])[0]
        sims = matrix_dot(m.vectors if len(pos) == len(m.vectors) else m.vectors[pos], q)
        w = min(int(within), len(pos))
        top = np.argpartition(-sims, w - 1)[:w] if w < len(pos) else np.arange(len(pos))
        pos = np.sort(pos[top])
    elif within is not None:
        raise SamplingError("within=... needs near=TEXT")
    return pos


def draw(index: PersonaIndex, n: int, strategy: str | None = None, *, by=None, target=None,
         seed=None, where: str | None = None, near: str | None = None, within: int | None = None,
         session: str | None = None, exclude_sessions: Sequence[str] = (),
         params: Mapping | None = None, record: bool = True, deliver=None,
         check_params: bool = True, _session_version: int | None = None,
         **strategy_params) -> Batch:
    """Draw ``n`` personas from ``index`` with ``strategy``.

    Parameters
    ----------
    strategy : a registered name; None: ``stratified`` when ``by`` or
        ``target`` is given, else the default (``herding``).
    by : attribute name(s) to stratify by (``stratified``).
    target : the target distribution: ``{attr: {value: weight}}``, spec
        strings ``"ATTR=VALUE:WEIGHT,..."`` (one or a list), a path to a JSON
        target file (``os.PathLike``), or ``"world"`` (population shares for
        country, region and age band: :func:`persona_index.targets.world_target`;
        the manifest records the shares used and ``target_matched``).
    **strategy_params : the strategy's own parameters (``method``,
        ``allocation``, ``min_per_cell``, ``beta`` ...), as ``params`` also
        takes them; naming one in both with different values is an error.
    seed : None or int. None draws a fresh seed, which the manifest records,
        so every batch can be replayed.
    session : name of a sampling session: its earlier draws are excluded, and
        coverage-aware strategies fill the gaps they left (``prior``).
    exclude_sessions : other sessions whose draws are excluded (train vs eval);
        recorded, so later draws of ``session`` avoid theirs too and theirs
        avoid ``session``'s.
    params : the strategy's own parameters (``by``, ``allocation``, ``target``,
        ``within``, ``alpha``, ``n_cells`` ...). For ``stratified``, ``by``
        names store attributes.
    deliver : optional ``batch -> Staged`` (e.g. :func:`stage_batch`): writes
        the batch's files to temporaries before the session records it; they
        are moved into place after the record commits and removed if it
        fails, so a session never holds a batch that was not delivered.
    check_params : bool, default True. False: ``params`` (with ``by``,
        ``target`` and the keyword parameters) are what
        :func:`~persona_index.samplers.registry.validate_params` returned for
        ``strategy``, e.g. a command line that checked them before opening
        the store; they are not checked again (scikit-learn's ``check_input``).

    A session draw is a transaction: under the session locks it first removes
    draw rows that no manifest commits (a draw killed midway), then picks,
    stages the outputs, commits the draws and then the manifest row (the
    commit point, see :class:`~persona_index.sessions.Sessions`), and only
    then moves the outputs into place.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}", "region": "ABC"[i % 3]} for i in range(60)],
    ...             attributes=["region"])
    >>> train = draw(idx, 20, seed=0, session="train")
    >>> evals = draw(idx, 20, seed=0, session="eval", exclude_sessions=["train"])
    >>> set(train.ids) & set(evals.ids)
    set()
    >>> b = draw(idx, 6, "stratified", seed=0, params={"by": ["region"]}, record=False)
    >>> sorted(r["region"] for r in b.rows)
    ['A', 'A', 'B', 'B', 'C', 'C']
    """
    params, world = _merge_params(params, strategy_params, by, target)
    if strategy is None:
        strategy = "stratified" if ("by" in params or "target" in params or world) \
            else DEFAULT_STRATEGY
    if world and strategy != "stratified":
        raise SamplingError(f"target 'world' needs the stratified strategy, not {strategy!r}")
    get_strategy(strategy)  # unknown names and bad parameters fail before any work
    if check_params:
        params = validate_params(strategy, params)
    if strategy == "herding":
        # the rule recorded, so the manifest replays it after a later change of
        # the default (upgrade_manifest reads one without it as the rule of its time)
        from .samplers.herding import recorded_params

        params = recorded_params(params)
    if world:
        params["_world"] = True
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**32))
    for name in ([session] if session else []) + list(exclude_sessions):
        check_name(name)
    sessions = Sessions(index)
    explicit = sorted(set(exclude_sessions) - ({session} if session else set()))
    replaying = _session_version is not None
    related: set = set()
    if session and not replaying:
        related = sessions.excluded_by(session)
    while True:  # lock every session this draw reads; the relation may grow meanwhile
        lock_names = ([session] if session else []) + explicit + sorted(related)
        with session_lock(index, lock_names):
            if session and not replaying:
                now = sessions.excluded_by(session)
                if not now <= related:
                    related |= now
                    continue
            # one table version for the whole draw: the matrix, the filter, the
            # attributes, the rows and the version the manifest records
            batch = _draw_locked(index, index.snapshot(), n, strategy, seed=seed, where=where, near=near,
                                 within=within, session=session,
                                 excludes=sorted(set(explicit) | related), params=params,
                                 record=record, sessions=sessions,
                                 session_version=_session_version, deliver=deliver,
                                 repair=lock_names if (record and not replaying) else ())
        return batch


def _draw_locked(index, snap, n, strategy, *, seed, where, near, within, session, excludes, params,
                 record, sessions, session_version, deliver=None, repair=()) -> Batch:
    exclude_sessions = excludes  # explicit and recorded exclusions
    if repair:  # before the session version is read: it must hold committed draws only
        sessions.repair(repair)
    if session or exclude_sessions:
        sv = sessions.version() if session_version is None else session_version
    else:  # no session state involved (and no lancedb import for a plain draw)
        sv = None
    own = sessions.drawn([session], version=sv) if session else []
    other = sessions.drawn(list(exclude_sessions), version=sv) if exclude_sessions else []
    m = snap
    pool = candidate_pool(index, snap, where=where, near=near, within=within)
    excluded = set(own) | set(other)
    if excluded:
        import pyarrow as pa
        import pyarrow.compute as pc

        mask = pc.is_in(m.ids.take(pa.array(pool)), value_set=pa.array(sorted(excluded)))
        pool = pool[~mask.to_numpy(zero_copy_only=False)]
    if n > len(pool):
        raise SamplingError(
            f"asked for {n} personas but only {len(pool)} are available"
            + (f" (after excluding {len(excluded)} already drawn)" if excluded else ""))
    prior = None
    if own:
        pos = m.positions_of_ids(own)
        prior = m.vectors_at(pos) if len(pos) else None
    from .stored_rows import StoredRows, reads_rows_only, sample_stored

    stored = reads_rows_only(m, strategy, params, n, len(pool))  # the default reads a subset
    if stored:
        X = StoredRows(m, pool)
    else:  # no copy of the whole matrix when the pool is all of it
        X = m.vectors if len(pool) == len(m.vectors) else m.vectors[pool]
    attrs = None
    extra: dict = {}
    matched = None
    if strategy == "stratified":
        params, cols, matched = stratified_params(snap, params)
        attrs = {k: v[pool] for k, v in cols.items()}
        if prior is not None and params["method"] == "herding":
            pos = m.positions_of_ids(own)
            extra["prior_attributes"] = {k: v[pos] for k, v in cols.items()}
    t0 = time.perf_counter()
    # the parameters were validated once, in draw (or by its caller)
    sel = sample_stored(X, n, strategy, seed=seed, prior=prior, params=params) if stored else \
        sample(X, n, strategy, seed=seed, prior=prior, attributes=attrs, check_params=False,
               **params, **extra)
    seconds = time.perf_counter() - t0
    positions = pool[sel]
    ids = m.ids.take(positions).to_pylist()
    batch_no = sessions.next_batch(session) if session else None
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "strategy": strategy, "params": params, "seed": seed, "n": n,
        "where": where, "near": near, "within": within,
        "store": index.path if "://" in index.path else os.path.abspath(index.path),
        "table_version": snap.version, "model": snap.meta.get("model"),
        "session": session, "batch": batch_no, "session_version": sv,
        "exclude_sessions": list(exclude_sessions), "prior_count": len(own),
        "pool_size": int(len(pool)), "seconds": round(seconds, 4),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "ids": ids,
    }
    if matched is not None:
        manifest["target_matched"] = matched
    rows = snap.take(positions).to_pylist()
    batch = Batch(ids=ids, rows=rows, manifest=manifest, attributes=snap.attributes,
                  pool_positions=pool, positions=positions, snapshot=snap)
    _deliver(batch, sessions, session if record else None, exclude_sessions, deliver)
    return batch


def _deliver(batch, sessions, session, exclude_sessions, deliver) -> None:
    """Stage the batch's outputs (``deliver``), record it in ``session`` (None:
    no record), then move the outputs into place; a failed record removes them."""
    staged = deliver(batch) if deliver is not None else None
    recorded = None
    try:
        fault_point("draw:staged")
        if session:
            batch_no = batch.manifest["batch"]
            if exclude_sessions:
                sessions.record_exclusions(session, exclude_sessions)
            sessions.record(session, batch_no, batch.ids, batch.manifest,
                            delivery=staged.pending() if staged is not None else ())
            recorded = f"session {session!r} batch {batch_no}"
            fault_point("draw:recorded")
    except BaseException:
        if staged is not None:
            staged.abort()
        raise
    if staged is not None:
        staged.commit(recorded=recorded)


def _merge_params(params, strategy_params, by, target) -> tuple[dict, bool]:
    """One parameter dict from ``params``, keyword parameters, ``by`` and
    ``target`` (in its accepted spellings); True when the target is ``world``."""
    from .errors import StrategyParameterError
    from .samplers.stratified import parse_target
    from .targets import WORLD, load_target_file

    out = dict(params or {})
    for key, v in strategy_params.items():
        if key in out and out[key] != v:
            raise StrategyParameterError(f"parameter {key!r} given twice: {out[key]!r} in "
                                         f"params and {v!r}")
        out[key] = v
    if by is not None:
        out["by"] = [by] if isinstance(by, str) else list(by)
    world = False
    if target is not None:
        if isinstance(target, str) and target == WORLD:
            world = True
        elif isinstance(target, os.PathLike):
            out["target"] = load_target_file(target)
        elif isinstance(target, str):
            out["target"] = dict([parse_target(target)])
        elif isinstance(target, Mapping):
            out["target"] = dict(target)
        elif isinstance(target, (list, tuple)) and all(isinstance(t, str) for t in target):
            out["target"] = dict(parse_target(t) for t in target)
        else:
            raise StrategyParameterError(
                f"target must be a mapping, ATTR=VALUE:WEIGHT strings, a target file path or "
                f"'world', got {target!r:.60}")
    if "target" in out and "by" not in out and isinstance(out["target"], Mapping):
        out["by"] = list(out["target"])
    return out, world






def replay(manifest, *, path: str | None = None) -> Batch:
    """Re-run a manifest at its table version and session state; the ids must
    come out the same, else :class:`ManifestError`.

    ``manifest`` is the manifest (a dict) or the path of a manifest file
    (what ``sample --out`` writes next to the batch). ``path``: the store to
    replay on (default: the manifest's ``store``).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}"} for i in range(20)])
    >>> b = draw(idx, 4, seed=3)
    >>> _ = idx.add([{"text": "a later persona"}])  # the store moves on
    >>> replay(b.manifest).ids == b.ids
    True
    >>> import json, os
    >>> m = os.path.join(tempfile.mkdtemp(), "b.manifest.json")
    >>> _ = open(m, "w").write(json.dumps(b.manifest))
    >>> replay(m).ids == b.ids  # a manifest file works as well
    True
    """
    if isinstance(manifest, (str, os.PathLike)):
        manifest = load_manifest(manifest)
    check_manifest(manifest)
    manifest, notes = upgrade_manifest(manifest)
    for note in notes:
        warnings.warn(note, FutureWarning, stacklevel=2)
    store = path or manifest.get("store")
    if not store:
        raise ManifestError("the manifest names no store: pass path=...")
    try:
        idx = PersonaIndex(store, version=manifest["table_version"], must_exist=True)
        idx.snapshot()
    except Exception as exc:
        from .errors import InvalidQueryError, StoreNotFoundError

        if not isinstance(exc, (InvalidQueryError, StoreNotFoundError)):
            raise
        if isinstance(exc, StoreNotFoundError):
            raise ManifestError(f"the manifest's store {store!r} does not exist (pass path=... to "
                                "replay it on another store)") from None
        latest = PersonaIndex(store).version
        raise ManifestError(f"the store {store!r} has no table version "
                            f"{manifest['table_version']} (its latest is {latest}): replay the "
                            "manifest on the store it was drawn from (its 'store', or path=...)"
                            ) from None
    b = draw(idx, manifest["n"], manifest["strategy"], seed=manifest["seed"],
             where=manifest.get("where"), near=manifest.get("near"), within=manifest.get("within"),
             session=manifest.get("session"), exclude_sessions=manifest.get("exclude_sessions") or (),
             params=manifest.get("params"), record=False,
             _session_version=manifest.get("session_version"))
    if b.ids != manifest.get("ids"):
        diff = len(set(b.ids) ^ set(manifest.get("ids") or []))
        raise ManifestError(f"replay differs from the manifest ({diff} ids differ): the store "
                            "or the code changed in a way the manifest does not pin")
    return b


class Coverage(dict):
    """A coverage report (a dict: :func:`~persona_index.metrics.coverage_report`'s
    keys, and ``uniform`` when compared with uniform batches) that prints as
    a table, in a terminal and in a notebook."""

    def rows(self) -> list[dict]:
        from .display import coverage_rows

        return coverage_rows(self)

    def _title(self) -> str:
        uni = self.get("uniform")
        return (f"coverage of {self.get('n')} personas in a pool of {self.get('pool')}"
                + (f", next to {uni['draws']} uniform batches of the same size" if uni else ""))

    def __repr__(self) -> str:
        from .display import text_table

        return self._title() + "\n" + text_table(self.rows())

    def _repr_html_(self) -> str:
        from .display import html_table

        return html_table(self.rows(), caption=self._title())


def coverage_of(index: PersonaIndex, ids: Sequence[str], *, where: str | None = None,
                targets: Mapping | None = None, compare_uniform: int = 0,
                progress: bool = False) -> Coverage:
    """Every coverage metric of the personas ``ids`` against the store (or the
    rows matching ``where``), plus the balance of each store attribute.

    Parameters
    ----------
    compare_uniform : int, default 0
        Also measure this many uniform batches of the same size (seeds 0, 1,
        ..., the batches ``draw(index, len(ids), "uniform", seed=s,
        where=where)`` gives): the result's ``uniform`` holds their ``mean``
        and ``sd`` (ddof 1) per metric (and per ``balance[ATTR]``), and ``z``,
        the sample's distance from the mean in sds, signed so that positive is
        better than uniform (nan where the uniform batches do not vary).
    progress : bool
        A progress bar on stderr when the work takes over 2 s.

    All batches are measured on one snapshot, with one PCA grid and one
    blocked product of the pool with every batch
    (:func:`~persona_index.metrics.coverage_reports`).

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(40)],
    ...             attributes=["region"])
    >>> ids = idx.snapshot().ids.to_pylist()
    >>> r = coverage_of(idx, ids)  # the whole pool covers itself
    >>> round(r["kcenter_radius"], 4), r["n"]
    (0.0, 40)
    >>> r = coverage_of(idx, ids[:8], compare_uniform=4)
    >>> r["uniform"]["draws"], sorted(r["uniform"])
    (4, ['draws', 'mean', 'sd', 'seeds', 'z'])
    """
    from .errors import InvalidQueryError
    from .metrics import BETTER, coverage_reports
    from .progress import progress_bar

    if isinstance(compare_uniform, bool) or not isinstance(compare_uniform, (int, np.integer)) \
            or compare_uniform < 0:
        raise InvalidQueryError(f"compare_uniform must be a whole number >= 0, "
                                f"got {compare_uniform!r}")
    m = index.snapshot()  # one table version for the matrix, the filter and the attributes
    pool = m.positions(where) if where else np.arange(len(m.vectors))
    lookup = {int(p): i for i, p in enumerate(pool)}
    local, unknown = [], []
    for pid in ids:
        p = m.position_of_id(pid)
        if p is None or int(p) not in lookup:
            unknown.append(pid)
        else:
            local.append(lookup[int(p)])
    if unknown:
        raise SamplingError(f"{len(unknown)} id(s) are not in the pool, e.g. {unknown[:3]}")
    if not local:
        raise SamplingError("no ids to measure")
    attrs = m.attribute_columns(m.attributes) if m.attributes else None
    full = len(pool) == len(m.vectors)  # then no copy of the matrix
    attrs = {k: (v if full else v[pool]) for k, v in attrs.items()} if attrs else None
    X = m.vectors if full else m.vectors[pool]
    seeds = list(range(int(compare_uniform)))
    # the same batches draw(index, n, "uniform", seed=s, where=where) gives (no session)
    batches = [np.asarray(local)] + [sample(X, len(local), "uniform", seed=s) for s in seeds]
    with progress_bar(len(X), "coverage", enabled=progress, unit="personas") as bar:
        reports = coverage_reports(batches, X, attributes=attrs, targets=targets,
                                   progress=bar.update)
    rep = Coverage(reports[0])
    if seeds:
        keys = [k for k in rep if isinstance(rep[k], float)]
        vals = {k: np.array([r[k] for r in reports[1:]], dtype=np.float64) for k in keys}
        mean = {k: float(v.mean()) for k, v in vals.items()}
        sd = {k: float(v.std(ddof=1)) if len(v) > 1 else float("nan") for k, v in vals.items()}
        z = {}
        for k in keys:
            if sd[k] > 0 and math.isfinite(sd[k]):
                z[k] = BETTER.get(k, 1) * (rep[k] - mean[k]) / sd[k]
            else:
                z[k] = float("nan")
        for name in rep.get("attribute_balance") or {}:  # balance: higher is better
            key = f"balance[{name}]"
            v = np.array([r["attribute_balance"][name] for r in reports[1:]], dtype=np.float64)
            mean[key] = float(v.mean())
            sd[key] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
            z[key] = ((rep["attribute_balance"][name] - mean[key]) / sd[key]
                      if sd[key] > 0 and math.isfinite(sd[key]) else float("nan"))
        rep["uniform"] = {"draws": len(seeds), "seeds": seeds, "mean": mean, "sd": sd, "z": z}
    return rep


def balance_of(index: PersonaIndex, ids: Sequence[str], *, target: Mapping,
               by: Sequence[str] | None = None, where: str | None = None,
               allocation: str | None = None, uniform_draws: int = 20) -> dict:
    """The batch ``ids`` against ``target`` over the store (or the rows
    matching ``where``), stratified by ``by`` (default: the targeted
    attributes): :func:`persona_index.balance.balance_report`. A target value
    the store lacks raises :class:`~persona_index.errors.StrategyParameterError`.

    Examples
    --------
    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}", "region": "AB"[i % 2]} for i in range(40)],
    ...             attributes=["region"])
    >>> b = draw(idx, 10, by="region", target={"region": {"A": 0.7, "B": 0.3}}, seed=0)
    >>> r = balance_of(idx, b.ids, target={"region": {"A": 0.7, "B": 0.3}}, uniform_draws=5)
    >>> r["marginal_tv"], r["joint_tv"], r["cells"]
    ({'region': 0.0}, 0.0, 2)
    """
    from .balance import balance_report

    m = index.snapshot()
    params, cols, _ = stratified_params(m, {"by": list(by or target), "target": dict(target)})
    pool = m.positions(where) if where else np.arange(len(m.vectors))
    lookup = {int(p): i for i, p in enumerate(pool)}
    sel, unknown = [], []
    for pid in ids:
        p = m.position_of_id(pid)
        (sel if p is not None and int(p) in lookup else unknown).append(
            lookup[int(p)] if p is not None and int(p) in lookup else pid)
    if unknown:
        raise SamplingError(f"{len(unknown)} id(s) are not in the pool, e.g. {unknown[:3]}")
    X = m.vectors if len(pool) == len(m.vectors) else m.vectors[pool]
    return balance_report(X, {k: v[pool] for k, v in cols.items()}, sel, params["by"],
                          target=params["target"], allocation=allocation,
                          uniform_draws=uniform_draws)


def coverage_vs_uniform(index: PersonaIndex, ids: Sequence[str], *, where: str | None = None,
                        targets: Mapping | None = None, uniform_draws: int = 0,
                        progress: bool = False) -> dict:
    """``{"sample": ..., "uniform_mean": ..., "uniform_sd": ..., "z": ...}`` (what
    ``coverage --json`` prints): :func:`coverage_of` with ``compare_uniform``,
    the uniform figures moved to the top level (absent with no uniform draws).

    >>> import tempfile
    >>> from persona_index import PersonaIndex
    >>> from persona_index.embed import HashEmbedder
    >>> idx = PersonaIndex(tempfile.mkdtemp() + "/p.lance", HashEmbedder(dim=16))
    >>> _ = idx.add([{"text": f"persona {i}"} for i in range(50)])
    >>> r = coverage_vs_uniform(idx, draw(idx, 10, seed=0).ids, uniform_draws=3)
    >>> sorted(r), r["sample"]["n"], "vendi" in r["uniform_mean"]
    (['sample', 'uniform_mean', 'uniform_sd', 'z'], 10, True)
    """
    rep = coverage_of(index, ids, where=where, targets=targets, compare_uniform=uniform_draws,
                      progress=progress)
    uni = rep.pop("uniform", None)
    result = {"sample": dict(rep)}
    if uni:
        result.update(uniform_mean=uni["mean"], uniform_sd=uni["sd"], z=uni["z"])
    return result
