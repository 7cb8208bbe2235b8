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
