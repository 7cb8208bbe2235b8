"""The population-weighted generated pool (issue 13 item 6)."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index.errors import UnknownWeightsError
from persona_index.generate import (WEIGHTED, WEIGHTS, generate, marginal_errors,
                                    population_tables, tables, target_shares)
from persona_index_cli.main import cli


def _noise_bound(shares, n):
    """An upper bound on the expected TV distance of an exact n-draw from
    ``shares``: E|X_i/n - p_i| <= sqrt(p_i (1 - p_i) / n), halved and summed."""
    p = np.array(list(shares.values()))
    return 0.5 * float(np.sqrt(p * (1 - p) / n).sum())


def test_tables_name_their_sources_and_cover_every_pool_country():
    pop = population_tables()
    pool = [c for cs in tables()["regions"].values() for c in cs]
    assert sorted(pop["countries"]["population"]) == sorted(pool)
    assert pop["countries"]["missing"] == []
    assert all(v["population"] > 0 and len(v["iso3"]) == 3
               for v in pop["countries"]["population"].values())
    for part in ("countries", "age_bands"):
        src = pop[part]["source"]
        assert src["licence"] and src["repository"].startswith("https://github.com/")
        assert len(src["commit"]) == 40 and src["year"] >= 2024
    # every band of the pool is made of source groups, and every group is used
    bands = pop["age_bands"]["bands"]
    assert list(bands) == list(tables()["age_bands"])
    used = {g for parts in bands.values() for g in parts}
    assert used == set(pop["age_bands"]["groups"])


@pytest.mark.parametrize("weights", WEIGHTS)
def test_shares_sum_to_one_and_cover_the_pool(weights):
    s = target_shares(weights)
    pool = [c for cs in tables()["regions"].values() for c in cs]
    assert list(s["country"]) == pool
    assert list(s["age_band"]) == list(tables()["age_bands"])
    for attr in WEIGHTED:
        assert math.isclose(sum(s[attr].values()), 1.0, rel_tol=0, abs_tol=1e-12)
        assert all(v > 0 for v in s[attr].values())


def test_population_shares_follow_the_source_counts():
    s = target_shares("population")["country"]
    pop = population_tables()["countries"]["population"]
    total = sum(v["population"] for v in pop.values())
    assert s["India"] == pytest.approx(pop["India"]["population"] / total)
    assert s["India"] > s["Germany"] > s["Samoa"]
    groups = population_tables()["age_bands"]["groups"]
    a = target_shares("population")["age_band"]
    # 25-34 against 55-64 is a ratio of plain source sums (no split group)
    assert a["25-34"] / a["55-64"] == pytest.approx(
        (groups["25-29"] + groups["30-34"]) / (groups["55-59"] + groups["60-64"]))


def test_weighted_draw_meets_its_targets_and_uniform_does_not():
    n = 20_000
    pop = list(generate(n, seed=0, weights="population"))
    uni = list(generate(n, seed=0))
    targets = target_shares("population")
    err_pop, err_uni = marginal_errors(pop), marginal_errors(uni)
    for attr in WEIGHTED:
        named = sum(r[attr] is not None for r in pop)
        assert named > n // 4
        # 3x a bound on the expected sampling error, which a weighted draw
        # misses almost never, and under 0.05 in any case
        bound = min(3 * _noise_bound(targets[attr], named), 0.05)
        assert err_pop[attr] < bound, (attr, err_pop[attr], bound)
    assert err_uni["country"] > 0.5 > 10 * err_pop["country"]
    assert err_uni["age_band"] > 2 * err_pop["age_band"]
    # and against uniform targets the roles swap
    assert marginal_errors(uni, "uniform")["country"] < marginal_errors(pop, "uniform")["country"]


@pytest.mark.parametrize("seed", range(8))
def test_weighted_draw_within_sampling_error_over_seeds(seed):
    recs = list(generate(3000, seed=seed, weights="population"))
    targets, err = target_shares("population"), marginal_errors(recs)
    for attr in WEIGHTED:
        named = sum(r[attr] is not None for r in recs)
        assert err[attr] < 3 * _noise_bound(targets[attr], named), (seed, attr, err[attr])


def test_marginal_errors_reference_values():
    recs = [{"country": "India", "age_band": "18-24"}, {"country": "Kenya", "age_band": None},
            {"country": None, "age_band": "18-24"}, {"country": "Atlantis", "age_band": None}]
    u = target_shares("uniform")
    e = marginal_errors(recs, "uniform")
    # countries: India, Kenya and Atlantis a third each; Atlantis is outside the target
    want = 0.5 * (2 * abs(1 / 3 - u["country"]["India"]) + 1 / 3
                  + (len(u["country"]) - 2) * u["country"]["India"])
    assert e["country"] == pytest.approx(want)
    assert e["age_band"] == pytest.approx(1 - 1 / 6)
    assert all(math.isnan(v) for v in marginal_errors([], "population").values())


def test_same_seed_same_personas_and_uniform_is_unchanged():
    a = list(generate(300, seed=11, weights="population"))
    assert a == list(generate(300, seed=11, weights="population"))
    assert a != list(generate(300, seed=12, weights="population"))
    # the default draws exactly as before weights existed
    assert list(generate(300, seed=11)) == list(generate(300, seed=11, weights="uniform"))
    assert next(generate(1, seed=0))["persona"] == (
        "A graphic designer turned consultant who is running for local office.")
    # a Generator seed is used as given, and each call normalises its own
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert list(generate(50, seed=g1, weights="population")) == list(
        generate(50, seed=g2, weights="population"))


def test_weights_apply_only_to_personas_that_name_the_attribute():
    for r in generate(2000, seed=4, weights="population"):
        if r["country"]:
            assert r["country"] in r["persona"]
        else:
            assert r["region"] is None


def test_unknown_weights_raise_at_the_call():
    with pytest.raises(UnknownWeightsError, match="valid: uniform, population"):
        generate(5, seed=0, weights="census")  # not iterated: raised before any draw
    with pytest.raises(ValueError):
        target_shares("nope")
    with pytest.raises(ValueError):
        marginal_errors([], "nope")


def _cli(args):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_weights_population_writes_a_weighted_pool(tmp_path):
    out = tmp_path / "pop.jsonl"
    r = _cli(["generate", "--count", "6000", "--seed", "0", "--weights", "population",
              "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"written": 6000, "out": str(out)}
    recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert recs == list(generate(6000, seed=0, weights="population"))
    targets = target_shares("population")
    named = [x["country"] for x in recs if x["country"]]
    err = marginal_errors(recs)
    assert err["country"] < 3 * _noise_bound(targets["country"], len(named))
    # the two most populous countries are drawn most, far above a uniform 1/79
    top = sorted(set(named), key=named.count, reverse=True)[:2]
    assert set(top) == {"India", "China"}
    assert named.count("India") / len(named) > 5 / 79
    # the default stays uniform
    uni = tmp_path / "uni.jsonl"
    assert _cli(["generate", "--count", "6000", "--seed", "0", "--out", str(uni)]).exit_code == 0
    uni_recs = [json.loads(line) for line in uni.read_text(encoding="utf-8").splitlines()]
    assert (marginal_errors(uni_recs, "uniform")["country"]
            < marginal_errors(recs, "uniform")["country"])


def test_cli_weights_population_into_a_store_names_them_in_the_source(tmp_path):
    by_name = {p.name: p for p in cli.params}
    model_opt = (by_name.get("embed_model") or by_name["model"]).opts[0]
    r = _cli(["--db", str(tmp_path / "p.lance"), model_opt, "hash-16", "generate", "--count", "40",
              "--weights", "population", "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["source"] == "generated:seed=0,weights=population" and doc["read"] == 40


def test_cli_bad_weights_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(cli, ["generate", "--count", "3", "--weights", "census",
                                 "--out", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 2
    assert "--weights" in r.output and "population" in r.output
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_choices_are_the_library_names():
    opt = next(p for p in cli.commands["generate"].params if p.name == "weights")
    assert tuple(opt.type.choices) == WEIGHTS and opt.default == "uniform"
