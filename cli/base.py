"""What every command module shares: the command class that keeps the CLI's
error contract (the group in cli/main.py keeps the rest), library errors as
one line, the store handle from the context, and the output check.

Command modules import this, never cli/main.py (which imports them).
"""

from __future__ import annotations

import click

from persona_index.errors import InvalidFilterError, PersonaIndexError, StrategyParameterError
from persona_index_cli.messages import as_flags


class Command(click.Command):
    """A command whose usage errors show its own usage (not the group's), and
    whose library usage errors (a bad strategy parameter or where clause)
    are click usage errors of the command (exit 2)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if exc.ctx is None or exc.ctx.command is not self:
                exc.ctx, exc.cmd = ctx, self
            raise
        except (StrategyParameterError, InvalidFilterError) as exc:
            msg = one_line(exc)
            raise click.UsageError(as_flags(ctx.parent, msg) if ctx.parent else msg,
                                   ctx=ctx) from None


class SubGroup(click.Group):
    command_class = Command



def one_line(exc) -> str:
    from persona_index.errors import write_cause
    from persona_index.store import clean_error

    msg = clean_error(exc)
    if not isinstance(exc, PersonaIndexError):  # a library's own error: say what kind, plainly
        kind = {"FileNotFoundError": "no such file", "PermissionError": "permission denied",
                "IsADirectoryError": "is a directory"}.get(type(exc).__name__, "error")
        cause = write_cause(exc)
        if kind == "error" and cause != msg:  # disk full, file too large, read-only ...
            kind = cause
        msg = f"{kind}: {msg}" if kind != "error" else msg
    return msg


def open_index(ctx, must_exist: bool = True):
    from persona_index.store import PersonaIndex

    return PersonaIndex(ctx.obj["db"], ctx.obj["model"], must_exist=must_exist,
                        single_writer=ctx.obj.get("single_writer", False),
                        lock_timeout=ctx.obj.get("lock_timeout"))


def check_outputs(ctx, outputs: dict, inputs: dict | None = None) -> None:
    """Refuse (exit 2) outputs under the store or any Lance table, or equal
    to an input or to each other, before any work
    (:func:`persona_index.outputs.check_outputs`)."""
    from persona_index.outputs import check_outputs as check

    check(outputs, db=ctx.obj["db"], inputs=inputs or {})
