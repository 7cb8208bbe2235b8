"""Crash safety under SIGKILL, and a store on S3-compatible object storage."""

import os
import signal
import subprocess
import sys
import time

import pytest

from persona_index import PersonaIndex
from persona_index.ingest import ingest_file, ingest_records
from tests.conftest import write_jsonl


def test_sigkill_mid_ingest_then_rerun_completes_without_duplicates(tmp_path, embedder, pool_records):
    f = write_jsonl(tmp_path / "p.jsonl", pool_records[:300])
    db = tmp_path / "k.lance"
    code = (f"from persona_index import PersonaIndex\nfrom persona_index.ingest import ingest_file\n"
            f"ingest_file(PersonaIndex({str(db)!r}), {str(f)!r}, batch_size=25)\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    idx = PersonaIndex(db)
    try:
        while time.time() < deadline:
            if idx.exists and idx.count() >= 50:
                break
            time.sleep(0.05)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait()
    partial = PersonaIndex(db)
    n_partial = partial.count()
    assert n_partial >= 50
    ids_partial = set(partial.vectors()[0])
    s = ingest_file(PersonaIndex(db, embedder), f, batch_size=25)
    clean = PersonaIndex(tmp_path / "clean.lance", embedder)
    ingest_file(clean, f, batch_size=25)
    final = PersonaIndex(db)
    ids = final.vectors()[0]
    assert len(ids) == len(set(ids)) == clean.count()
    assert set(ids) == set(clean.vectors()[0]) and ids_partial <= set(ids)
    assert s.exact_duplicates >= n_partial


@pytest.fixture
def s3(monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    import boto3

    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    env = dict(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT=f"http://{host}:{port}",
               AWS_ALLOW_HTTP="true")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT"]).create_bucket(Bucket="personas")
    yield "s3://personas"
    srv.stop()


def test_store_on_s3_compatible_object_storage(s3):
    from persona_index.sampling import draw

    from persona_index.errors import ConcurrencyError

    uri = f"{s3}/team/store.lance"
    with pytest.raises(ConcurrencyError, match="single_writer=True"):  # no locks on object storage
        ingest_records(PersonaIndex(uri, "hash-16"), [{"text": "x"}], near_dedup=False)
    idx = PersonaIndex(uri, "hash-16", single_writer=True)
    assert not idx.exists
    s = ingest_records(idx, [{"text": f"persona {i}", "region": "EU" if i % 2 else "AS"}
                             for i in range(40)], attrs=["region"], near_dedup=False)
    assert s.added == 40
    again = PersonaIndex(uri, single_writer=True)  # a fresh handle reads it back from the bucket
    assert again.count() == 40 and again.info()["model"] == "hash-16"
    ids, X = again.vectors()
    hits = again.similar(vector=X[3], k=3, where="region = 'EU'")
    assert all(h.attributes["region"] == "EU" for h in hits)
    with pytest.raises(ConcurrencyError):
        draw(PersonaIndex(uri), 10, "farthest", seed=0, session="s3-session")
    b = draw(again, 10, "farthest", seed=0, session="s3-session")
    b2 = draw(again, 10, "farthest", seed=0, session="s3-session")
    assert not set(b.ids) & set(b2.ids)
