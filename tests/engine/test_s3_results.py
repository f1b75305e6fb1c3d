"""Results in S3 (`s3://bucket/prefix`) through s3fs, against a local S3-compatible server
(moto's, on 127.0.0.1) — the way our users point weir at RustFS or MinIO."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from weir import flow, task
from weir.cache_policies import INPUTS
from weir.engine.results import get_result_store
from weir.testing.server import free_port

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "weir-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "weir-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # instances remember the endpoint they met
    bucket = f"weir-results-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    try:
        yield f"s3://{bucket}/runs"
    finally:
        server.stop()


def test_the_store_contract_holds_on_s3(s3_bucket: str) -> None:
    store = get_result_store(s3_bucket + "/contract", default_url=s3_bucket)
    assert not store.exists("a/b")
    store.write("a/b", b"payload")
    assert store.exists("a/b")
    assert store.read("a/b") == b"payload"
    store.delete("a/b")
    with pytest.raises(KeyError):
        store.read("a/b")


def test_cached_task_results_live_in_s3(s3_bucket: str) -> None:
    calls = []

    @task(cache_policy=INPUTS, result_storage=s3_bucket)
    def exchange_rate(currency: str) -> float:
        calls.append(currency)
        return 1.08

    @flow
    def invoice() -> list[str]:
        return [exchange_rate(currency="EUR", return_state=True).name for _ in range(2)]

    assert invoice() == ["Completed", "Cached"]
    assert calls == ["EUR"]
    import s3fs

    assert s3fs.S3FileSystem().ls(s3_bucket.removeprefix("s3://"))
