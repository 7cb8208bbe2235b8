"""Ingest in rooms: one validation read and one store snapshot per ingest,
summaries that add up, library messages that name parameters (the CLI says
flags), warnings instead of prints."""

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from persona_index import PersonaIndex
from persona_index import plan as P
from persona_index.embed import HashEmbedder
from persona_index.errors import IngestNote, IngestWarning, InputFileError, RowRejected
from persona_index.ingest import (EXAMPLES, EXAMPLES_PER_KIND, SUMMED, IngestOptions, IngestSummary,
                                  ingest_file, ingest_records)
from persona_index_cli.main import cli
from tests.conftest import write_jsonl


def _count_reads(monkeypatch):
    """The paths every ingest reader call opens, in order."""
    calls = []
    real = P.iter_file

    def counted(path, fmt=None):
        calls.append(str(path))
        return real(path, fmt)

    monkeypatch.setattr(P, "iter_file", counted)
    return calls


def _state(idx):
    return (idx.count(), idx.version) if idx.exists else (0, None)


def test_one_ingest_reads_its_file_twice_and_the_store_once(tmp_path, monkeypatch):
    """Schema detection, planning, strict and the type check against the store
    share one read (before: five reads); the write pass is the second."""
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    ingest_records(idx, [{"text": "a seed persona", "age": 40}])  # an int64 column to check
    rows = [{"input persona": f"persona number {i}", "synthesized text": "x", "age": 20 + i}
            for i in range(30)]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    calls = _count_reads(monkeypatch)
    events = []
    for name in ("snapshot", "write"):
        real = getattr(PersonaIndex, name)
        monkeypatch.setattr(PersonaIndex, name, lambda self, *a, _r=real, _n=name, **k:
                            (events.append(_n), _r(self, *a, **k))[1])
    with pytest.warns(IngestNote, match="personahub"):
        s = ingest_file(idx, f, schema="auto", strict=True, minhash=True)
    assert calls == [str(f), str(f)]
    assert (s.read, s.added, s.schema, s.version_before) == (30, 30, "personahub", 1)
    # the type check, version_before, the exact/near index and the MinHash index
    # all read one snapshot (before: four)
    assert events[:events.index("write")] == ["snapshot"]


def test_store_misfit_names_the_first_row_in_input_order(tmp_path):
    """The type check runs on the one pass's first line per value kind: it must
    name the row a row-by-row check names (first row, then first field)."""
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    ingest_records(idx, [{"text": "seed", "age": 40, "score": 1.5, "member": True}])
    rows = [{"text": "r1", "age": 1, "score": 2.0, "member": False},
            {"text": "r2", "age": 2, "score": "high", "member": True},
            {"text": "r3", "age": "old", "score": "low", "member": "yes"}]
    fits = {"age": {int}, "score": {int, float}, "member": {bool}}

    def reference(rs):  # row by row, fields in the file's order
        for n, r in enumerate(rs, 1):
            for k in ("age", "score", "member"):
                if type(r[k]) not in fits[k]:
                    return n, k
    before = _state(idx)
    for rs in (rows, [rows[0], rows[2]]):
        n, k = reference(rs)
        f = write_jsonl(tmp_path / "q.jsonl", rs)
        with pytest.raises(InputFileError, match=rf"q.jsonl:{n}: field '{k}': str value"):
            ingest_file(idx, f)
        assert _state(idx) == before
    assert reference(rows) == (2, "score") and reference([rows[0], rows[2]]) == (2, "age")


def test_strict_decides_after_the_whole_file_is_read(tmp_path):
    """strict names the first row unusable for the text field the plan chose
    (auto: 'persona', not 'text'), and a parse error anywhere comes first."""
    idx = PersonaIndex(tmp_path / "p.lance", HashEmbedder(16))
    rows = [{"persona": "a nurse", "text": ""}, {"persona": "a cook", "text": "x"},
            {"persona": "", "text": "y"}, {"persona": "a poet", "text": "z"}]
    f = write_jsonl(tmp_path / "s.jsonl", rows)
    with pytest.raises(RowRejected, match=r"s.jsonl:3: empty text \(strict"):
        ingest_file(idx, f, strict=True)
    g = write_jsonl(tmp_path / "g.jsonl", [{"persona": ""}, {"persona": "a cook"}, "{oops"])
    with pytest.raises(InputFileError, match="g.jsonl:3: malformed JSON"):
        ingest_file(idx, g, strict=True)
    assert not idx.exists


def test_options_object_and_keywords_agree(tmp_path):
    rows = [{"persona": f"a welder number {i}", "city": "Oslo"} for i in range(5)]
    f = write_jsonl(tmp_path / "o.jsonl", rows)
    opts = IngestOptions(licence="CC0", batch_size=2, attrs=["city"])
    a = ingest_file(PersonaIndex(tmp_path / "a.lance", HashEmbedder(16)), f, opts)
    b = ingest_file(PersonaIndex(tmp_path / "b.lance", HashEmbedder(16)), f, licence="CC0",
                    batch_size=2, attrs=["city"])
    c = ingest_file(PersonaIndex(tmp_path / "c.lance", HashEmbedder(16)), f, opts, batch_size=5)
    assert (a.added, a.batches, a.attributes) == (b.added, b.batches, b.attributes) == (5, 3, ["city"])
    assert c.batches == 1  # a keyword overrides the options object
    with pytest.raises(TypeError, match="no_such_option"):
        ingest_file(PersonaIndex(tmp_path / "d.lance", HashEmbedder(16)), f, no_such_option=1)


def _examples(entries):
    """The examples one report over ``entries`` keeps (the documented rule)."""
    out, counts = [], {}
    for e in entries:
        counts[e["reason"]] = counts.get(e["reason"], 0) + 1
        if counts[e["reason"]] <= EXAMPLES_PER_KIND and len(out) < EXAMPLES:
            out.append(e)
    return out


def test_merge_sums_every_count_and_time():
    numeric = {f.name for f in dataclasses.fields(IngestSummary) if f.type in ("int", "float")}
    assert set(SUMMED) == numeric  # a new count is summed without a list to update
    assert {"embedder_collisions", "minhash_duplicates", "load_seconds"} <= numeric
    a = IngestSummary("p.jsonl", **{n: i + 1 for i, n in enumerate(SUMMED)},
                      version_before=3, version_after=4, text_field="persona")
    b = IngestSummary("p.jsonl", **{n: 10 * (i + 1) for i, n in enumerate(SUMMED)},
                      version_before=4, version_after=6, text_field="persona")
    m = a.merge(b)
    assert [getattr(m, n) for n in SUMMED] == [11 * (i + 1) for i in range(len(SUMMED))]
    assert (m.version_before, m.version_after, m.text_field) == (3, 6, "persona")
    assert a.read == 1  # merge returns a new summary
    rng = np.random.default_rng(0)
    for seed in range(20):
        kinds = rng.choice(["exact-duplicate", "near-duplicate", "rejected", "minhash-duplicate",
                            "embedder-collision (kept)"], size=int(rng.integers(0, 60)))
        entries = [{"reason": str(k), "line": i} for i, k in enumerate(kinds)]
        cut = int(rng.integers(0, len(entries) + 1))
        a = IngestSummary("p", examples=_examples(entries[:cut]))
        b = IngestSummary("p", examples=_examples(entries[cut:]))
        assert a.merge(b).examples == _examples(entries), seed


def test_library_errors_name_parameters_and_the_cli_says_flags(tmp_path):
    f = write_jsonl(tmp_path / "q.jsonl", [{"name": "x"}])
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(16))
    with pytest.raises(InputFileError, match=r"name one with text_field=\.\.\.$") as e:
        ingest_records(idx, [{"name": "x"}])
    assert "--" not in str(e.value)
    with pytest.raises(InputFileError, match="report=") as e:
        ingest_file(idx, f, report=str(f))
    assert "--" not in str(e.value)
    db = ["--db", str(tmp_path / "s.lance"), "--embed-model", "hash-16"]
    r = CliRunner().invoke(cli, db + ["ingest", str(f), "--no-progress"])
    assert r.exit_code == 1 and r.stderr.strip().endswith("name one with --text-field")
    r = CliRunner().invoke(cli, db + ["ingest", str(f), "--no-progress", "--report", str(f)])
    # the CLI refuses an output equal to an input before any work, as a usage error (exit 2)
    assert r.exit_code == 2 and f"--report '{f}' is PATH '{f}'" in r.stderr
    assert "report=" not in r.stderr and "text_field" not in r.stderr


def test_ingest_warns_instead_of_printing_and_the_cli_prints_one_line_each(tmp_path, capsys):
    # one dimension: every vector is +1 or -1, so texts that share nothing collide
    idx = PersonaIndex(tmp_path / "s.lance", HashEmbedder(1))
    texts = ["a nurse in Lyon", "ein Koch aus Wien", "xyz qqq", "mmm ppp"]
    f = write_jsonl(tmp_path / "c.jsonl", [{"input persona": t} for t in texts])
    with pytest.warns(IngestWarning) as caught:
        s = ingest_file(idx, f, schema="auto")
    assert s.embedder_collisions > 0 and s.added == 4
    got = [(w.category, str(w.message)) for w in caught]
    assert (IngestNote, "c.jsonl looks like the personahub schema "
                        "(schema='none' to read it as a generic file)") in got
    assert any(c is IngestWarning and m.startswith(f"{s.embedder_collisions} persona(s)")
               for c, m in got)
    assert {w.filename for w in caught} == {__file__}  # attributed to the caller
    assert capsys.readouterr().err == ""  # the library prints nothing
    r = CliRunner().invoke(cli, ["--db", str(tmp_path / "c.lance"), "--embed-model", "hash-1",
                                 "ingest", str(f), "--no-progress", "--json"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.strip().splitlines()
    assert lines[0] == ("note: c.jsonl looks like the personahub schema "
                        "(--schema none to read it as a generic file)")
    n = json.loads(r.stdout)["embedder_collisions"]
    assert len(lines) == 2 and lines[1].startswith(f"warning: {n} persona(s)")
    assert "(--report)" in lines[1]


def test_ingest_embeds_in_chunks_so_progress_moves_within_a_batch(tmp_path):
    """A batch of 300 new rows is embedded 128 rows at a time (the bar advances
    after each chunk, not once per 1,024-row batch), and the vectors stored are
    the ones a single call gives."""
    from persona_index import PersonaIndex
    from persona_index.embed import HashEmbedder
    from persona_index.ingest import EMBED_CHUNK, ingest_records

    calls = []

    class Counting(HashEmbedder):
        def encode(self, texts, **kw):
            calls.append(len(texts))
            return super().encode(texts, **kw)

    e = Counting(dim=16)
    texts = [f"persona number {i} who keeps bees" for i in range(300)]
    idx = PersonaIndex(tmp_path / "p.lance", e)
    s = ingest_records(idx, [{"text": t} for t in texts], near_dedup=False)
    assert s.added == 300 and EMBED_CHUNK == 128
    assert calls == [128, 128, 44]
    snap = idx.snapshot()
    got = {snap.ids[i].as_py(): snap.vectors[i] for i in range(len(snap.ids))}
    want = HashEmbedder(dim=16).encode(texts)
    from persona_index.text import persona_id

    assert all(np.allclose(got[persona_id(t)], want[i]) for i, t in enumerate(texts))
