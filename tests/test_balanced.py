"""Balanced and covering at once (issue #24): herding inside strata, quotas by
raking, allocation and min-per-cell, ready targets, the error said, replay of
older manifests, and the ``draw`` signature."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index.embed import HashEmbedder
from persona_index.errors import SamplingError, StrategyParameterError
from persona_index.samplers.base import SamplingWarning, sample
from persona_index.samplers.herding import CONSTANT_RULE, herding
from persona_index.samplers.stratified import fit_quotas, stratified, target_weights
from persona_index.sampling import draw, replay
from persona_index_cli.main import cli

REGIONS = ["Africa", "Asia", "Europe"]
AGES = ["young", "old"]


def unit(X):
    X = np.asarray(X, dtype=np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def small_store(tmp_path):
    """The fixture the golden ids below were drawn from (hash embedder, 60 rows)."""
    recs = [{"text": f"persona {i} likes {['tea', 'maps', 'chess', 'boats', 'code'][i % 5]}",
             "region": REGIONS[i % 3], "age": AGES[(i // 3) % 2]} for i in range(60)]
    idx = PersonaIndex(str(tmp_path / "p.lance"), HashEmbedder(dim=16))
    idx.add(recs, attributes=["region", "age"])
    return idx


# Drawn by the code before this change (main at f5ac1ac, whose stratified draw
# was uniform inside strata with the product rule and recorded neither
# params.method nor params.quotas) on small_store, by scripts run there.
GOLDEN_V1 = {
    "plain": (9, 5, {"by": ["region", "age"]},
              ["2acb24b303a19cc6dc5b", "0bac8b9dafa82756a615", "6719305c38e8d00dde9a",
               "89ef3b52bb8127d12322", "e06bc00c04a8f8355fb4", "ae6c0e3d59ffb2ba9841",
               "68bab97adf0578672684", "f1f028305d5a089bfd67", "45dffe8e01f9b18c3bc7"]),
    "target": (10, 6, {"by": ["region", "age"],
                       "target": {"region": {"Africa": 0.5, "Asia": 0.3, "Europe": 0.2},
                                  "age": {"young": 0.7, "old": 0.3}}},
               ["c9cd1f222c32d8cc63d2", "89174f855f58428a9d07", "f1e3a9bbb9c9f0e32bc0",
                "163086f6e95728b7b767", "30dfe706e8424d53b79f", "e1061014c36f81ac2bea",
                "89ef3b52bb8127d12322", "457bad892856382e9729", "97181ffe647dc225cecb",
                "ba39855428c19b73fd34"]),
    "farthest": (8, 7, {"by": ["region"], "method": "farthest"},
                 ["734fa1be3fc7701d150a", "c3812fedfcd8a9c93a6f", "f3adb57e0c8dea852367",
                  "66536b56df977c01a213", "ba39855428c19b73fd34", "f8df3b5aa76ae5cf8779",
                  "8a7313f5209036110bb9", "8b982db56f90c766a043"]),
}


# --- (1) herding inside strata; older manifests replay --------------------------------------


def test_a_manifest_without_method_replays_as_uniform_with_the_product_rule(tmp_path):
    idx = small_store(tmp_path)
    for name, (n, seed, params, ids) in GOLDEN_V1.items():
        manifest = {"manifest_version": 1, "strategy": "stratified", "params": params,
                    "seed": seed, "n": n, "where": None, "near": None, "within": None,
                    "store": idx.path, "table_version": idx.version, "session": None,
                    "session_version": None, "exclude_sessions": [], "ids": ids}
        assert replay(manifest).ids == ids, name
        if "method" not in params:  # today's default (herding) on the same seed draws others
            assert draw(idx, n, seed=seed, params=dict(params), record=False).ids != ids, name


def test_the_default_inside_strata_is_herding_on_each_stratum_and_recorded(tmp_path):
    idx = small_store(tmp_path)
    b = draw(idx, 12, by=["region", "age"], seed=3, record=False)
    assert b.manifest["strategy"] == "stratified"
    p = b.manifest["params"]
    assert (p["method"], p["quotas"], p["min_per_cell"], p["allocation"]) == \
        ("herding", "raking", 0, "equal")
    assert replay(b.manifest).ids == b.ids
    # each stratum's picks are herding's picks on that stratum's rows alone (pools
    # this small involve no randomness in herding)
    snap = idx.snapshot()
    cols = snap.attribute_columns(["region", "age"])
    picked = set(b.ids)
    for r in REGIONS:
        for a in AGES:
            members = np.flatnonzero((cols["region"] == r) & (cols["age"] == a))
            mine = [i for i in snap.ids.take(members).to_pylist() if i in picked]
            alone = herding(snap.vectors[members], len(mine), rng=np.random.default_rng(0))
            assert sorted(mine) == sorted(snap.ids.take(members[alone]).to_pylist())


def test_the_session_prior_counts_per_stratum():
    rng = np.random.default_rng(0)
    X = unit(rng.standard_normal((300, 12)))
    g = np.array(["a", "b", "c"] * 100, dtype=object)
    P = unit(rng.standard_normal((9, 12)))
    pg = np.array(["a"] * 5 + ["b"] * 4, dtype=object)
    idx = stratified(X, 12, rng=np.random.default_rng(1), attributes={"g": g}, prior=P,
                     prior_attributes={"g": pg})
    for v, prior in (("a", P[:5]), ("b", P[5:]), ("c", None)):
        members = np.flatnonzero(g == v)
        mine = sorted(i for i in idx.tolist() if g[i] == v)
        alone = herding(X[members], len(mine), rng=np.random.default_rng(0), prior=prior,
                        **CONSTANT_RULE)  # the rule stratified herds with inside a stratum
        assert mine == sorted(members[alone].tolist()), v
    # and a stratum's own prior changes its picks (it is not ignored)
    no_prior = stratified(X, 12, rng=np.random.default_rng(1), attributes={"g": g})
    assert sorted(i for i in idx if g[i] == "a") != sorted(i for i in no_prior if g[i] == "a")
    # without prior_attributes, every stratum's herding sees the whole prior
    whole = stratified(X, 12, rng=np.random.default_rng(1), attributes={"g": g}, prior=P)
    members = np.flatnonzero(g == "c")
    alone = herding(X[members], 4, rng=np.random.default_rng(0), prior=P, **CONSTANT_RULE)
    assert sorted(i for i in whole.tolist() if g[i] == "c") == sorted(members[alone].tolist())


def test_a_session_batch_never_repeats_and_replays(tmp_path):
    idx = small_store(tmp_path)
    b1 = draw(idx, 12, by="region", seed=1, session="s")
    b2 = draw(idx, 12, by="region", seed=1, session="s")
    assert not set(b1.ids) & set(b2.ids)
    assert b2.manifest["prior_count"] == 12 and replay(b2.manifest).ids == b2.ids


# --- (2) raking against the product rule ---------------------------------------------------


def correlated_table(n=10_000, seed=0):
    """Region and age band correlated, some cells empty (the done-when table's shape)."""
    rng = np.random.default_rng(seed)
    regions = np.array(["A", "B", "C", "D"])
    bands = np.array(["18-34", "35-54", "55+"])
    region = rng.choice(regions, n, p=[0.4, 0.3, 0.2, 0.1])
    # young skew in A, old skew in C; D has no 55+ and B no 18-34: two empty cells
    probs = {"A": [0.7, 0.25, 0.05], "B": [0.0, 0.6, 0.4], "C": [0.1, 0.3, 0.6],
             "D": [0.5, 0.5, 0.0]}
    band = np.array([rng.choice(bands, p=probs[r]) for r in region])
    return region.astype(object), band.astype(object)


def marginal_tv(col, idx, share):
    vals = col[idx]
    return 0.5 * sum(abs((vals == v).mean() - share.get(v, 0.0)) for v in set(vals) | set(share))


def test_raking_meets_both_marginals_where_the_product_rule_cannot():
    region, band = correlated_table()
    X = unit(np.random.default_rng(1).standard_normal((len(region), 8)))
    target = {"region": {"A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25},
              "age_band": {"18-34": 0.4, "35-54": 0.3, "55+": 0.3}}
    attrs = {"region": region, "age_band": band}
    tv = {}
    for quotas in ("raking", "product"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplingWarning)
            idx = sample(X, 300, "stratified", seed=0, attributes=attrs, target=target,
                         quotas=quotas, method="uniform")
        tv[quotas] = {a: marginal_tv(attrs[a], idx, target[a]) for a in target}
    # raking: each marginal met to the rounding (one persona in 300); the product rule misses
    assert max(tv["raking"].values()) <= 1 / 300 + 1e-9
    assert tv["product"]["age_band"] > 0.02 > max(tv["raking"].values())
    fit = fit_quotas(attrs, ["region", "age_band"], 300, target=target)
    assert fit.empty == 2 and len(fit.cells) == 10


def test_raking_equals_the_product_rule_on_an_independent_pool():
    rng = np.random.default_rng(3)
    region = rng.choice(["a", "b", "c"], 3000).astype(object)
    age = rng.choice(["y", "o"], 3000).astype(object)
    # make the pool exactly independent: sizes are outer products
    region = np.array(["a"] * 1200 + ["b"] * 1200 + ["c"] * 600, dtype=object)
    age = np.array((["y"] * 800 + ["o"] * 400) * 2 + ["y"] * 400 + ["o"] * 200, dtype=object)
    target = {"region": {"a": 0.2, "b": 0.3, "c": 0.5}, "age": {"y": 0.4, "o": 0.6}}
    fit = fit_quotas({"region": region, "age": age}, ["region", "age"], 100, target=target)
    from persona_index.samplers.stratified import strata_codes

    inv, labels = strata_codes({"region": region, "age": age}, ["region", "age"])
    w = target_weights(labels, ["region", "age"], np.bincount(inv), target)
    assert np.allclose(fit.expected, 100 * w / w.sum(), atol=1e-6)


# --- (3) allocation, min-per-cell, empty and thin cells, unknown values ---------------------


def test_an_empty_cell_gets_nothing_and_the_marginals_still_hold():
    region, band = correlated_table(2000, seed=4)
    attrs = {"region": region, "age_band": band}
    fit = fit_quotas(attrs, ["region", "age_band"], 120,
                     target={"age_band": {"18-34": 0.2, "35-54": 0.3, "55+": 0.5}})
    present = set(zip(region.tolist(), band.tolist()))
    assert set(fit.cells) == present and ("D", "55+") not in present  # empty: not a cell
    assert fit.empty == 2 and abs(fit.expected.sum() - 120) < 1e-6
    by_band = {b: sum(x for c, x in zip(fit.cells, fit.expected) if c[1] == b)
               for b in ("18-34", "35-54", "55+")}
    assert np.allclose(list(by_band.values()), [24, 36, 60], atol=1e-6)


def test_a_thin_cell_gives_what_it_has_and_is_reported():
    rng = np.random.default_rng(5)
    X = unit(rng.standard_normal((403, 8)))
    region = np.array(["A"] * 200 + ["B"] * 200 + ["C"] * 3, dtype=object)
    target = {"region": {"A": 0.4, "B": 0.4, "C": 0.2}}
    with pytest.warns(SamplingWarning, match=r"1 thin cell\(s\) short of their quota .*region=C"):
        idx = sample(X, 50, "stratified", seed=0, attributes={"region": region}, target=target)
    got = {v: int((region[idx] == v).sum()) for v in "ABC"}
    # C gives its 3; the 7 it lacks go to A and B alike (23.5 each)
    assert got["C"] == 3 and sorted([got["A"], got["B"]]) == [23, 24]
    fit = fit_quotas({"region": region}, ["region"], 50, target=target)
    assert fit.thin == [{"cell": {"region": "C"}, "size": 3, "wanted": 10.0}]


def test_min_per_cell_and_allocation_alongside_targets():
    region, band = correlated_table(3000, seed=6)
    X = unit(np.random.default_rng(2).standard_normal((len(region), 8)))
    attrs = {"region": region, "age_band": band}
    target = {"region": {"A": 0.7, "B": 0.1, "C": 0.1, "D": 0.1}}
    for alloc in ("equal", "proportional"):
        idx = sample(X, 200, "stratified", seed=1, attributes=attrs, target=target,
                     allocation=alloc, min_per_cell=6, method="uniform")
        cells = {c: 0 for c in set(zip(region.tolist(), band.tolist()))}
        for i in idx:
            cells[(region[i], band[i])] += 1
        sizes = {c: int(((region == c[0]) & (band == c[1])).sum()) for c in cells}
        assert all(n >= min(6, sizes[c]) for c, n in cells.items()), (alloc, cells)
        assert marginal_tv(region, idx, target["region"]) <= 2 / 200 + 1e-9
    # equal starts every cell alike: its young/old split inside A is flatter than proportional's
    fe = fit_quotas(attrs, ["region", "age_band"], 200, target=target, allocation="equal")
    fp = fit_quotas(attrs, ["region", "age_band"], 200, target=target,
                    allocation="proportional")
    a = [i for i, c in enumerate(fe.cells) if c[0] == "A"]
    assert np.std(fe.expected[a]) < np.std(fp.expected[a])
    with pytest.raises(StrategyParameterError, match="min_per_cell=40 asks for"):
        fit_quotas(attrs, ["region", "age_band"], 200, min_per_cell=40)


def test_a_target_value_the_pool_lacks_names_it_and_the_valid_values(tmp_path):
    idx = small_store(tmp_path)
    with pytest.raises(StrategyParameterError, match=r"'Mars' of 'region' is not in the store; "
                                                      r"its values: Africa, Asia, Europe"):
        draw(idx, 6, target={"region": {"Mars": 0.5, "Asia": 0.5}})
    # in the store but not in the pool after the filter: a data error (exit 1), named
    with pytest.raises(SamplingError, match=r"'Europe' of 'region' is not in the pool") as e:
        draw(idx, 6, target={"region": {"Europe": 0.5, "Asia": 0.5}},
             where="region != 'Europe'")
    assert not isinstance(e.value, StrategyParameterError)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "6", "--target",
                            "region=Mars:0.5,Asia:0.5"])
    assert r.exit_code == 2 and "'Mars'" in r.stderr and "Africa, Asia, Europe" in r.stderr
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "6", "--target",
                            "region=Europe:0.5,Asia:0.5", "--where", "region != 'Europe'"])
    assert r.exit_code == 1 and "not in the pool" in r.stderr


# --- (4) ready targets ---------------------------------------------------------------------


def test_target_file_and_its_errors(tmp_path):
    idx = small_store(tmp_path)
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"region": {"Africa": 0.5, "Asia": 0.25, "Europe": 0.25}}))
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "8", "--target-file", str(f),
                            "--seed", "0", "--json"])
    doc = json.loads(r.stdout)
    assert r.exit_code == 0 and doc["manifest"]["params"]["target"] == json.loads(f.read_text())
    assert sorted(p["region"] for p in doc["personas"]).count("Africa") == 4
    f.write_text('{"region": {"Africa": 0.5,\n "Asia": }}')
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "8", "--target-file", str(f)])
    assert r.exit_code == 1 and f"{f}:2: not JSON" in r.stderr
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "8", "--target-file", str(f),
                            "--target", "world"])
    assert r.exit_code == 2 and "--target world goes alone" in r.stderr


def test_target_world_matches_region_and_age_band(tmp_path):
    from persona_index.generate import generate
    from persona_index.targets import world_shares

    recs = [{"text": r["persona"], "region": r["region"], "age_band": r["age_band"]}
            for r in generate(3000, seed=21) if r["region"] and r["age_band"]]
    idx = PersonaIndex(str(tmp_path / "w.lance"), HashEmbedder(dim=32))
    idx.add(recs, attributes=["region", "age_band"])
    b = draw(idx, 60, target="world", seed=0, record=False)
    m = b.manifest
    assert m["target_matched"]["matched"] == ["region", "age_band"]
    assert m["target_matched"]["unmatched"] == ["country"]
    w = world_shares()
    assert m["params"]["target"]["region"] == pytest.approx(w["region"])
    rep = b.balance(uniform_draws=5)
    # every cell can fill its quota: each marginal count within half a persona of 60 x share,
    # so TV <= values / (4 k)
    assert rep["thin_cells"] == []
    assert rep["marginal_tv"]["region"] <= 7 / 240 and rep["marginal_tv"]["age_band"] <= 6 / 240
    assert replay(m).ids == b.ids  # the shares are in the manifest, not looked up again
    r = CliRunner().invoke(cli, ["--db", idx.path, "sample", "-n", "20", "--target", "world",
                                 "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "target world: matched region, age_band; the store has no country" in r.stderr


# --- (5) the error, said --------------------------------------------------------------------


def test_sample_and_coverage_say_the_error(tmp_path):
    idx = small_store(tmp_path)
    runner = CliRunner()
    t = ["--target", "region=Africa:0.5,Asia:0.3,Europe:0.2", "--target", "age=young:0.6,old:0.4"]
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "20", "--seed", "2", "--json"] + t)
    bal = json.loads(r.stdout)["balance"]
    assert r.exit_code == 0 and bal["by"] == ["region", "age"]
    assert set(bal["marginal_tv"]) == {"region", "age"} and bal["marginal_tv"]["region"] == 0.0
    assert bal["within"]["uniform_draws"] == 20 and set(bal["within"]["z"]) == {"mean_nearest",
                                                                               "vendi"}
    ids = [p["id"] for p in json.loads(r.stdout)["personas"]]
    f = tmp_path / "ids.txt"
    f.write_text("\n".join(ids))
    r = runner.invoke(cli, ["--db", idx.path, "coverage", "--ids", str(f), "--json"] + t)
    cov = json.loads(r.stdout)
    assert cov["balance"]["marginal_tv"] == bal["marginal_tv"]
    assert cov["balance"]["joint_tv"] == pytest.approx(bal["joint_tv"])
    r = runner.invoke(cli, ["--db", idx.path, "coverage", "--ids", str(f)] + t)
    assert r.exit_code == 0
    for label in ("tv to target [region]", "tv to target [age]", "joint tv to fitted quotas",
                  "within-strata mean nearest", "within-strata vendi"):
        assert label in r.stdout
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "20", "--seed", "2"] + t)
    assert "joint tv to fitted quotas" in r.stderr and "z (+ better)" in r.stderr


def test_balance_report_against_a_hand_count():
    from persona_index.balance import balance_report

    rng = np.random.default_rng(7)
    X = unit(rng.standard_normal((60, 6)))
    g = np.array(["a"] * 40 + ["b"] * 20, dtype=object)
    sel = [0, 1, 2, 40]  # 3 a, 1 b
    rep = balance_report(X, {"g": g}, sel, ["g"], target={"g": {"a": 0.5, "b": 0.5}},
                         uniform_draws=0)
    assert rep["marginal_tv"]["g"] == pytest.approx(0.25)
    assert rep["joint_tv"] == pytest.approx(0.25)  # fitted quotas 2 + 2
    d = [1 - (X[m] @ X[[0, 1, 2]].T).max() for m in range(40)] + \
        [1 - float(X[m] @ X[40]) for m in range(40, 60)]
    assert rep["within"]["mean_nearest"] == pytest.approx(np.mean(np.maximum(d, 0)), abs=1e-6)


# --- (6) the draw signature -----------------------------------------------------------------


def test_draw_takes_by_target_and_strategy_params(tmp_path):
    idx = small_store(tmp_path)
    b = draw(idx, 12, by="region", seed=0, record=False)
    assert b.manifest["strategy"] == "stratified"
    assert sorted(r["region"] for r in b.rows) == sorted(REGIONS * 4)
    u = draw(idx, 6, "stratified", by="age", method="uniform", seed=0, record=False)
    assert u.manifest["params"]["method"] == "uniform"
    s = draw(idx, 6, target=["region=Africa:1"], seed=0, record=False)
    assert {r["region"] for r in s.rows} == {"Africa"}
    h = draw(idx, 6, "herding", beta=1.0, seed=0, record=False)
    assert h.manifest["params"] == {"beta": 1.0, "ramp": "linear", "candidates_per_pick": 16}  # the rule is recorded
    with pytest.raises(StrategyParameterError, match="given twice"):
        draw(idx, 6, "herding", beta=1.0, params={"beta": 2.0})
    with pytest.raises(SamplingError, match="needs the stratified strategy"):
        draw(idx, 6, "herding", target="world")


def test_quota_invariants_over_random_tables():
    """Over many seeded tables (random sizes, empty cells, targets, min_per_cell):
    quotas sum to k, stay within [min(m, size), size], each within one of its fitted
    share when the fit is feasible, and the marginals of the fit meet the targets
    wherever no cell was capped."""
    for trial in range(60):
        rng = np.random.default_rng(trial)
        n = int(rng.integers(50, 800))
        a = rng.choice(list("pqrs"), n, p=rng.dirichlet(np.ones(4))).astype(object)
        b = rng.choice(list("xyz"), n, p=rng.dirichlet(np.ones(3))).astype(object)
        attrs = {"a": a, "b": b}
        k = int(rng.integers(1, min(n, 120) + 1))
        ta = dict(zip(sorted(set(a)), rng.dirichlet(np.ones(len(set(a)))).tolist()))
        tb = dict(zip(sorted(set(b)), rng.dirichlet(np.ones(len(set(b)))).tolist()))
        m = int(rng.integers(0, 3))
        try:
            fit = fit_quotas(attrs, ["a", "b"], k, target={"a": ta, "b": tb}, min_per_cell=m)
        except StrategyParameterError:
            continue  # min_per_cell over more cells than k: refused, by design
        q = fit.round(k, np.random.default_rng(trial))
        assert q.sum() == k and (q >= fit.lo).all() and (q <= fit.sizes).all(), trial
        if abs(fit.expected.sum() - k) < 1e-6:
            assert (np.abs(q - fit.expected) < 1 + 1e-9).all(), trial
        if not fit.thin and m == 0:
            for j, (name, t) in enumerate((("a", ta), ("b", tb))):
                got = {v: sum(x for c, x in zip(fit.cells, fit.expected) if c[j] == v) for v in t}
                assert np.allclose([got[v] for v in t], [k * t[v] for v in t], atol=1e-3), trial


def test_cli_allocation_min_per_cell_and_one_target_per_attribute(tmp_path):
    idx = small_store(tmp_path)
    runner = CliRunner()
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "12", "--by", "region", "--by",
                            "age", "--target", "region=Africa:0.8,Asia:0.1,Europe:0.1",
                            "--allocation", "equal", "--min-per-cell", "1", "--seed", "0",
                            "--json"])
    doc = json.loads(r.stdout)
    p = doc["manifest"]["params"]
    assert r.exit_code == 0 and (p["allocation"], p["min_per_cell"]) == ("equal", 1)
    cells = {(x["region"], x["age"]) for x in doc["personas"]}
    assert len(cells) == 6  # every non-empty cell, even those the target thins
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "12", "--target", "region=Africa:1",
                            "--target", "region=Asia:1"])
    assert r.exit_code == 2 and "two targets for 'region'" in r.stderr
    r = runner.invoke(cli, ["--db", idx.path, "sample", "-n", "12", "--by", "region",
                            "--min-per-cell", "5"])
    assert r.exit_code == 2 and "--min-per-cell 5 asks for 15 personas" in r.stderr
