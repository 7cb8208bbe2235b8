"""synthesize's control arm and --oversample stage, against the real local HTTP server.

The control rows (same template, a neutral persona line), the curation of an
oversampled run to K (raw rows kept, curated file and manifest beside it, a
shortfall when rows failed, resume), one rule for the last row per custom_id
shared by every reader, and curate --by reading store attributes.
"""

import json

import numpy as np
import pytest

from persona_index.curate import curate, load_curation_manifest, replay_curation
from persona_index.embed import HashEmbedder
from persona_index.errors import CurationError, InvalidQueryError
from persona_index.synthesis.client import ClientConfig
from persona_index.synthesis.control import CONTROL_PERSONA
from persona_index.synthesis.report import output_report
from persona_index.synthesis.rows import keyed_rows, last_rows
from persona_index.synthesis.run import synthesize, write_requests
from persona_index.synthesis.templates import Template
from tests.mock_server import MockServer

ASK = Template("ask", "Ask one question as {persona}.")
E = HashEmbedder(32)


def personas(n, start=0):
    return [{"id": f"p{i}", "text": f"persona number {i} who likes topic {i % 7}"}
            for i in range(start, start + n)]


def rows_of(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_control_rows_are_marked_and_carry_the_neutral_persona_line(tmp_path):
    out = tmp_path / "raw.jsonl"
    with MockServer() as srv:
        s = synthesize(personas(4), [ASK], str(out), ClientConfig(srv.url, "m", seed=7),
                       control=3)
        prompts = list(srv.state.prompts)
        seeds = [b.get("seed") for b in srv.state.bodies]
    assert s.planned == 7 and s.ok == 7 and s.control == 3 and s.complete
    rows = rows_of(out)
    ctl = [r for r in rows if r.get("arm") == "control"]
    assert sorted(r["custom_id"] for r in ctl) == ["control:ask:0", "control:ask:1",
                                                   "control:ask:2"]
    assert all(r["persona_id"] is None and r["persona"] is None for r in ctl)
    assert all("arm" not in r for r in rows if r not in ctl)  # persona rows as before
    # the same template, the neutral line in the persona slot; request i sent with seed 7 + i
    assert sum(p == f'Ask one question as "{CONTROL_PERSONA}".' for p in prompts) == 3
    assert sorted(sd for p, sd in zip(prompts, seeds) if CONTROL_PERSONA in p) == [7, 8, 9]


def test_control_requests_go_into_the_batch_file_too(tmp_path):
    out = tmp_path / "requests.jsonl"
    n = write_requests(personas(2), [ASK], str(out), control=2, model="m")
    reqs = rows_of(out)
    assert n == 4 and [r["custom_id"] for r in reqs][-2:] == ["control:ask:0", "control:ask:1"]
    assert CONTROL_PERSONA in reqs[-1]["body"]["messages"][0]["content"]


def test_a_persona_whose_id_makes_a_control_id_is_refused_before_anything_is_sent(tmp_path):
    clash = [{"id": "control", "text": "a nurse"}]
    with pytest.raises(InvalidQueryError, match="control row's"):
        write_requests(clash, [ASK], str(tmp_path / "r.jsonl"), n=2, control=2)
    assert not (tmp_path / "r.jsonl").exists()


def test_oversample_keeps_k_writes_curated_rows_and_manifest_and_loses_nothing(tmp_path):
    out = tmp_path / "raw.jsonl"
    with MockServer() as srv:
        s = synthesize(personas(20), [ASK], str(out), ClientConfig(srv.url, "m"),
                       oversample=2, control=4, embedder=E)
    raw = rows_of(out)
    assert len(raw) == 24  # every generated row stays in the raw file
    c = s.curation
    assert (c["k"], c["kept"], c["shortfall"], c["candidates"]) == (10, 10, 0, 20)
    kept = rows_of(c["out"])
    assert c["out"] == str(tmp_path / "raw.curated.jsonl")
    assert len(kept) == 10 and all(r in raw for r in kept)
    assert not any(r.get("arm") == "control" for r in kept)  # control rows are no candidates
    assert len({r["custom_id"] for r in kept}) == 10
    m = load_curation_manifest(c["manifest"])
    assert m["kept"] == [r["custom_id"] for r in kept] and m["counts"]["control"] == 4
    # the manifest replays on the raw file: the same rows again
    assert replay_curation(m, embedder=E).kept == kept


def test_oversample_with_failures_keeps_what_is_left_reports_the_shortfall_then_resumes(tmp_path):
    out = tmp_path / "raw.jsonl"
    cfg = ClientConfig("", "m", retries=0)
    with MockServer(fail_rate=0.6, seed=3) as srv:
        cfg.base_url = srv.url
        s = synthesize(personas(10), [ASK], str(out), cfg, oversample=2, embedder=E)
        ok_rows = sum(r["status"] == "ok" for r in last_rows(rows_of(out)))
        assert s.failed == 10 - ok_rows and s.failed > 0
        assert s.curation["kept"] == min(5, ok_rows)
        assert s.shortfall == 5 - s.curation["kept"]
        for _ in range(6):  # reruns send the failed rows again and curate again
            s = synthesize(personas(10), [ASK], str(out), cfg, oversample=2, embedder=E,
                           max_runs=10)
    last = last_rows(rows_of(out))
    assert len(last) == 10
    ok_now = sum(r["status"] == "ok" for r in last)
    assert s.curation["kept"] == min(5, ok_now) and s.shortfall == 5 - min(5, ok_now)
    assert ok_now >= 5, "six reruns at a 60% failure rate should leave five ok rows"
    kept = rows_of(s.curation["out"])
    assert all(r["status"] == "ok" for r in kept) and len(kept) == 5


def test_a_rerun_with_nothing_to_send_curates_the_same_rows_again(tmp_path):
    out = tmp_path / "raw.jsonl"
    with MockServer() as srv:
        s1 = synthesize(personas(12), [ASK], str(out), ClientConfig(srv.url, "m"),
                        oversample=3, embedder=E)
        first = (tmp_path / "raw.curated.jsonl").read_text()
        s2 = synthesize(personas(12), [ASK], str(out), ClientConfig(srv.url, "m"),
                        oversample=3, embedder=E)
        assert srv.state.requests == 12  # the rerun sent nothing
    assert s1.curation["kept"] == s2.curation["kept"] == 4 and s2.skipped == 12
    assert (tmp_path / "raw.curated.jsonl").read_text() == first


def test_oversample_per_template_quota_and_bad_values_refused_before_sending(tmp_path):
    out = tmp_path / "raw.jsonl"
    two = [ASK, Template("poem", "A poem by {persona}.")]
    with MockServer() as srv:
        s = synthesize(personas(6), two, str(out), ClientConfig(srv.url, "m"), oversample=2,
                       embedder=E)
        kept = rows_of(s.curation["out"])
        assert sorted(r["template"] for r in kept) == ["ask"] * 3 + ["poem"] * 3
        for bad in (0.5, True, float("nan"), "2"):
            with pytest.raises(InvalidQueryError, match="oversample"):
                synthesize(personas(2), [ASK], str(tmp_path / "b.jsonl"),
                           ClientConfig(srv.url, "m"), oversample=bad, embedder=E)
        with pytest.raises(InvalidQueryError, match="keeps K = 0 of 3 persona"):
            synthesize(personas(3), [ASK], str(tmp_path / "b.jsonl"), ClientConfig(srv.url, "m"),
                       oversample=4, embedder=E)
        with pytest.raises(InvalidQueryError, match="regular file"):
            synthesize(personas(2), [ASK], "-", ClientConfig(srv.url, "m"), oversample=2)
        assert srv.state.requests == 12
    assert not (tmp_path / "b.jsonl").exists()


def test_persona_outputs_against_control_on_the_mock(tmp_path):
    """The mock echoes the persona ("Reply for <persona>"), so its control
    replies are all alike: personas must raise output coverage here. This is
    about the mock, not about any model."""
    out = tmp_path / "raw.jsonl"
    with MockServer() as srv:
        synthesize(personas(30), [ASK], str(out), ClientConfig(srv.url, "m"), control=10,
                   oversample=2, embedder=E)
    rows = rows_of(out)
    rep, _ = output_report(rows, E, threshold=-1.0)
    cmp_ = rep["control_comparison"]
    assert rep["control"] == 10 and cmp_["persona_rows"] == 30
    assert cmp_["vendi"]["low"] > 0 and cmp_["verdict"].startswith("personas raised")
    # rows land in completion order, which differs run to run: the figures do not move
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    assert output_report(shuffled, E, threshold=-1.0)[0]["control_comparison"] == cmp_


# -- one rule for the last row per custom_id -----------------------------------------------------

def test_one_last_row_rule_serves_report_curate_and_resume():
    rows = [{"custom_id": "a", "persona": "p a", "response": "old a", "status": "failed"},
            {"custom_id": "b", "persona": "p b", "response": "b"},
            {"persona": "p x", "response": "no id"},
            {"custom_id": "a", "persona": "p a", "response": "new a"},
            {"custom_id": "", "persona": "p y", "response": "empty id"}]
    keyed, repeated = keyed_rows(rows)
    assert [k for k, _, _ in keyed] == ["b", "line:3", "a", "line:5"] and repeated == 1
    # the winner stands at its own position: file order of the rows that count
    assert [r["response"] for r in last_rows(rows)] == ["b", "no id", "new a", "empty id"]
    _, kept_report = output_report(rows, E, threshold=-1.0)
    cur = curate(rows, 4, embedder=E, strategy="uniform")
    assert [r["response"] for r in kept_report] == [r["response"] for r in cur.kept] == \
        ["b", "no id", "new a", "empty id"]


# -- curate --by from the store ------------------------------------------------------------------

def _store(tmp_path):
    from persona_index import PersonaIndex

    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(16))
    recs = [{"id": f"p{i}", "text": f"person {i}", "region": "north" if i < 12 else "south"}
            for i in range(16)]
    idx.add(recs, attributes=["region"])
    return idx


def test_curate_by_reads_a_store_attribute_by_persona_id(tmp_path):
    idx = _store(tmp_path)
    rows = [{"custom_id": f"p{i}:ask", "persona_id": f"p{i}", "persona": f"person {i}",
             "response": f"reply {i}"} for i in range(16)]
    rows.append({"custom_id": "control:ask:0", "persona_id": None, "response": "plain",
                 "arm": "control"})
    c = curate(rows, 8, embedder=E, by="region", index=idx, exclude_control=True)
    regions = ["north" if int(r["persona_id"][1:]) < 12 else "south" for r in c.kept]
    assert regions.count("north") == 4 and regions.count("south") == 4  # equal quotas
    src = c.manifest["params"]["by_source"]["region"]
    assert src == {"store": str(idx.path), "table_version": idx.version}
    # a field the rows have wins over the store's
    rows2 = [dict(r, region="all") for r in rows[:16]]
    assert curate(rows2, 4, embedder=E, by="region", index=idx).manifest["params"][
        "by_source"] == {"region": "rows"}
    with pytest.raises(CurationError, match="no store was given"):
        curate(rows, 4, embedder=E, by="region")
    with pytest.raises(CurationError, match="has no attribute 'country'.*region"):
        curate(rows, 4, embedder=E, by="country", index=idx)
    no_pid = [{k: v for k, v in r.items() if k != "persona_id"} for r in rows[:16]]
    with pytest.raises(CurationError, match="nor a 'persona_id'"):
        curate(no_pid, 4, embedder=E, by="region", index=idx)


def test_curate_by_store_attribute_replays_on_the_recorded_table_version(tmp_path):
    idx = _store(tmp_path)
    path = tmp_path / "out.jsonl"
    rows = [{"custom_id": f"p{i}:ask", "persona_id": f"p{i}", "response": f"reply {i}"}
            for i in range(16)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from persona_index.curate import curate_file

    c = curate_file(path, 6, embedder=E, by="region", index=idx)
    idx.add([{"id": "p99", "text": "late person", "region": "east"}], attributes=["region"])
    again = replay_curation(json.loads(json.dumps(c.manifest)), embedder=E)
    assert again.manifest["kept"] == c.manifest["kept"]


# -- the CLI: curate --by from --db, and the held-out path a judge runs ---------------------------

def _invoke(args):
    from click.testing import CliRunner

    from persona_index_cli.main import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_curate_by_reads_the_store_and_says_so_or_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./personas.lance: without --db there is no store
    monkeypatch.delenv("PERSONA_INDEX_DB", raising=False)
    idx = _store(tmp_path)
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps({"custom_id": f"p{i}:ask", "persona_id": f"p{i}",
                                        "response": f"reply {i}"}) + "\n" for i in range(16)))
    db = str(idx.path)
    r = _invoke(["--db", db, "--embed-model", "hash-16", "curate", str(path), "-n", "6",
                 "--by", "region", "--out", str(tmp_path / "kept.jsonl")])
    assert r.exit_code == 0, r.output
    assert f"by region from the store {db} (table version {idx.version}) by persona_id" in r.output
    kept = rows_of(tmp_path / "kept.jsonl")
    assert sum(int(k["persona_id"][1:]) < 12 for k in kept) == 3  # north 3, south 3
    for args, words in (([], "(--db STORE)"),
                        (["--db", str(tmp_path / "none.lance")], "none.lance has no attribute"),
                        (["--db", db], "has no attribute 'country'")):
        by = "country" if "country" in words else "region"
        r = _invoke(args + ["--embed-model", "hash-16", "curate", str(path), "-n", "6",
                            "--by", by, "--out", str(tmp_path / "k2.jsonl")])
        assert r.exit_code == 1 and words in r.output
        assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
        assert not (tmp_path / "k2.jsonl").exists()


def test_held_out_path_sample_2k_where_id_in_then_curate_k(tmp_path):
    """As a judge on held-out pairs: sample -n 2K among the held-out ids, then
    curate the pairs (custom_id, persona, response, status) to K."""
    from persona_index import PersonaIndex

    rng = np.random.default_rng(5)
    words = ["river", "engine", "ledger", "orchard", "violin", "harbour", "circuit", "bakery"]
    recs = [{"id": f"h{i:03d}", "text": f"a {rng.choice(words)} worker, person {i}"}
            for i in range(80)]
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(32))
    idx.add(recs)
    held = sorted(rng.choice([r["id"] for r in recs], 40, replace=False).tolist())
    K = 8
    drawn = tmp_path / "drawn.jsonl"
    where = "id IN (" + ", ".join(f"'{i}'" for i in held) + ")"
    r = _invoke(["--db", str(idx.path), "sample", "-n", str(2 * K), "--where", where,
                 "--out", str(drawn)])
    assert r.exit_code == 0, r.output
    ids = [p["id"] for p in rows_of(drawn)]
    assert len(ids) == 2 * K and set(ids) <= set(held)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"custom_id": p["id"], "persona": p["text"],
                                         "response": f"a tool for {p['text']}",
                                         "status": "ok"}) + "\n" for p in rows_of(drawn)))
    r = _invoke(["--embed-model", "hash-32", "curate", str(pairs), "-n", str(K), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    kept = [k["custom_id"] for k in doc["kept"]]
    assert len(kept) == K == len(set(kept)) and set(kept) <= set(ids)
    assert doc["manifest"]["kept"] == kept


def test_cli_synthesize_control_and_oversample_then_outputs_report_end_to_end(tmp_path):
    """The commands a user runs, against the local HTTP server (the mock echoes
    the persona: its control replies are all alike, so personas must win)."""
    pfile = tmp_path / "personas.jsonl"
    pfile.write_text("".join(json.dumps(p) + "\n" for p in personas(20)))
    raw = tmp_path / "raw.jsonl"
    base = ["--embed-model", "hash-64", "synthesize", "--template", "tool", "--personas",
            str(pfile), "--no-progress"]
    with MockServer() as srv:
        r = _invoke(base + ["--control", "8", "--oversample", "2", "--base-url", srv.url,
                            "--out", str(raw), "--json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.stdout)
        assert doc["control"] == 8 and doc["planned"] == 28 and doc["oversample"] == 2.0
        assert (doc["curation"]["k"], doc["curation"]["kept"], doc["curation"]["shortfall"]) == \
            (10, 10, 0)
        rerun = _invoke(base + ["--control", "8", "--oversample", "2", "--base-url", srv.url,
                                "--out", str(raw)])
        assert rerun.exit_code == 0 and "curated: kept 10 of 20 persona rows (K=10" in rerun.output
    raw_rows = rows_of(raw)
    kept = rows_of(tmp_path / "raw.curated.jsonl")
    assert len(raw_rows) == 28 and len(kept) == 10 and all(k in raw_rows for k in kept)
    assert (tmp_path / "raw.curated.manifest.json").exists()
    r = _invoke(["--embed-model", "hash-64", "outputs-report", str(raw), "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["control"] == 8 and rep["control_comparison"]["control_rows"] == 8
    assert rep["control_comparison"]["verdict"].startswith("personas raised output coverage")
    r = _invoke(["--embed-model", "hash-64", "outputs-report", str(raw)])
    assert r.output.strip().splitlines()[-1].startswith("personas raised output coverage")


def test_cli_oversample_shortfall_exits_1_and_bad_combinations_exit_2(tmp_path):
    pfile = tmp_path / "personas.jsonl"
    pfile.write_text("".join(json.dumps(p) + "\n" for p in personas(10)))
    base = ["--embed-model", "hash-16", "synthesize", "--template", "tool", "--personas",
            str(pfile), "--no-progress", "--retries", "0"]
    with MockServer(fail_rate=0.9, seed=1) as srv:
        r = _invoke(base + ["--oversample", "2", "--base-url", srv.url,
                            "--out", str(tmp_path / "raw.jsonl")])
        ok = sum(x["status"] == "ok" for x in rows_of(tmp_path / "raw.jsonl"))
        assert ok < 5, "the seed should leave fewer than K = 5 ok rows"
        assert r.exit_code == 1 and f"--oversample kept {ok} of K=5 rows" in r.output
        assert len(rows_of(tmp_path / "raw.curated.jsonl")) == ok
        for extra, words in ((["--curated", str(tmp_path / "c.jsonl"), "--out",
                               str(tmp_path / "o.jsonl")], "--curated goes with --oversample"),
                             (["--oversample", "2", "--out", "-"], "must be a regular file"),
                             (["--oversample", "0.5", "--out", str(tmp_path / "o.jsonl")],
                              "0.5"),
                             (["--oversample", "2", "--out", str(tmp_path / "o.jsonl"),
                               "--curated", str(tmp_path / "o.jsonl")], "--curated")):
            before = srv.state.requests
            r = _invoke(base + ["--base-url", srv.url] + extra)
            assert r.exit_code == 2 and words in r.output, r.output
            assert srv.state.requests == before and not (tmp_path / "o.jsonl").exists()


def test_cli_requests_only_with_control_and_oversample_writes_every_request_and_says_k(tmp_path):
    pfile = tmp_path / "personas.jsonl"
    pfile.write_text("".join(json.dumps(p) + "\n" for p in personas(9)))
    out = tmp_path / "requests.jsonl"
    r = _invoke(["synthesize", "--template", "tool", "--personas", str(pfile), "--requests-only",
                 "--control", "3", "--oversample", "3", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["requests"], doc["control"], doc["keep"]) == (12, 3, 3)
    assert "curate RESULTS -n 3" in r.stderr
    ids = [x["custom_id"] for x in rows_of(out)]
    assert ids[-3:] == ["control:tool:0", "control:tool:1", "control:tool:2"]
    r = _invoke(["synthesize", "--template", "tool", "--personas", str(pfile), "--requests-only",
                 "--oversample", "3", "--curated", str(tmp_path / "c.jsonl"), "--out",
                 str(tmp_path / "r2.jsonl")])
    assert r.exit_code == 2 and "nothing is curated" in r.output
    assert not (tmp_path / "r2.jsonl").exists()
