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


#: library parameters that no option of the same name stands for, and the
#: flag that does (a store's ``path`` is the group's ``--db``)
LIBRARY_NAMES = {"path": "--db"}


def _options(ctx) -> dict:
    """parameter name -> (its longest flag, whether it is an on/off flag):
    the invoked command's options, then the group's, then :data:`LIBRARY_NAMES`."""
    name = ctx.invoked_subcommand
    cmd = ctx.command.get_command(ctx, name) if name else None
    root = ctx.find_root().command
    flags = {k: (v, False) for k, v in LIBRARY_NAMES.items()}
    for c in (root, cmd):
        flags.update({p.name: (max(p.opts, key=len), p.is_flag) for p in getattr(c, "params", ())
                      if isinstance(p, click.Option)})
    return flags


def as_flags(ctx, message: str) -> str:
    """A library message with the parameters it names (``text_field=...``,
    ``schema='none'``, ``single_writer=True``) said as the invoked command's
    or the group's flags (``--text-field``, ``--schema none``,
    ``--single-writer``): the library names parameters, the CLI maps them."""
    flags = _options(ctx)

    def flag(m):
        known, value = flags.get(m.group(1)), m.group(2)
        if known is None:
            return m.group(0)
        opt, on_off = known
        if value == "..." or (value == "True" and on_off):
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
