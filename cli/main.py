"""The persona-index command line: parse, call the library, format.

Every command takes ``--json`` and then prints exactly one JSON document on
stdout; progress and warnings go to stderr. Exit codes: 0 success, 1 a data
error (one line on stderr), 2 a usage error.
"""

from __future__ import annotations

import json

import click

from persona_index.errors import (InvalidFilterError, OutputPathError, PersonaIndexError,
                                  StrategyParameterError)
from persona_index.store import DEFAULT_DB, ENV_DB
from persona_index_cli import query, sample, store_cmds, synth
from persona_index_cli.base import Command, SubGroup, one_line
from persona_index_cli.curate import curate_command
from persona_index_cli.habits import add_store_options
from persona_index_cli.messages import as_flags, library_warnings
from persona_index_cli.output import renamed_option
# names other code imports from here (`from persona_index_cli.main import strict_json`)
from persona_index_cli.base import check_outputs, open_index  # noqa: F401
from persona_index_cli.output import emit, format_table, output_options, strict_json  # noqa: F401


class _Group(click.Group):
    """The CLI's error contract: a usage or parameter error exits 2, a data
    error exits 1, each with one line on stderr naming the option, the file
    and line or the field; with ``--json`` the same error is also printed as
    one JSON document (``{"error": ..., "kind": "usage" | "data"}``) on stdout.
    No Python exception type names or internal paths reach the user."""

    command_class = Command
    group_class = SubGroup

    def parse_args(self, ctx, args):
        ctx.meta["persona_index_json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            with library_warnings(ctx):
                return super().invoke(ctx)
        except click.exceptions.Exit:
            raise
        except click.Abort:
            raise
        except click.UsageError as exc:
            self._json_error(ctx, exc.format_message(), "usage")
            raise
        except click.ClickException as exc:
            self._json_error(ctx, exc.format_message(), "data")
            raise
        except (StrategyParameterError, InvalidFilterError, OutputPathError) as exc:  # exit 2
            msg = as_flags(ctx, one_line(exc))
            self._json_error(ctx, msg, "usage")
            raise click.UsageError(msg, ctx=ctx) from None
        except BrokenPipeError:  # `| head` closed stdout: end quietly, exit 0
            _stdout_gone()
            raise click.exceptions.Exit(0) from None
        except (PersonaIndexError, ValueError, OSError, RuntimeError) as exc:
            msg = as_flags(ctx, one_line(exc))
            self._json_error(ctx, msg, "data")
            raise click.ClickException(msg) from None

    @staticmethod
    def _json_error(ctx, message, kind):
        if ctx.meta.get("persona_index_json"):
            click.echo(json.dumps({"error": message, "kind": kind}))


def _stdout_gone() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that the
    interpreter's last flush cannot fail again."""
    import os
    import sys

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar=ENV_DB, default=DEFAULT_DB, show_default=True,
              help=f"The store's directory (or ${ENV_DB}).")
@click.option("--embed-model", default=None,
              help="Embedding model: a local sentence-transformers folder, or 'hash-384' for "
                   "tests. Default: the store's own model, or all-MiniLM-L6-v2 for a new store.")
@click.option("--single-writer", is_flag=True,
              help="Object-storage stores (s3://) cannot be locked: promise that no other "
                   "process writes or draws meanwhile, to allow writes and session draws there.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="Give up (exit 1) when the store's writer or session lock is not free within "
                   "SECONDS (default: wait; a waiter says after 2 s what it waits for).")
@click.version_option(package_name="persona-index")
@renamed_option("--model", "--embed-model", "embed_model")
@click.pass_context
def cli(ctx, db, embed_model, single_writer, lock_timeout):
    """persona-index: an embedded persona index with a coverage-aware sampler.

    Build a store of personas with embeddings and attributes, query similar
    and distant personas, draw batches that cover the persona space, and
    measure coverage.
    """
    from click.core import ParameterSource

    ctx.obj = {"db": db, "model": embed_model, "single_writer": single_writer,
               "lock_timeout": lock_timeout,
               "db_given": ctx.get_parameter_source("db") is not ParameterSource.DEFAULT,
               "sources": {"db": ctx.get_parameter_source("db"),
                           "model": ctx.get_parameter_source("embed_model")}}


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench(ctx):
    """Run the benchmark suite: from a checkout, `python -m benchmarks` (e.g. --quick)."""
    try:
        from benchmarks.__main__ import main as bench_main
    except ImportError:
        raise click.ClickException("the benchmarks live in the source checkout, not in the "
                                   "installed package: run `python -m benchmarks` from the "
                                   "repository root") from None
    ctx.exit(bench_main(list(ctx.args)))


# the commands live in one module per area; curate in its own file
for _cmd in (store_cmds.ingest, store_cmds.generate, store_cmds.get, store_cmds.info,
             store_cmds.export, store_cmds.reembed, store_cmds.tag, query.similar, query.distant,
             sample.strategies, sample.sample, sample.coverage, sample.sessions,
             synth.synthesize, synth.extract, synth.expand, synth.outputs_report,
             curate_command):
    cli.add_command(_cmd)

add_store_options(cli, skip=("bench",))


def main():
    """The console script's entry point (pyproject's ``persona-index``): the
    CLI, plus a reader of stdout that goes away (``| head``) ending any
    command with exit 0 and no noise, also when the last flush is the one that
    finds the pipe closed."""
    import sys

    try:
        cli(prog_name="persona-index")
        code = 0
    except SystemExit as exc:
        code = exc.code
    except BrokenPipeError:
        code = 0
        _stdout_gone()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        _stdout_gone()  # the command's own exit status stands
    except OSError:
        pass
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
