"""Drawing and measuring: strategies, sample, coverage, sessions."""

from __future__ import annotations

import click

from persona_index.samplers.registry import DEFAULT_STRATEGY, STRATEGIES as _SPECS
from persona_index.samplers.registry import DEVICES, strategy_names, validate_params
from persona_index.targets import WORLD_ATTRIBUTES
from persona_index_cli.base import Command, SubGroup, check_outputs, open_index
from persona_index_cli.output import (chosen_columns, default_columns, draw_plot, emit,
                                      format_table, output_options, plot_option, renamed_option,
                                      where_columns)


STRATEGIES = strategy_names()


def _param(strategy: str, name: str):
    """A strategy parameter's registry entry: the options' choices and
    defaults come from it."""
    return next(p for p in _SPECS[strategy].params if p.name == name)


_METHODS = _param("stratified", "method").choices
_LAM, _BETA = _param("blend", "lam"), _param("herding", "beta")


@click.command(cls=Command)
@output_options
def strategies(output):
    """List the sampling strategies, their parameters and defaults."""
    def lines():
        for name in STRATEGIES:
            spec = _SPECS[name]
            params = ", ".join(p.describe() for p in spec.params) or "no parameters"
            mark = " (default)" if name == DEFAULT_STRATEGY else ""
            yield f"{name}{mark}: {spec.description}. Parameters: {params}"

    emit(output, [_SPECS[n].to_dict() for n in STRATEGIES], readable=lambda: list(lines()))


@click.command(cls=Command)
@click.option("-n", "n", type=click.IntRange(1), required=False, help="Batch size.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None,
              help=f"Sampling strategy (default: {DEFAULT_STRATEGY}; `persona-index strategies` "
                   "lists them).")
@click.option("--by", multiple=True, help="Attribute(s) to stratify by (stratified).")
@click.option("--allocation", type=click.Choice(_param("stratified", "allocation").choices),
              help="Starting allocation of the cells (stratified; default equal, proportional "
                   "with a target); targets are then met by raking.")
@click.option("--target", multiple=True,
              help="Target distribution, ATTR=VALUE:WEIGHT,... (one per attribute), or 'world' "
                   f"(population shares for {', '.join(WORLD_ATTRIBUTES).replace('_', ' ')}).")
@click.option("--target-file", type=click.Path(exists=True, dir_okay=False),
              help="Targets from a JSON file {attr: {value: weight}}.")
@click.option("--min-per-cell", type=click.IntRange(0), default=None,
              help="At least this many from every non-empty cell, or all it has (stratified).")
@click.option("--stratum-method", type=click.Choice(_METHODS),
              help="How to draw inside a stratum (stratified; default "
                   f"{_param('stratified', 'method').default}).")
@renamed_option("--within-stratum", "--stratum-method", "stratum_method",
                type=click.Choice(_METHODS))
@click.option("--alpha", type=float, help="inverse-density exponent (0 = uniform).")
@click.option("--n-cells", type=click.IntRange(1), help="Number of k-means cells (cells).")
@click.option("--trim", type=float, help="core-farthest: share of most isolated personas left out.")
@click.option("--lam", type=float, help=f"blend: diversity weight in [{_LAM.lo:g}, {_LAM.hi:g}] "
                                         f"(default {_LAM.default:g}).")
@click.option("--beta", type=float,
              help=f"herding: weight of the spread term (default {_BETA.default:g}), reached at "
                   "the batch's last pick: it rises from 0 (--param ramp=none keeps it constant).")
@click.option("--tau", type=float, help="herding, blend: kernel width.")
@click.option("--param", "extra", multiple=True, help="Any other strategy parameter NAME=VALUE.")
@click.option("--device", type=click.Choice(DEVICES),
              help="farthest, herding, inverse-density: run the kernel in numpy or torch "
                   "(default auto: numpy unless torch is already loaded and sees a GPU).")
@click.option("--engine", type=click.Choice(_param("herding", "engine").choices), default=None,
              help="herding: local, or row blocks as Ray tasks (the same batch as local; "
                   "--param rounds=coreset for the two-round coreset); needs the ray extra.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="herding with --engine ray: Ray CPUs "
                   f"(default {_param('herding', 'workers').default}).")
@click.option("--where", help="SQL filter: draw only from matching personas.")
@click.option("--near", help="Draw among the personas nearest to this text (with --within).")
@click.option("--within", type=click.IntRange(1), help="Neighbourhood size for --near.")
@click.option("--seed", type=click.IntRange(0),
              help="Random seed, a whole number >= 0 (default: a fresh one, recorded).")
@click.option("--session", help="Sampling session: never repeat a persona, fill earlier gaps.")
@click.option("--exclude-session", "exclude", multiple=True,
              help="Exclude what this other session drew (repeatable).")
@click.option("--replay", "replay_path", type=click.Path(exists=True, dir_okay=False),
              help="Re-run a manifest file and check that it gives the same ids.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the batch as jsonl here.")
@click.option("--manifest", "manifest_out", type=click.Path(dir_okay=False),
              help="Write the manifest here (default: OUT with .manifest.json).")
@plot_option
@output_options(rows=True)
@click.pass_context
def sample(ctx, n, strategy, by, allocation, target, target_file, min_per_cell, stratum_method,
           alpha, n_cells, trim, lam, beta, tau, extra, device, engine, workers,
           where, near, within, seed, session, exclude, replay_path, out, manifest_out, plot,
           output):
    """Draw a batch of personas that covers the persona space."""
    from functools import partial

    from persona_index.sampling import draw, manifest_path_for, stage_batch

    if out and out != "-" and not manifest_out:
        manifest_out = manifest_path_for(out)
    # every output checked before anything is drawn (exit 2)
    check_outputs(ctx, {"--out": out, "--manifest": manifest_out}, {"--replay": replay_path})
    deliver = partial(stage_batch, out=out, manifest_out=manifest_out)
    if replay_path:
        b = _replay(ctx, replay_path, deliver)
    else:
        if n is None:
            raise click.UsageError("give -n N (or --replay MANIFEST)")
        if out == "-" and output.json:
            raise click.UsageError("--out - writes the batch to stdout; it cannot go with --json")
        world = _world_target(target, target_file)
        strategy, params = _strategy_params(
            strategy, world, dict(by=by, allocation=allocation, target=[] if world else target,
                                  target_file=target_file, stratum_method=stratum_method,
                                  extra=extra, alpha=alpha, n_cells=n_cells, trim=trim, lam=lam,
                                  beta=beta, tau=tau, min_per_cell=min_per_cell, device=device,
                                  engine=engine, workers=workers))
        if output.columns:  # a typo in --columns must not cost a recorded draw
            attrs = open_index(ctx).attributes
            chosen_columns([dict.fromkeys(["id", "text", *attrs, "licence", "source"])], None,
                           output)
        if near is not None and not near.strip():
            raise click.BadParameter("must be a non-empty text", param_hint="--near")
        if (near is None) != (within is None):
            raise click.UsageError("--near TEXT and --within M go together")
        # the outputs are staged beside their targets, the session records the
        # batch, then the outputs move into place: nothing drawn goes undelivered
        b = draw(open_index(ctx), n, strategy, seed=seed, where=where, near=near, within=within,
                 session=session, exclude_sessions=exclude, params=params,
                 target="world" if world else None, deliver=deliver, check_params=False)
    if plot:  # the pool the batch came from: its store at its table version
        from persona_index.store import PersonaIndex

        draw_plot(PersonaIndex(b.manifest["store"], version=b.manifest["table_version"]),
                  b.ids, plot, where=b.manifest.get("where"))
    if out != "-":  # else the rows went to stdout
        _print_batch(b, output)


def _replay(ctx, replay_path, deliver):
    """Draw a manifest's batch again, on the manifest's own store unless
    --db (or $PERSONA_INDEX_DB) names one, and deliver it."""
    from persona_index.sampling import load_manifest, replay, upgrade_manifest

    db = ctx.obj["db"] if ctx.obj.get("db_given") else None
    manifest, notes = upgrade_manifest(load_manifest(replay_path))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    b = replay(manifest, path=db)  # errors name path=..., said as --db (messages.py)
    click.echo(f"replayed on {db or b.manifest['store']}", err=True)
    deliver(b).commit()
    return b


def _strategy_params(strategy, world: bool, options: dict) -> tuple:
    """The strategy (stratified when --by or a target is given, else the
    default) and its parameters from the command's options, validated here,
    once, before the store is opened (exit 2)."""
    from persona_index.sampling import sampling_params

    runtime = {k: options.pop(k) for k in ("device", "engine", "workers")}
    params = sampling_params(**options)
    params.update({k: v for k, v in runtime.items() if v is not None})
    strategy = strategy or ("stratified" if params.get("by") or world else DEFAULT_STRATEGY)
    if world and strategy != "stratified":
        raise click.UsageError("--target world needs --strategy stratified")
    return strategy, validate_params(strategy, params)


def _print_batch(b, output) -> None:
    """The batch: its manifest, rows and balance as JSON; its rows as jsonl or
    csv; or a line on stderr, the rows as a table and the balance (stderr)."""
    from persona_index.sampling import batch_rows

    rows = batch_rows(b)
    balance = None if output.streams_rows else b.balance()  # the table and --json show it
    m = b.manifest
    matched = m.get("target_matched")
    if matched and not output.json:
        click.echo(f"target world: matched {', '.join(matched['matched'])}"
                   + (f"; the store has no {', '.join(matched['unmatched'])}"
                      if matched["unmatched"] else ""), err=True)
    if output.readable:
        click.echo(f"{len(rows)} personas, strategy {m['strategy']}, seed {m['seed']}, "
                   f"table version {m['table_version']}"
                   + (f", session {m['session']} batch {m['batch']}" if m.get("session") else ""),
                   err=True)
    p = m.get("params") or {}
    asked = list(p.get("by") or []) + list(p.get("target") or {}) \
        + where_columns(m.get("where"), b.attributes)
    emit(output, {"manifest": {k: v for k, v in m.items() if k != "ids"}, "personas": rows,
                  **({"balance": balance} if balance else {})},
         rows=rows, columns=default_columns(["id", "text"], b.attributes, asked))
    if balance and output.readable:
        emit(output, balance, readable=_balance_lines(balance), err=True)


def _world_target(target, target_file) -> bool:
    """True for ``--target world`` (which goes alone)."""
    if "world" not in target:
        return False
    if len(target) > 1 or target_file:
        raise click.UsageError("--target world goes alone (not with other --target or "
                               "--target-file)")
    return True


def _balance_lines(rep: dict) -> list:
    """The balance report: error against the targets, coverage inside the
    strata, thin cells."""
    from persona_index.balance import balance_rows

    rows = balance_rows(rep)
    lines = [f"balance over {' x '.join(rep['by'])} ({rep['k']} personas; stratified-uniform: "
             f"{rep['within']['uniform_draws']} draws of the same counts):",
             format_table(rows, list(max(rows, key=len)))]
    for t in rep["thin_cells"][:5]:
        cell = ", ".join(f"{a}={v}" for a, v in t["cell"].items())
        lines.append(f"thin cell {cell}: {t['size']} personas for a quota of {t['wanted']:g}")
    if len(rep["thin_cells"]) > 5:
        lines.append(f"... and {len(rep['thin_cells']) - 5} more thin cells (--json lists them)")
    return lines


@click.command(cls=Command)
@click.option("--ids", "ids_file", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="jsonl with an 'id' field per line (what `sample --out` writes).")
@click.option("--session", help="Measure everything a session has drawn.")
@click.option("--where", help="Measure against the matching personas only.")
@click.option("--target", multiple=True, help="Target distribution ATTR=VALUE:WEIGHT,... "
              "(one per attribute), or 'world'; adds the error against it.")
@click.option("--target-file", type=click.Path(exists=True, dir_okay=False),
              help="Targets from a JSON file {attr: {value: weight}}.")
@click.option("--compare-uniform", type=click.IntRange(0, 10000), default=0, show_default=True,
              help="Also measure this many uniform batches of the same size (mean ± sd, z).")
@plot_option
@output_options
@click.pass_context
def coverage(ctx, ids_file, session, where, target, target_file, compare_uniform, plot, output):
    """Coverage metrics of a batch (or a session) against the pool."""
    from persona_index.sampling import balance_of, coverage_vs_uniform, read_ids, sampling_params
    from persona_index.sessions import Sessions

    if bool(ids_file) == bool(session):
        raise click.UsageError("give exactly one of --ids FILE or --session NAME")
    idx = open_index(ctx)
    if ids_file:
        with click.open_file(ids_file, encoding="utf-8") as fh:  # "-": stdin
            ids = read_ids(fh, ids_file)
    else:
        ids = Sessions(idx).drawn([session])
    world = _world_target(target, target_file)
    targets = sampling_params(target=[] if world else target,
                              target_file=target_file).get("target")
    if world:
        from persona_index.targets import world_target

        snap = idx.snapshot()
        targets, matched = world_target(snap.attribute_columns(snap.attributes))
        click.echo(f"target world: matched {', '.join(matched['matched'])}", err=True)
    balance = balance_of(idx, ids, target=targets, where=where) if targets else None
    result = coverage_vs_uniform(idx, ids, where=where, targets=targets,
                                 uniform_draws=compare_uniform, progress=not output.json)
    if balance:
        result["balance"] = balance
    rep = result["sample"]
    if plot:
        draw_plot(idx, ids, plot, where=where)
    if compare_uniform:
        rep = {**rep, "uniform": {"draws": compare_uniform, "mean": result["uniform_mean"],
                                  "sd": result["uniform_sd"], "z": result["z"]}}
        if output.readable:
            click.echo(f"{rep['n']} personas in a pool of {rep['pool']}, next to "
                       f"{compare_uniform} uniform batches of the same size (z: sds from their "
                       "mean, + is better)", err=True)

    def readable():
        from persona_index.display import coverage_rows

        return [format_table(coverage_rows(rep))] + (_balance_lines(balance) if balance else [])

    emit(output, result, readable=readable)


@click.group(cls=SubGroup)
def sessions():
    """List, show and reset sampling sessions."""


@sessions.command("list")
@output_options
@click.pass_context
def sessions_list(ctx, output):
    """Every session with its persona and batch counts."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    rows = s.list()
    for r in rows:  # which sessions each is kept disjoint from (both ways)
        r["excludes"] = sorted(s.excluded_by(r["session"]))
    emit(output, rows, rows=[{**r, "excludes": ", ".join(r["excludes"]) or "-"} for r in rows])


@sessions.command("show")
@click.argument("name")
@output_options
@click.pass_context
def sessions_show(ctx, name, output):
    """A session's batches (manifests, without the id lists)."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    _known_session(s, name)
    ms = s.manifests(name)
    rows = [{k: m.get(k) for k in ("batch", "strategy", "n", "seed", "table_version", "time")}
            for m in ms]
    emit(output, ms, rows=rows)


@sessions.command("reset")
@click.argument("name")
@output_options
@click.pass_context
def sessions_reset(ctx, name, output):
    """Forget what a session drew."""
    from persona_index.sessions import Sessions

    s = Sessions(open_index(ctx))
    _known_session(s, name)
    n = s.reset(name)
    emit(output, {"session": name, "forgotten": n})


def _known_session(sessions, name) -> None:
    """Exit 1 naming the sessions there are when ``name`` is none of them."""
    names = [r["session"] for r in sessions.list()]
    if name not in names:
        raise click.ClickException(f"no session {name!r} in this store; its sessions: "
                                   + (", ".join(names) or "none yet"))
