"""``--db`` and ``--embed-model`` before or after the command.

llm- and sqlite-utils-style CLIs take ``persona-index info --db X`` as well
as ``persona-index --db X info``. Click parses a group's options before the
command name only, so :func:`add_store_options` gives every command its own
copy of both.
A value after the command wins over ``$PERSONA_INDEX_DB`` and the default;
when both places name different values it is a usage error (exit 2).
"""

from __future__ import annotations

import os

import click
from click.core import ParameterSource

#: (the group's parameter, the key in ctx.obj, the flag)
STORE_OPTIONS = (("db", "db", "--db"), ("embed_model", "model", "--embed-model"))


def _same(key, a, b) -> bool:
    if key == "db" and "://" not in str(a) + str(b):
        return os.path.abspath(os.path.expanduser(str(a))) == \
            os.path.abspath(os.path.expanduser(str(b)))
    return a == b


def _callback(key, flag):
    def callback(ctx, param, value):
        if value is None or ctx.resilient_parsing:
            return
        obj = ctx.find_root().obj
        if obj is None:  # the group did not run (e.g. --help)
            return
        if obj["sources"].get(key) == ParameterSource.COMMANDLINE and \
                not _same(key, obj[key], value):
            raise click.UsageError(f"{flag} {obj[key]!r} before the command and {flag} "
                                   f"{value!r} after it disagree: give one", ctx=ctx)
        obj[key] = value
        if key == "db":
            obj["db_given"] = True
    return callback


def add_store_options(group: click.Group, skip=()) -> None:
    """Add hidden ``--db`` and ``--embed-model`` to every command under ``group``."""
    for name, cmd in group.commands.items():
        if name in skip:
            continue
        if isinstance(cmd, click.Group):
            add_store_options(cmd)
            continue
        for param, key, flag in STORE_OPTIONS:
            if any(flag in p.opts for p in cmd.params):
                continue
            cmd.params.append(click.Option(
                [flag, f"late_{param}"], default=None, expose_value=False,
                is_eager=True, callback=_callback(key, flag),
                help=f"The same as {flag} before the command (see persona-index --help)."))
