"""outputs-report --by: the audit of outputs by persona group, on planted data."""

import json
from collections import Counter

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index.audit import audit, log_odds, vendi_vs_random, words
from persona_index.embed import HashEmbedder
from persona_index_cli.main import cli
from tests.conftest import write_jsonl

FILLER = ["the", "tool", "takes", "an", "input", "and", "returns", "a", "result", "for", "users",
          "with", "data", "from", "file", "name", "value", "list", "query", "report"]


def planted_rows(seed=0):
    """Three groups of 30: 'sailor' responses carry the planted words
    'zeppelin' and 'quasar'; 'clerk' responses are near-copies of one reply;
    'baker' responses are plain filler."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in ("sailor", "clerk", "baker"):
        for i in range(30):
            ws = list(rng.choice(FILLER, 12))
            if g == "sailor":
                ws[rng.integers(12)] = "zeppelin"
                ws[rng.integers(12)] = "quasar"
            text = " ".join(ws) if g != "clerk" else "the tool returns a list of users" + (
                "" if i % 10 else " now")
            rows.append({"custom_id": f"{g}{i}", "persona": f"a {g} number {i}", "response": text,
                         "group": g})
    return rows


def test_log_odds_is_antisymmetric_and_zero_for_equal_use():
    a, b = Counter({"x": 10, "y": 5, "z": 5}), Counter({"x": 2, "y": 5, "z": 5})
    prior = a + b
    ab = {e["word"]: e for e in log_odds(a, b, prior, min_count=0, top=10)}
    ba = {e["word"]: e for e in log_odds(b, a, prior, min_count=0, top=10)}
    assert ab["x"]["z"] > 1 and ba["x"]["z"] < -1
    assert ab["x"]["delta"] == pytest.approx(-ba["x"]["delta"])
    same = log_odds(Counter({"x": 4, "y": 4}), Counter({"x": 4, "y": 4}), Counter({"x": 8, "y": 8}))
    assert all(abs(e["z"]) < 1e-9 for e in same)
    # the prior shrinks a rare word: one extra use of a word seen once in all is no signal
    rare = log_odds(Counter({"r": 1, "x": 50}), Counter({"x": 50}), Counter({"r": 1, "x": 100}),
                    min_count=1)
    assert {e["word"]: e["z"] for e in rare}["r"] < 1.96


def test_planted_words_top_their_stratum_and_near_copies_are_flagged():
    rows = planted_rows()
    texts = [r["response"] for r in rows]
    O = HashEmbedder(64).encode(texts)
    res = {e["stratum"]: e for e in audit(texts, O, [r["group"] for r in rows], draws=30)}
    assert [e["count"] for e in res.values()] == [30, 30, 30]
    top = [w["word"] for w in res["sailor"]["words"][:2]]
    assert sorted(top) == ["quasar", "zeppelin"]
    assert all(w["z"] > 1.96 for w in res["sailor"]["words"][:2])
    assert "zeppelin" not in [w["word"] for w in res["baker"]["words"]]
    assert res["clerk"]["output_vendi"]["z"] < -3  # collapse
    assert res["clerk"]["output_vendi"]["share_random_at_or_below"] == 0.0
    assert res["baker"]["output_vendi"]["z"] > -2 and res["sailor"]["output_vendi"]["z"] > -2


def test_vendi_vs_random_is_seeded():
    O = HashEmbedder(16).encode([f"t{i}" for i in range(40)])
    assert vendi_vs_random(O, np.arange(5), seed=1) == vendi_vs_random(O, np.arange(5), seed=1)


def test_words_are_unicode():
    assert words("Ça va? 東京 OK") == ["ça", "va", "東京", "ok"]


def test_outputs_report_by_prints_the_audit_table_and_json(tmp_path):
    f = write_jsonl(tmp_path / "out.jsonl", planted_rows())
    r = CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report", str(f),
                                 "--threshold", "-1", "--by", "group", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    strata = {e["stratum"]: e for e in doc["audit"]["strata"]}
    assert set(strata) == {"sailor", "clerk", "baker"}
    assert strata["sailor"]["mean_coherence"] is not None
    r = CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report", str(f),
                                 "--by", "group"])
    assert r.exit_code == 0 and "audit by group" in r.output and "zeppelin" in r.output
    r = CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report", str(f),
                                 "--by", "region"])
    assert r.exit_code == 1 and "no output row has the field 'region'" in r.output


def _arm_rows(persona_texts, control_texts):
    rows = [{"custom_id": f"p{i}:tool", "persona_id": f"p{i}", "persona": t, "response": t,
             "template": "tool"} for i, t in enumerate(persona_texts)]
    rows += [{"custom_id": f"control:tool:{i}", "persona_id": None, "persona": None, "arm": "control",
              "response": t, "template": "tool"} for i, t in enumerate(control_texts)]
    return rows


@pytest.mark.parametrize("persona_diverse", [True, False])
def test_control_arm_comparison_on_planted_data(tmp_path, persona_diverse):
    diverse = [f"a distinct reply number {i}" for i in range(40)]
    collapsed = [f"the same reply {i % 3}" for i in range(40)]
    rows = _arm_rows(diverse if persona_diverse else collapsed,
                     collapsed if persona_diverse else diverse)
    f = write_jsonl(tmp_path / "out.jsonl", rows)
    kept = tmp_path / "kept.jsonl"
    r = CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report", str(f),
                                 "--threshold", "0.5", "--kept", str(kept), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    cmp_ = doc["control_comparison"]
    assert doc["control"] == 40 and cmp_["persona_rows"] == 40 and cmp_["control_rows"] == 40
    if persona_diverse:
        assert cmp_["vendi"]["low"] > 0 and cmp_["verdict"].startswith("personas raised")
    else:
        assert cmp_["vendi"]["high"] < 0 and cmp_["verdict"].startswith("personas lowered")
    for m in ("vendi", "mean_pairwise_distance", "cell_coverage"):
        assert cmp_[m]["low"] <= cmp_[m]["difference"] <= cmp_[m]["high"]
    # control rows (persona null) stay out of the coherence filter: all 40 kept
    kept_rows = [json.loads(l) for l in open(kept)]
    assert sum(x.get("arm") == "control" for x in kept_rows) == 40
    text = CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report", str(f)]).output
    assert "output coverage" in text.splitlines()[-1] and "{" not in text.splitlines()[-1]


def test_no_control_rows_no_comparison(tmp_path):
    f = write_jsonl(tmp_path / "out.jsonl", _arm_rows([f"reply {i}" for i in range(5)], []))
    doc = json.loads(CliRunner().invoke(cli, ["--embed-model", "hash-64", "outputs-report",
                                              str(f), "--json"]).output)
    assert "control_comparison" not in doc and doc["ok"] == 5
