"""Library messages the CLI's way.

The library names its parameters (``text_field=...``, ``schema='none'``) and
issues :class:`~persona_index.errors.PersonaIndexWarning` (warnings and notes); the CLI says the same
with its flags (``--text-field``, ``--schema none``), one line each on stderr.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import click

from persona_index.errors import Note, PersonaIndexWarning


def as_flags(ctx, message: str) -> str:
    """A library message with the parameters it names (``text_field=...``,
    ``schema='none'``) said as the invoked command's flags (``--text-field``,
    ``--schema none``): the library names parameters, the CLI maps them."""
    name = ctx.invoked_subcommand
    cmd = ctx.command.get_command(ctx, name) if name else None
    flags = {p.name: max(p.opts, key=len) for p in getattr(cmd, "params", ())
             if isinstance(p, click.Option)}

    def flag(m):
        opt, value = flags.get(m.group(1)), m.group(2)
        if opt is None:
            return m.group(0)
        if value == "...":
            return opt
        if re.fullmatch(r"'[\w.-]*'", value):  # a plain word needs no quotes in a shell
            value = value[1:-1]
        return f"{opt} {value}"

    return re.sub(r"\b([a-z][a-z0-9_]*)=('[^']*'|\.\.\.|[\w.-]+)", flag, message)


@contextlib.contextmanager
def library_warnings(ctx):
    """The library's warnings and notes as one line each on stderr (``note: ...``
    or ``warning: ...``, flags for parameters), every time they occur."""
    def show(message, category, *args, **kwargs):
        if not issubclass(category, PersonaIndexWarning):
            return shown(message, category, *args, **kwargs)
        kind = "note" if issubclass(category, Note) else "warning"
        click.echo(f"{kind}: {as_flags(ctx, str(message))}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always", PersonaIndexWarning)
        shown = warnings.showwarning
        warnings.showwarning = show
        yield
