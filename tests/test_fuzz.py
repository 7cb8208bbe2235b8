"""Property tests over messy input: generated files either ingest
consistently or fail with file:line and leave the store as it was; random
bad CLI options exit 1 or 2 without a traceback."""

import gc
import json
import logging
import math
import os
import re
import socket
import tempfile

import click
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import InputFileError
from persona_index.ingest import ingest_file, persona_id
from tests.conftest import unchanged_after

SCRIPT_TEXTS = ["a nurse in Nairobi", "ครูในเชียงใหม่", "成都的老师", "जयपुर की शिक्षिका",
                "учитель из Казани", "معلم في القاهرة", "מורה בחיפה", "서울의 간호사",
                "東京の看護師", "Ο δάσκαλος στην Αθήνα", "👩‍🏫📚", "ნინო თბილისიდან"]

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**80, max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
rows = st.lists(st.fixed_dictionaries(
    {"persona": st.one_of(st.sampled_from(SCRIPT_TEXTS), st.text(min_size=1, max_size=30))},
    optional={"a": values, "b": values, "age": values}), min_size=1, max_size=12)

COUNTS = {"files": 0, "ingested": 0, "refused": 0, "tracebacks": 0}


def _write(path, rs):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rs) + "\n", encoding="utf-8")


def _state(idx):
    if not idx.exists:
        return None
    i = PersonaIndex(idx.path).info()
    return {k: i[k] for k in ("count", "table_version", "columns", "attributes")}


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=rows, second=rows)
def test_fuzz_ingest_is_consistent_or_refused_cleanly(tmp_path_factory, first, second):
    d = tmp_path_factory.mktemp("fuzz")
    idx = PersonaIndex(d / "p.lance", HashEmbedder(dim=16))
    for n, rs in enumerate((first, second)):
        f = d / f"f{n}.jsonl"
        _write(f, rs)
        before = _state(idx)
        had = set(idx.snapshot().dataset.to_table(columns=["id"]).column("id").to_pylist()) \
            if idx.exists else set()
        COUNTS["files"] += 1
        try:
            s = ingest_file(idx, f, near_dedup=False)
        except InputFileError as exc:
            COUNTS["refused"] += 1
            assert str(exc).startswith(str(f))
            assert _state(idx) == before  # nothing changed
            continue
        except Exception:  # anything else is a bug: no traceback may reach a user
            COUNTS["tracebacks"] += 1
            raise
        COUNTS["ingested"] += 1
        again = ingest_file(idx, f, near_dedup=False)
        assert again.added == 0  # a re-ingest adds nothing
        stored = {r["id"]: r for r in idx.snapshot().dataset.to_table().to_pylist()}
        seen_here: set = set()
        for r in rs:
            t = r["persona"].strip()
            if not t or len(t.encode()) > 2**20:
                continue
            pid = persona_id(t)
            assert pid in stored
            if pid in had or pid in seen_here:
                continue  # keep-first: an earlier row with this id holds its values
            seen_here.add(pid)
            if "age" in r and isinstance(r["age"], bool) and "age" in stored[pid]:
                v = stored[pid]["age"]
                assert v in (r["age"], str(r["age"]), str(r["age"]).lower())


def test_fuzz_figures():
    """Prints what the fuzz test generated (runs after it in file order)."""
    if not COUNTS["files"]:
        pytest.skip("the ingest fuzz test did not run")
    print("fuzz figures:", json.dumps(COUNTS))
    # both outcomes occur: an ingest that refused (or accepted) everything fails here
    assert COUNTS["ingested"] > 0 and COUNTS["refused"] > 0 and COUNTS["tracebacks"] == 0


@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cli") / "p.lance")
    PersonaIndex(path, HashEmbedder(dim=16)).add(
        [{"text": f"a person {i}", "region": ["EU", "AS"][i % 2]} for i in range(30)],
        attributes=["region"])
    yield from unchanged_after(path, path)  # commands that write get a store of their own


# -- the CLI: random bad options on every command ------------------------------
#
# Each command's bad values are derived from its click parameters (a wrong type
# for an int or float, out of range, NaN, inf, huge, a missing file, a
# directory, undecodable bytes, an unknown choice, empty or odd text), so an
# option renamed or added is fuzzed without touching this file. The commands
# that call an endpoint get a real OpenAI-compatible server on 127.0.0.1
# (tests/mock_server.py) or a closed port there; nothing leaves the machine.
# Every store is embedded with hash-16 so no model is loaded.

#: raw tokens of the first version of this test, mixed in across commands
JUNK = ["-n", "0", "-k", "-1", "--where", "x ==", "--strategy", "nope", "--seed", "abc", "--json",
        "--alpha", "nan", "--near", "", "--ids", "/nonexistent.jsonl", "--out",
        "/nonexistent/dir/x.jsonl", "--lam", "5", "--session", "bad name!", "--id", "zz", "--by",
        "nope", "--target", "a=b:nan", "--labels", "x", "--attr", "id", "--count", "-3"]
#: every command but bench (it runs the benchmark suite)
COMMANDS = ["similar", "distant", "sample", "coverage", "get", "info", "export", "sessions",
            "sessions list", "sessions show", "sessions reset", "tag", "strategies", "ingest",
            "outputs-report", "synthesize", "extract", "expand", "generate", "reembed"]
#: commands that call the endpoint
CALLERS = {"synthesize", "extract", "expand"}
#: commands that write a store: each case gets a fresh one
WRITERS = {"ingest", "generate", "extract", "expand"}
#: commands that may change the store they are given (a column, a session):
#: each case gets a copy of the shared one, which stays as it was
CHANGERS = {"tag", "sample", "sessions reset"}

HUGE = str(2**64)
INT_BAD = ["abc", "", "nan", "inf", "-1", "0", "1.5", "1e3", HUGE, "-" + HUGE]
FLOAT_BAD = ["nan", "inf", "-inf", "abc", "", "1e309", "-5", "5", "0", "1,5"]
PATH_BAD = ["@missing", "@dir", "@badutf8", "@empty", "@badjson", "@oddrows", "", "a\x00b",
            "\udcff.jsonl"]
TEXT_BAD = ["", " ", "x ==", "bad name!", "a\x00b", "\udcff\udcfe", "\u202eevil", "nan", "-",
            "@missing", "@dir", "@badutf8", "@badkey"]
#: options whose values need their own pools: URLs stay on 127.0.0.1 (or do not parse), models
#: are hash-* spellings (anything else would load a sentence-transformers model)
BY_NAME = {
    "base_url": ["@mock", "@closed", "not a url", "http://[::1", "", "ftp://127.0.0.1/x",
                 "http://127.0.0.1:0/v1", "http://127.0.0.1:@closedport"],
    "to_model": ["hash-0", "hash-8", "hash-16"],
    "model": ["hash-0", "hash-8", "hash-16"],  # the group's embedding model, either spelling
    "embed_model": ["hash-0", "hash-8", "hash-16"],
    "templates": ["math", "nope", "", "@dir", "@badutf8", "@empty", "@missing", "@badtmpl"],
    "db": ["@missing", "@badutf8", "@dir", ""],
}
#: a valid huge value here would only make the command run for a long time
COSTLY = {"count", "rounds", "retries", "n", "within", "compare_uniform"}
#: valid arguments that take each command past its own checks (positional ones by name)
BASE = {
    "similar": ({"text": "a person"}, []), "distant": ({"text": "a person"}, []),
    "sample": ({}, ["-n", "3"]), "coverage": ({}, ["--session", "s"]), "get": ({"ids": "x"}, []),
    "export": ({"out": "out.jsonl"}, []), "sessions show": ({"name": "s"}, []),
    "sessions reset": ({"name": "s"}, []), "tag": ({}, ["--attr", "t", "--labels", "a,b"]),
    "ingest": ({"path": "@good"}, []), "outputs-report": ({"outputs": "@outputs"}, []),
    "synthesize": ({}, ["--template", "math", "--personas", "@good", "--out", "out.jsonl",
                        "--base-url", "@mock"]),
    "extract": ({"corpus": "@corpus"}, ["--base-url", "@mock"]),
    "expand": ({}, ["--personas", "@good", "--base-url", "@mock"]),
    "reembed": ({"new_db": "@newdb"}, ["--to-model", "hash-8"]),
}
#: always given first (junk given later wins): no retry backoff, no 10,000-persona default
SAFE = {"synthesize": ["--retries", "0", "--timeout", "5", "--no-progress"],
        "extract": ["--retries", "0", "--timeout", "5"],
        "expand": ["--retries", "0", "--timeout", "5", "--rounds", "2"],
        "generate": ["--count", "5", "--no-progress"], "ingest": ["--no-progress"],
        "reembed": ["--no-progress"]}
LEAK = re.compile(r"Traceback|\.py\", line \d+|site-packages|"
                  r"\b[A-Z][A-Za-z]*(?:Error|Exception|Interrupt)\b|\bStopIteration\b")
CLI_COUNTS: dict = {}


class _Records(logging.Handler):
    """asyncio logs a request task's exception nobody awaited ("Task exception
    was never retrieved", with its traceback) when the task is collected, after
    the command has returned: caught here."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list = []

    def emit(self, record):
        self.records.append(record)


def _command(name):
    from persona_index_cli.main import cli

    cmd = cli
    for part in name.split():
        cmd = cmd.commands[part]
    return cmd


def _pool(p):
    if p.name in BY_NAME:
        return BY_NAME[p.name]
    t = p.type
    if isinstance(t, click.Choice):
        return ["nope", "", str(t.choices[0]).upper()]
    if isinstance(t, click.types.IntParamType):  # IntRange too
        return [v for v in INT_BAD if not (p.name in COSTLY and v == HUGE)]
    if isinstance(t, click.types.FloatParamType):
        return FLOAT_BAD
    if isinstance(t, click.Path):
        return PATH_BAD
    return TEXT_BAD


def _picks(params):
    """Lists of (param name, value) pairs over ``params``; a flag's value is one
    of its spellings."""
    choices = []
    for p in params:
        if p.name in ("help", "version"):
            continue
        if isinstance(p, click.Option) and p.is_flag:
            values = list(p.opts) + list(p.secondary_opts)
        else:
            values = _pool(p)
        choices.append(st.tuples(st.just(p.name), st.sampled_from(values)))
    return st.lists(st.one_of(choices), max_size=3) if choices else st.just([])


FILES = {
    "good.jsonl": '{"text": "a person 0", "id": "p0"}\n{"text": "a baker in Lyon"}\n',
    "corpus.txt": "a text about bees\nanother text about ants\n",
    "outputs.jsonl": '{"persona": "a baker", "response": "bread", "status": "ok"}\n',
    "empty.jsonl": "",
    "badjson.jsonl": '{"text": \n',
    "oddrows.jsonl": '[1, 2]\n{"response": "hi"}\n"text"\n{"text": 5}\n',
    "badtmpl.txt": "Write for {persona} in {nope} {",
}


@pytest.fixture(scope="module")
def fuzz_env(small_db, tmp_path_factory):
    """The mock endpoint, a closed port on 127.0.0.1, the shared store, and an
    API key no header can carry."""
    from tests.mock_server import MockServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = {"root": str(tmp_path_factory.mktemp("clifuzz")), "db": small_db, "closedport": port,
           "closed": f"http://127.0.0.1:{port}/v1", "badkey": "PERSONA_INDEX_FUZZ_KEY"}
    old = os.environ.get(env["badkey"])
    os.environ[env["badkey"]] = "s\u00e9cret\nX-Injected: 1"
    env["asyncio_log"] = _Records()
    logging.getLogger("asyncio").addHandler(env["asyncio_log"])
    try:
        with MockServer() as srv:
            env["mock"] = srv.url
            yield env
    finally:
        logging.getLogger("asyncio").removeHandler(env["asyncio_log"])
        if old is None:
            os.environ.pop(env["badkey"], None)
        else:
            os.environ[env["badkey"]] = old


def _case_files(env):
    """A fresh working directory with its own input files (a command may have
    been told to write over one of them), as @name -> path."""
    d = tempfile.mkdtemp(dir=env["root"])
    paths = {}
    for fname, text in FILES.items():
        paths[fname.split(".")[0]] = os.path.join(d, fname)
        with open(paths[fname.split(".")[0]], "w", encoding="utf-8") as fh:
            fh.write(text)
    paths["badutf8"] = os.path.join(d, "badutf8.jsonl")
    with open(paths["badutf8"], "wb") as fh:
        fh.write(b'{"text": "caf\xe9"}\n\xff\xfe\n')
    paths["dir"] = os.path.join(d, "adir")
    os.mkdir(paths["dir"])
    paths["missing"] = os.path.join(d, "nope", "x.jsonl")
    paths["newdb"] = os.path.join(d, "new.lance")
    return d, {**env, **paths}


def _resolve(v, env):
    """Replace an @name in ``v`` (longest names first) by its value in ``env``."""
    if isinstance(v, str) and "@" in v:
        for key in sorted((k for k in env if isinstance(env[k], str)), key=len, reverse=True):
            if "@" + key in v:
                return v.replace("@" + key, env[key])
    return v


def _options(params, picks):
    """argv tokens for ``picks``: {argument name: value} and option tokens."""
    by_name = {p.name: p for p in params}
    positional, opts = {}, []
    for pname, v in picks:
        p = by_name[pname]
        if isinstance(p, click.Argument):
            positional[pname] = v
        elif isinstance(p, click.Option) and p.is_flag:
            opts.append(v)
        else:
            opts += [p.opts[0], v]
    return positional, opts


def _argv(name, base, picks, group, raw, env):
    """The whole command line: the store (a fresh one for writers, a copy of
    the shared one for changers) embedded with hash-16, group junk, the
    command, its arguments (junk beats base), the safe defaults, the base
    options, then the junk options."""
    from persona_index_cli.main import cli

    cmd = _command(name)
    db = os.path.join(env["cwd"], "w.lance") if name in WRITERS else env["db"]
    if name in CHANGERS:
        import shutil

        db = str(shutil.copytree(env["db"], os.path.join(env["cwd"], "own.lance")))
    model_opt = next(p for p in cli.params if p.name in ("model", "embed_model")).opts[0]
    _, group_opts = _options(cli.params, group)
    positional, opts = _options(cmd.params, picks)
    base_args, base_opts = BASE.get(name, ({}, [])) if base else ({}, [])
    positional = {**base_args, **positional}
    args = [positional[p.name] for p in cmd.params
            if isinstance(p, click.Argument) and p.name in positional]
    tail = args + SAFE.get(name, []) + base_opts + opts + raw
    return (["--db", db, model_opt, "hash-16"] + [_resolve(a, env) for a in group_opts]
            + name.split() + [_resolve(a, env) for a in tail])


@pytest.mark.parametrize("name", COMMANDS)
@settings(max_examples=20, deadline=None, derandomize=True,  # the same cases every run
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_cli_bad_options_never_trace(fuzz_env, name, data):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    base = data.draw(st.sampled_from([True, True, False]), label="base")
    picks = data.draw(_picks(_command(name).params), label="picks")
    group = data.draw(st.lists(st.sampled_from([(p.name, v) for p in cli.params
                                                if p.name in BY_NAME for v in BY_NAME[p.name]]),
                               max_size=1), label="group")
    n_raw = data.draw(st.sampled_from([0, 0, 0, 1, 2]), label="raw tokens")  # mostly none:
    raw = data.draw(st.lists(st.sampled_from(JUNK), min_size=n_raw, max_size=n_raw),  # they are
                    label="raw")  # usage errors in most commands, which stop before the library
    cwd, env = _case_files(fuzz_env)
    argv = _argv(name, base, picks, group, raw, {**env, "cwd": cwd})
    here = os.getcwd()
    os.chdir(cwd)  # relative outputs land there, not in the checkout
    log = fuzz_env["asyncio_log"].records
    seen = len(log)
    try:
        r = CliRunner().invoke(cli, argv)
        if name in CALLERS:
            gc.collect()  # an unawaited task's exception is logged now, if any
    finally:
        os.chdir(here)
    unawaited = [rec.getMessage() for rec in log[seen:]]
    c = CLI_COUNTS.setdefault(name, {"cases": 0, "exit": {}, "tracebacks": 0})
    c["cases"] += 1
    c["exit"][str(r.exit_code)] = c["exit"].get(str(r.exit_code), 0) + 1
    shown = r.output + r.stderr
    leaked = r.exception is not None and not isinstance(r.exception, SystemExit)
    if leaked or unawaited or r.exit_code not in (0, 1, 2) or LEAK.search(shown):
        c["tracebacks"] += 1
    assert not leaked, (argv, repr(r.exception))
    assert not unawaited, (argv, unawaited)
    assert r.exit_code in (0, 1, 2), (argv, r.exit_code, shown)
    assert not LEAK.search(shown), (argv, shown)
    if r.exit_code == 1:  # a data error: one plain line says what was wrong
        assert r.stderr.strip().splitlines()[-1].startswith("Error: "), (argv, shown)
    elif r.exit_code == 2:  # a usage error, or a group without its command (help)
        assert "Error: " in r.stderr or r.stderr.startswith("Usage: "), (argv, shown)


def test_fuzz_cli_figures():
    """Per-command cases and exit codes of the CLI fuzz test (runs after it)."""
    if not CLI_COUNTS:
        pytest.skip("the CLI fuzz test did not run")
    print("cli fuzz figures:", json.dumps(CLI_COUNTS, sort_keys=True))
    assert all(c["tracebacks"] == 0 for c in CLI_COUNTS.values())
