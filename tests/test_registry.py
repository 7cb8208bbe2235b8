"""The strategy registry: one list read by the CLI, the benchmark and
`persona-index strategies`; parameters validated before any work."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index.errors import StrategyParameterError, UnknownStrategyError
from persona_index.samplers.base import sample
from persona_index.samplers.registry import DEFAULT_STRATEGY, STRATEGIES, validate_params
from persona_index_cli.main import cli

ALL = sorted(STRATEGIES)


def test_package_root_exports_sample():
    from persona_index import sample as root_sample

    assert root_sample is sample


def test_every_registered_strategy_loads_and_declares_what_it_takes():
    import inspect

    for name, spec in STRATEGIES.items():
        fn = spec.load()
        sig = inspect.signature(fn).parameters
        own = {p for p in sig if p not in ("X", "k", "rng", "prior", "attributes", "prior_attributes")}
        assert own == {p.name for p in spec.params}, name
        for p in spec.params:  # the registry's default is the function's default
            assert sig[p.name].default == p.default, (name, p.name)


@pytest.mark.parametrize("name,params,fragment", [
    ("herding", {"alpha": 2}, "takes no parameter 'alpha'"),
    ("blend", {"lam": 5}, "lam=5.0 is out of range"),
    ("inverse-density", {"alpha": float("nan")}, "must be finite"),
    ("inverse-density", {"alpha": 1e6}, "out of range"),
    ("herding", {"tau": 0}, "out of range"),
    ("cells", {"n_cells": 2.5}, "whole number"),
    ("stratified", {"allocation": "even"}, "not one of equal, proportional"),
    ("stratified", {"target": {"region": {"Africa": float("inf")}}}, "finite number"),
    ("uniform", {"alpha": 1}, "its parameters: none"),
    ("herding", {"beta": "lots"}, "must be a number"),
    ("herding", {"beta": True}, "must be a number"),
])
def test_bad_parameters_are_refused_with_the_valid_ones(name, params, fragment):
    with pytest.raises(StrategyParameterError, match=fragment):
        validate_params(name, params)
    X = np.eye(8, dtype=np.float32)
    with pytest.raises(StrategyParameterError):
        sample(X, 2, name, seed=0, **params)


def test_valid_parameters_are_normalised():
    assert validate_params("inverse-density", {"alpha": "2", "n_neighbors": 5.0}) == {
        "alpha": 2.0, "n_neighbors": 5}
    assert validate_params("stratified", {"by": "region"}) == {"by": ["region"]}
    with pytest.raises(UnknownStrategyError, match="valid: herding, blend"):
        validate_params("best", {})


def test_strategies_command_reads_the_registry():
    r = CliRunner().invoke(cli, ["strategies", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [d["name"] for d in doc][0] == DEFAULT_STRATEGY
    assert sorted(d["name"] for d in doc) == ALL
    assert [d["name"] for d in doc if d.get("default")] == [DEFAULT_STRATEGY]
    herding = doc[0]
    defaults = {p["name"]: p["default"] for p in herding["params"]}
    assert (defaults["beta"], defaults["ramp"]) == (1.0, "linear")
    text = CliRunner().invoke(cli, ["strategies"]).output
    assert len(text.strip().splitlines()) == len(ALL)
    assert "herding (default)" in text


@pytest.mark.parametrize("args,fragment", [
    (["sample", "-n", "5", "--alpha", "2"], "takes no parameter 'alpha'"),
    (["sample", "-n", "5", "--strategy", "blend", "--lam", "5"], "out of range"),
    (["sample", "-n", "5", "--strategy", "inverse-density", "--alpha", "nan"], "finite"),
    (["sample", "-n", "5", "--param", "bogus=1"], "takes no parameter 'bogus'"),
    (["sample", "-n", "6", "--strategy", "stratified", "--target", "region=Africa:nan"], "finite"),
])
def test_cli_parameter_errors_exit_2(tmp_path, args, fragment):
    # the parameters are checked before the store is opened: no store needed
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.lance")] + args)
    assert r.exit_code == 2, r.output
    assert fragment in r.output and "Traceback" not in r.output


def test_reading_the_registry_stays_cheap():
    code = textwrap.dedent("""
        import sys
        from click.testing import CliRunner
        from persona_index_cli.main import cli
        for args in (["--help"], ["strategies"], ["sample", "--help"]):
            assert CliRunner().invoke(cli, args).exit_code == 0
        heavy = [m for m in ("scipy", "torch", "lancedb", "sentence_transformers") if m in sys.modules]
        print(",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


BIG = textwrap.dedent("""
    import sys, time
    import numpy as np
    from persona_index.samplers.base import sample
    name = sys.argv[1]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((21000, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    t = time.process_time()
    idx = sample(X, 20500, name, seed=0)
    assert len(idx) == 20500 and len(np.unique(idx)) == 20500
    assert idx.min() >= 0 and idx.max() < 21000
    print(round(time.process_time() - t, 2))
""")


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ALL if n != "stratified"])
def test_no_strategy_hangs_near_k_equals_n(name):
    """n = 21,000, d = 16, k = 20,500: k distinct indices within 60 s of CPU time (the
    child's own, one BLAS thread, so a loaded machine does not count against it; a wall
    limit of 300 s catches a real hang)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", BIG, name], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip()) < 60
