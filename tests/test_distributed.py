"""Scale-out on Ray: equal to the single-process result (skipped without ray)."""

import numpy as np
import pytest

from persona_index import PersonaIndex
from persona_index.ingest import ingest_file
from tests.conftest import write_jsonl

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_ray_ingest_equals_single_process(tmp_path, embedder, pool_records):
    rows = pool_records[:150] + pool_records[:5]  # duplicates: keep-first must agree
    rows.insert(10, {"persona": pool_records[3]["persona"].upper(), **{k: v for k, v in pool_records[3].items() if k != "persona"}})
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    from persona_index.distributed import ingest_file_ray

    a = PersonaIndex(tmp_path / "a.lance", embedder)
    sa = ingest_file(a, f, batch_size=40)
    b = PersonaIndex(tmp_path / "b.lance", embedder)
    sb = ingest_file_ray(b, str(f), num_workers=2, batch_size=40, window=64)  # 3 windows
    assert (sa.added, sa.exact_duplicates, sa.near_duplicates) == \
           (sb.added, sb.exact_duplicates, sb.near_duplicates)
    ta = a.snapshot().dataset.to_table().sort_by("id")
    tb = b.snapshot().dataset.to_table().sort_by("id")
    for col in ("id", "text", "source_line", "profession", "region"):
        assert ta.column(col).to_pylist() == tb.column(col).to_pylist()
    va = np.stack(ta.column("vector").to_numpy(zero_copy_only=False))
    vb = np.stack(tb.column("vector").to_numpy(zero_copy_only=False))
    assert np.abs(va - vb).max() < 1e-5


def test_distributed_farthest_radius_close_to_exact():
    from persona_index.distributed import distributed_farthest
    from persona_index.metrics import kcenter_radius
    from persona_index.samplers.base import sample

    rng = np.random.default_rng(0)
    C = rng.standard_normal((40, 16)).astype(np.float32)
    X = C[rng.integers(40, size=20000)] + 0.3 * rng.standard_normal((20000, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    d = distributed_farthest(X, 60, partitions=8, seed=0)
    assert len(np.unique(d)) == 60
    exact = sample(X, 60, "farthest", seed=0)
    assert kcenter_radius(X[d], X)[0] <= 1.5 * kcenter_radius(X[exact], X)[0]


@pytest.mark.filterwarnings("ignore::persona_index.errors.IngestWarning")  # collisions, wanted here
def test_ray_summary_equals_the_local_one_on_every_count(tmp_path):
    """Every count of the Ray summary, summed over its windows by merge(), equals
    a single-process ingest's, with duplicates of every kind after the first
    window (before, embedder_collisions and minhash_duplicates kept only the
    first window's). hash-1 puts every vector at +1 or -1, so texts collide."""
    from persona_index.distributed import ingest_file_ray
    from persona_index.embed import HashEmbedder
    from persona_index.ingest import SUMMED

    jobs = ["welder", "nurse", "baker", "pilot", "miner", "judge", "tailor", "farmer"]
    cities = ["Oslo", "Lima", "Pune", "Accra", "Quito"]
    base = [f"A {j} in {c} who sings" for j in jobs for c in cities][:24]
    rows = [{"persona": t} for t in base[:8]] + [{"persona": ""}, {"persona": base[0]}]
    for t in base[8:24]:  # later windows: new rows, exact, MinHash and near duplicates
        rows.append({"persona": t})
        if len(rows) % 10 in (3, 6):
            rows.append({"persona": t.replace(" who sings", "") + ", who sings!"})  # same words
        if len(rows) % 10 == 8:
            rows.append({"persona": t + " loudly"})  # near the text, other words
    rows += [{"persona": base[0].upper()}, {"text": "no persona field"}]
    f = write_jsonl(tmp_path / "p.jsonl", rows)
    kw = dict(batch_size=10, minhash=True)
    first = ingest_file(PersonaIndex(tmp_path / "w.lance", HashEmbedder(1)),
                        write_jsonl(tmp_path / "w.jsonl", rows[:10]), **kw)
    sa = ingest_file(PersonaIndex(tmp_path / "a.lance", HashEmbedder(1)), f, **kw)
    sb = ingest_file_ray(PersonaIndex(tmp_path / "b.lance", HashEmbedder(1)), str(f),
                         num_workers=1, window=10, **kw)
    counts = [n for n in SUMMED if isinstance(getattr(sa, n), int)]
    assert {n: getattr(sb, n) for n in counts} == {n: getattr(sa, n) for n in counts}
    for n in ("embedder_collisions", "minhash_duplicates", "exact_duplicates", "rejected"):
        assert getattr(sa, n) > getattr(first, n), n  # later windows count too
    assert sb.read == len(rows) and sb.version_before is None and sb.version_after >= 3
