"""curate: keep the K generated outputs that cover output space.

Planted data (clusters, repeats, failed and incoherent rows, scores, strata),
the error contract (exit 1 for bad data, 2 for bad options, nothing written
either way), manifest replay, and one run end to end: a real LanceDB store and
the real model, `sample`, `synthesize` against the local HTTP server, `curate`.
"""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index.curate import curate, curate_file, replay_curation, select_outputs
from persona_index.embed import HashEmbedder
from persona_index.errors import CurationError, ManifestError, StrategyParameterError
from persona_index.metrics import kcenter_radius, vendi_score
from persona_index.samplers.medoids import medoids_select, typicality, weighted_facility
from persona_index_cli.main import cli
from tests.conftest import write_jsonl

H = ["--embed-model", "hash-64"]


def unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def clusters(seed, sizes, d=32, spread=0.15):
    rng = np.random.default_rng(seed)
    C = unit(rng.standard_normal((len(sizes), d)))
    lab = np.repeat(np.arange(len(sizes)), sizes)
    return unit(C[lab] + spread * rng.standard_normal((len(lab), d)) / np.sqrt(d) * 4), lab


def invoke(args, **kw):
    return CliRunner().invoke(cli, args, catch_exceptions=False, **kw)


# -- the selection kernel ---------------------------------------------------------------------

def naive_weighted_facility(S, k, w, spread, bonus=None):
    """The textbook loop: every gain recomputed from scratch at every pick."""
    n = len(S)
    chosen = []
    for t in range(k):
        best = S[:, chosen].max(axis=1) if chosen else np.full(n, S.min())
        gain = np.array([(w * np.maximum(S[:, x] - best, 0)).sum() for x in range(n)])
        free = np.array([x not in chosen for x in range(n)])
        z = lambda v: (v - v[free].mean()) / (v[free].std() or 1.0)
        score = z(gain)
        if chosen:
            score = score + spread * z((1 - S[:, chosen]).min(axis=1))
        if bonus is not None:
            score = score + bonus
        score[~free] = -np.inf
        chosen.append(int(np.argmax(score)))
    return np.array(chosen)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_gains_equal_the_textbook_loop_at_every_pick(seed):
    X, _ = clusters(seed, [12, 7, 5, 3])
    S = X @ X.T
    rng = np.random.default_rng(seed)
    w = typicality(S, 0.2) ** 0.5
    bonus = rng.standard_normal(len(X)) if seed % 2 else None
    got = weighted_facility(S, 10, weights=w, spread=0.5, bonus=bonus)
    assert got.tolist() == naive_weighted_facility(S.astype(np.float64), 10, w, 0.5, bonus).tolist()


def test_one_pick_per_planted_cluster_and_the_biggest_first():
    X, lab = clusters(0, [40, 20, 10, 5])
    for k in (4, 8):
        picks = medoids_select(X, k, rng=0)
        assert len(set(picks.tolist())) == k
        assert set(lab[picks]) == {0, 1, 2, 3}  # every cluster, even the 5-row one
    assert lab[medoids_select(X, 1, rng=0)[0]] == 0  # the first pick represents the most rows


@pytest.mark.parametrize("seed", range(10))
def test_default_beats_uniform_on_diversity_and_representativeness(seed):
    # clustered outputs of uneven sizes (on near-isotropic data the diversity
    # gain shrinks to nothing: typical picks are then no more spread than random ones)
    X, _ = clusters(seed, [60, 30, 20, 10, 5, 5], d=48, spread=0.15)
    k = 12
    picks = select_outputs(X, k, rng=seed)
    rng = np.random.default_rng(100 + seed)
    U = [rng.choice(len(X), k, replace=False) for _ in range(30)]
    vendi_u = np.mean([vendi_score(X[u]) for u in U])
    near_u = np.mean([kcenter_radius(X[u], X)[1] for u in U])
    assert vendi_score(X[picks]) > vendi_u
    assert kcenter_radius(X[picks], X)[1] < near_u


def test_score_raises_the_kept_mean_score_while_coverage_holds():
    X, lab = clusters(3, [30, 30, 30, 30, 30], d=32, spread=0.5)
    rng = np.random.default_rng(0)
    score = rng.standard_normal(len(X))
    z = (score - score.mean()) / score.std()
    k = 15
    plain = select_outputs(X, k)
    scored = select_outputs(X, k, bonus=0.5 * z)
    assert score[scored].mean() > score[plain].mean() + 0.3
    near_plain, near_scored = kcenter_radius(X[plain], X)[1], kcenter_radius(X[scored], X)[1]
    assert near_scored <= 1.1 * near_plain
    assert set(lab[scored]) == set(range(5))  # every cluster still kept
    assert select_outputs(X, k, bonus=0.0 * z).tolist() == plain.tolist()  # weight 0: no change


# -- rows: repeats, failures, coherence ------------------------------------------------------------

def test_last_row_of_a_repeated_custom_id_wins_and_every_drop_is_counted(tmp_path):
    rows = [{"custom_id": f"c{i}", "persona": f"persona {i}", "response": f"first answer {i}"}
            for i in range(6)]
    rows += [{"custom_id": "c1", "persona": "persona 1", "response": "rerun answer 1"},
             {"custom_id": "c2", "persona": "persona 2", "response": None, "status": "failed"},
             {"custom_id": "c3", "persona": "persona 3", "response": "  ", "status": "ok"},
             {"persona": "no id", "response": "keyed by its line"},
             {"persona": "no id", "response": "keyed by its line"}]  # same text, other line
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    r = invoke(H + ["curate", str(f), "-n", "6", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["dropped"] == {"failed": 2, "incoherent": 0, "repeated": 3}  # c1, c2, c3
    responses = [x["response"] for x in doc["kept"]]
    assert "rerun answer 1" in responses and "first answer 1" not in responses
    assert "first answer 2" not in responses  # the failed rerun replaced it
    assert doc["manifest"]["kept"] == ["c0", "c4", "c5", "c1", "line:10", "line:11"]
    assert doc["kept"][0] == rows[0]  # the input row, unchanged
    assert doc["manifest"]["counts"] == {"rows": 11, "candidates": 6, "kept": 6, "failed": 2,
                                         "incoherent": 0, "repeated": 3,
                                         "control": 0, "shortfall": 0}


def test_coherence_is_off_by_default_and_counted_when_on(tmp_path):
    rows = [{"custom_id": f"c{i}", "persona": f"persona {i}",
             "response": f"persona {i}" if i % 3 else f"unrelated reply {i}"} for i in range(12)]
    rows.append({"custom_id": "control:tool:0", "arm": "control", "persona": None,
                 "persona_id": None, "response": "control reply"})
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    off = json.loads(invoke(H + ["curate", str(f), "-n", "13", "--json"]).output)
    assert off["dropped"]["incoherent"] == 0 and len(off["kept"]) == 13
    r = invoke(H + ["curate", str(f), "-n", "5", "--coherence", "0.5", "--json"])
    doc = json.loads(r.output)
    assert doc["dropped"]["incoherent"] == 4  # i = 0, 3, 6, 9 (hash vectors: cosine ~0)
    r = invoke(H + ["curate", str(f), "-n", "9", "--coherence", "0.5", "--json"])
    ids = {x["custom_id"] for x in json.loads(r.output)["kept"]}
    assert "control:tool:0" in ids  # control rows stay out of the filter
    assert not ids & {"c0", "c3", "c6", "c9"}
    text = invoke(H + ["curate", str(f), "-n", "5", "--coherence", "0.5"]).output
    assert "coherence >= 0.5 dropped 4 (31%)" in text


def test_csv_and_parquet_inputs_with_named_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"who": f"persona {i}", "output": f"spec number {i}", "quality": str(i / 10)}
            for i in range(10)]
    csv_path = tmp_path / "pairs.csv"
    with open(csv_path, "w", encoding="utf-8") as fh:
        fh.write("who,output,quality\n" + "".join(f"{r['who']},{r['output']},{r['quality']}\n"
                                                   for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    for p in (csv_path, tmp_path / "pairs.parquet"):
        r = invoke(H + ["curate", str(p), "-n", "4", "--response-field", "output",
                        "--persona-field", "who", "--score-field", "quality", "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        assert len(doc["kept"]) == 4 and all(x in rows for x in doc["kept"])
        assert doc["manifest"]["input"]["format"] == p.suffix[1:]


def test_by_gives_each_stratum_an_equal_quota(tmp_path):
    rows = [{"custom_id": f"c{i}", "response": f"reply {i}", "region": reg}
            for i, reg in enumerate(["Asia"] * 30 + ["Africa"] * 10 + ["Europe"] * 5 + [None] * 3)]
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    doc = json.loads(invoke(H + ["curate", str(f), "-n", "8", "--by", "region", "--json"]).output)
    counts = {}
    for x in doc["kept"]:
        counts[x["region"]] = counts.get(x["region"], 0) + 1
    assert counts == {"Asia": 2, "Africa": 2, "Europe": 2, None: 2}
    with pytest.warns(UserWarning, match="short of their quota"):
        c = curate(rows, 16, embedder=HashEmbedder(16), by="region")
    regions = [x["region"] for x in c.kept]
    assert regions.count(None) == 3 and len(regions) == 16  # the short stratum gives what it has


# -- errors: one line, exit 1 or 2, nothing written -----------------------------------------------

def _nothing_written(d, before):
    assert sorted(os.listdir(d)) == before


@pytest.mark.parametrize("rows,args,fragment", [
    ([], ["-n", "2"], "no rows"),
    ([{"persona": "p", "output": "x"}], ["-n", "1"], "no row has the field 'response'"),
    ([{"response": "x"}] * 3, ["-n", "1", "--coherence", "0.1"], "no row has the field 'persona'"),
    ([{"response": f"x{i}"} for i in range(3)], ["-n", "4"], "k=4 is larger than the 3 rows left"),
    ([{"response": "a", "status": "failed"}, {"response": "b"}], ["-n", "2"],
     "k=2 is larger than the 1 rows left (of 2: 1 failed"),
    ([{"response": "a", "s": 1}, {"response": "b", "s": "high"}], ["-n", "1", "--score-field", "s"],
     "out.jsonl:2: 's' is not a finite number ('high')"),
    ([{"response": "a"}, {"response": "b"}], ["-n", "1", "--by", "region"],
     "no row has the field 'region'"),
])
def test_data_errors_exit_1_with_one_line_and_write_nothing(tmp_path, rows, args, fragment):
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    before = sorted(os.listdir(tmp_path))
    r = CliRunner().invoke(cli, H + ["curate", str(f), "--out", str(tmp_path / "kept.jsonl")] + args)
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], r.output
    assert "Traceback" not in r.output
    _nothing_written(tmp_path, before)


@pytest.mark.parametrize("args,fragment", [
    (["-n", "0"], "-n"),
    (["-n", "2", "--coherence", "1.5"], "--coherence"),
    (["-n", "2", "--score-field", "s", "--score-weight", "-1"], "--score-weight"),
    (["-n", "2", "--score-weight", "1"], "score_weight needs a score_field"),
    (["-n", "2", "--strategy", "stratified"], "--strategy"),
    (["-n", "2", "--param", "spread=-1"], "spread=-1.0 is out of range"),
    (["-n", "2", "--param", "alpha=2"], "takes no parameter 'alpha'"),
    (["-n", "2", "--strategy", "farthest", "--score-field", "s"], "score_field works with"),
    (["-n", "2", "--out", "-", "--json"], "cannot go with --json"),
    ([], "give -n N"),
])
def test_bad_option_values_exit_2_and_write_nothing(tmp_path, args, fragment):
    f = write_jsonl(tmp_path / "out.jsonl", [{"response": f"r{i}", "s": i} for i in range(5)])
    before = sorted(os.listdir(tmp_path))
    r = CliRunner().invoke(cli, H + ["curate", str(f), "--out", str(tmp_path / "k.jsonl")] + args
                           if "--out" not in args else H + ["curate", str(f)] + args)
    assert r.exit_code == 2, r.output
    assert fragment in r.output and "Traceback" not in r.output
    _nothing_written(tmp_path, before)


def test_output_never_overwrites_the_input(tmp_path):
    f = write_jsonl(tmp_path / "out.jsonl", [{"response": f"r{i}"} for i in range(5)])
    data = f.read_bytes()
    r = CliRunner().invoke(cli, H + ["curate", str(f), "-n", "2", "--out", str(f)])
    assert r.exit_code == 1 and "is the input" in r.output
    assert f.read_bytes() == data and sorted(os.listdir(tmp_path)) == ["out.jsonl"]


# -- outputs and the manifest ----------------------------------------------------------------------

def test_manifest_rerun_gives_the_same_rows_and_a_changed_input_is_refused(tmp_path):
    rows = [{"custom_id": f"c{i}", "persona": f"p {i}", "response": f"reply {i}", "q": i % 7}
            for i in range(40)]
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    kept = tmp_path / "kept.jsonl"
    r = invoke(H + ["curate", str(f), "-n", "9", "--score-field", "q", "--by", "q",
                    "--out", str(kept)])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "kept.manifest.json").read_text())
    assert m["input"]["sha256"] and m["params"]["score_weight"] == 0.5
    assert m["params"]["by"] == ["q"] and m["params"]["embed_model"] == "hash-64"
    assert [json.loads(l)["custom_id"] for l in open(kept)] == m["kept"]
    again = tmp_path / "again.jsonl"
    r = invoke(H + ["curate", "--replay", str(tmp_path / "kept.manifest.json"), "--out",
                    str(again), "--manifest", str(tmp_path / "again.manifest.json")])
    assert r.exit_code == 0, r.output
    assert again.read_bytes() == kept.read_bytes()
    with open(f, "a") as fh:
        fh.write(json.dumps({"custom_id": "c99", "response": "late"}) + "\n")
    r = CliRunner().invoke(cli, H + ["curate", "--replay", str(tmp_path / "kept.manifest.json")])
    assert r.exit_code == 1 and "has changed since the curation" in r.output
    m["kept"][0] = "c39" if m["kept"][0] != "c39" else "c38"  # a tampered manifest
    with pytest.raises(ManifestError, match="replay differs"):
        tampered = json.loads(json.dumps(m))
        f.write_text("".join(json.dumps(x) + "\n" for x in rows))  # the original bytes
        replay_curation(tampered, embedder=HashEmbedder(64))


def test_out_dash_writes_rows_to_stdout_and_the_summary_elsewhere(tmp_path):
    f = write_jsonl(tmp_path / "out.jsonl", [{"response": f"r{i}"} for i in range(6)])
    r = CliRunner().invoke(cli, H + ["curate", str(f), "-n", "3", "--out", "-"])
    assert r.exit_code == 0
    got = [json.loads(l) for l in r.stdout.strip().splitlines()]
    assert len(got) == 3 and all(set(x) == {"response"} for x in got)
    assert "kept 3 of 6 rows" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["out.jsonl"]  # no manifest for stdout unless asked


def test_library_rejects_bad_values_with_parameter_names():
    rows = [{"response": "a"}, {"response": "b"}]
    for kw, frag in (({"coherence": True}, "coherence"), ({"score_weight": 1}, "score_field"),
                     ({"strategy": "stratified"}, "stratified")):
        with pytest.raises(StrategyParameterError, match=frag):
            curate(rows, 1, embedder=HashEmbedder(8), **kw)
    with pytest.raises(StrategyParameterError, match="k must be"):
        curate(rows, 0, embedder=HashEmbedder(8))
    with pytest.raises(CurationError, match="expected an object"):
        curate([["not", "a", "dict"]], 1, embedder=HashEmbedder(8))


def test_messy_responses_numbers_objects_and_non_latin_are_embedded_not_lost(tmp_path):
    rows = [{"response": 42}, {"response": {"name": "tool", "args": [1]}}, {"response": True},
            {"response": "Привет, мир"}, {"response": "東京の天気"}, {"response": float("nan")}]
    c = curate(rows, 5, embedder=HashEmbedder(16))
    assert c.dropped["failed"] == 1 and len(c.kept) == 5  # NaN is no response
    assert {"response": "東京の天気"} in c.kept


# -- end to end: real store, real model, real HTTP server ---------------------------------------

def test_sample_synthesize_curate_end_to_end(tmp_path, built_store):
    from tests.mock_server import MockServer

    db = str(built_store.path)
    personas = tmp_path / "personas.jsonl"
    r = invoke(["--db", db, "sample", "-n", "24", "--seed", "0", "--out", str(personas)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "gen.jsonl"
    with MockServer() as srv:
        r = invoke(["--db", db, "synthesize", "--template", "tool", "--personas", str(personas),
                    "--out", str(out), "--base-url", srv.url, "--no-progress",
                    "--retries", "3"])
        assert r.exit_code == 0, r.output
    r = invoke(["--db", db, "curate", str(out), "-n", "12", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    gen = [json.loads(l) for l in open(out)]
    assert len(doc["kept"]) == 12 and all(x in gen for x in doc["kept"])
    assert doc["manifest"]["params"]["embed_model"] == built_store.embedder.name  # the store's
    assert doc["coverage"]["vendi_kept"] > 1.0


def test_vendi_from_the_gram_matrix_equals_the_d_by_d_form():
    """metrics.vendi_score takes the n x n Gram matrix when n < d: the same
    value as the d x d form, written out here the textbook way."""
    from benchmarks.curation import _vendi

    def d_by_d(X):
        lam = np.linalg.eigvalsh(X.T.astype(np.float64) @ X / len(X))
        lam = lam[lam > 1e-12] / lam[lam > 1e-12].sum()
        return float(np.exp(-(lam * np.log(lam)).sum()))

    rng = np.random.default_rng(0)
    for n in (2, 30, 63, 64, 100):
        X = unit(rng.standard_normal((n, 64)))
        X[: n // 2] = X[0]  # duplicates too
        assert vendi_score(X) == pytest.approx(d_by_d(X), rel=1e-9)
        assert _vendi(X) == vendi_score(X)


def test_a_herding_curation_manifest_without_ramp_replays_with_the_constant_rule(tmp_path):
    """Curations with strategy herding record beta and ramp; one written before
    the ramp (issue 25) names neither and replays with the constant rule."""
    rows = [{"custom_id": f"c{i}", "response": f"reply number {i} about topic {i % 11}"}
            for i in range(120)]
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    old = curate_file(str(f), 20, embedder=HashEmbedder(64), strategy="herding",
                      params={"beta": 0.5, "ramp": "none"})
    today = curate_file(str(f), 20, embedder=HashEmbedder(64), strategy="herding")
    assert today.manifest["params"]["strategy_params"] == {"beta": 1.0, "ramp": "linear",
                                                          "candidates_per_pick": 16}
    assert old.manifest["kept"] != today.manifest["kept"]  # the rules differ on these rows
    written_then = json.loads(json.dumps(old.manifest))
    written_then["params"]["strategy_params"] = {}
    assert replay_curation(written_then, embedder=HashEmbedder(64)).manifest["kept"] == \
        old.manifest["kept"]
