"""Drawing from a real store: filters, neighbourhoods, sessions, manifests."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.errors import ManifestError, SamplingError
from persona_index.ingest import ingest_records
from persona_index.sampling import coverage_of, draw, replay
from persona_index.sessions import Sessions


@pytest.fixture
def hash_store(tmp_path):
    """A writable store with deterministic vectors (no model needed)."""
    from persona_index.generate import ATTRIBUTES, generate

    idx = PersonaIndex(tmp_path / "h.lance", "hash-32")
    ingest_records(idx, list(generate(600, seed=4)), attrs=list(ATTRIBUTES), near_dedup=False)
    return idx


def test_where_and_neighbourhood(built_store):
    b = draw(built_store, 10, "farthest", seed=0, where="region = 'Europe'", record=False)
    assert all(r["region"] == "Europe" for r in b.rows)
    b = draw(built_store, 5, "uniform", seed=0, near="a farmer", within=20, record=False)
    near_ids = {h.id for h in built_store.similar("a farmer", k=20)}
    assert set(b.ids) <= near_ids
    with pytest.raises(SamplingError, match="only 20 are available"):
        draw(built_store, 21, "uniform", near="a farmer", within=20, record=False)


def test_stratified_draw_balances_store_attribute(built_store):
    b = draw(built_store, 35, "stratified", seed=1, params={"by": ["region"]}, record=False)
    counts = {}
    for r in b.rows:
        counts[r["region"]] = counts.get(r["region"], 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 1


def test_session_never_repeats_and_fills_gaps(hash_store):
    seen = []
    for i in range(5):
        b = draw(hash_store, 100, "farthest", seed=i, session="train")
        assert not set(b.ids) & set(seen)
        seen += b.ids
        assert b.manifest["prior_count"] == 100 * i
    assert Sessions(hash_store).list()[0]["personas"] == 500
    with pytest.raises(SamplingError, match="after excluding 500"):
        draw(hash_store, 101, "uniform", session="train")
    ev = draw(hash_store, 90, "uniform", seed=0, session="eval", exclude_sessions=["train"])
    assert not set(ev.ids) & set(seen)
    assert Sessions(hash_store).reset("train") == 500
    assert draw(hash_store, 600 - 90, "uniform", session="x", exclude_sessions=["eval"]).manifest["pool_size"] == 510


def test_replay_returns_the_same_ids_even_after_the_store_grows(hash_store):
    a = draw(hash_store, 30, "farthest", seed=5, session="s")
    b = draw(hash_store, 30, "inverse-density", seed=6, session="s")
    ingest_records(hash_store, ["A newly added persona", "Another new one"], near_dedup=False)
    draw(hash_store, 30, "uniform", session="s")
    assert replay(b.manifest).ids == b.ids
    assert replay(a.manifest).ids == a.ids
    assert b.manifest["session_version"] > a.manifest["session_version"]
    bad = dict(b.manifest, seed=b.manifest["seed"] + 1)
    with pytest.raises(ManifestError, match="differs"):
        replay(bad)


def test_two_processes_drawing_one_session_never_collide(hash_store, tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from persona_index import PersonaIndex
        from persona_index.sampling import draw
        idx = PersonaIndex({str(hash_store.path)!r})
        ids = []
        for i in range(6):
            ids += draw(idx, 40, "uniform", seed=int(sys.argv[1]) * 100 + i, session="shared").ids
        print(json.dumps(ids))
    """)
    f = tmp_path / "drawer.py"
    f.write_text(script)
    procs = [subprocess.Popen([sys.executable, str(f), str(s)], stdout=subprocess.PIPE, text=True)
             for s in (1, 2)]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    both = outs[0] + outs[1]
    assert len(both) == 480 and len(set(both)) == 480
    assert len(Sessions(hash_store).drawn(["shared"])) == 480


def test_coverage_of_ids(built_store):
    f = draw(built_store, 40, "farthest", seed=0, record=False)
    u = draw(built_store, 40, "uniform", seed=0, record=False)
    cf, cu = coverage_of(built_store, f.ids), coverage_of(built_store, u.ids)
    assert cf["kcenter_radius"] < cu["kcenter_radius"] and cf["vendi"] > cu["vendi"]
    assert set(cf["attribute_balance"]) == set(built_store.attributes)
    with pytest.raises(SamplingError, match="not in the pool"):
        coverage_of(built_store, ["nope"])


def test_old_herding_manifest_replays_with_the_constant_rule(hash_store):
    """A default draw written before the ramp (issue 25) recorded no ``ramp``
    and no ``beta``: it replays with the constant rule it was drawn with
    (beta 0.5), not with today's default; today's draws record both."""
    old = draw(hash_store, 40, "herding", seed=3, params={"beta": 0.5, "ramp": "none"},
               record=False)
    today = draw(hash_store, 40, seed=3, record=False)
    assert today.manifest["params"] == {"beta": 1.0, "ramp": "linear", "candidates_per_pick": 16}
    assert set(today.ids) != set(old.ids)  # the two rules differ on this pool
    written_then = dict(old.manifest, params={})
    assert replay(written_then).ids == old.ids
    assert replay(today.manifest).ids == today.ids


def test_old_herding_manifest_replays_with_32_candidates_per_pick(tmp_path):
    """A default draw written before ``candidates_per_pick`` was recorded
    subsampled max(16384, 32 k) candidates: on a pool of 17,000 with k = 600
    that is every row, where today's 16 per pick reads 16,384 of them. The old
    manifest (no ``candidates_per_pick``) replays the old batch; today's, today's."""
    from persona_index.embed import HashEmbedder

    rng = np.random.default_rng(0)
    X = rng.standard_normal((17_000, 32)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    index = PersonaIndex(tmp_path / "p.lance", HashEmbedder(dim=32))
    index.add([{"text": f"persona {i}"} for i in range(len(X))], vectors=X)
    old = draw(index, 600, seed=1, params={"candidates_per_pick": 32}, record=False)
    today = draw(index, 600, seed=1, record=False)
    assert today.manifest["params"]["candidates_per_pick"] == 16
    assert set(today.ids) != set(old.ids)
    written_then = dict(old.manifest, params={k: v for k, v in old.manifest["params"].items()
                                              if k != "candidates_per_pick"})
    assert replay(written_then).ids == old.ids
    assert replay(today.manifest).ids == today.ids
