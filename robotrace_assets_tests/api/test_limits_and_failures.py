"""429 with an integer Retry-After (and the official SDK honouring it), and a clean 500."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import robotrace

from robotrace_assets.api.config import ApiConfig
from robotrace_assets.objectstore.local import LocalObjectStore
from robotrace_assets_tests.api.conftest import Service, _store_settings, start_service


@pytest.fixture
def small_service(
    local_store: LocalObjectStore, api_bucket: str, tmp_path: Path
) -> Iterator[Service]:
    config = ApiConfig(
        database_url=f"sqlite:///{tmp_path / 'ingest.sqlite3'}",
        settings=_store_settings(api_bucket),
        rate_per_s=0.5,
        rate_burst=2,
    )
    running = start_service(config, api_bucket, local_store.client())
    yield running
    running.stop()


def test_rate_limit_is_429_with_integer_retry_after(small_service: Service) -> None:
    key = small_service.key(small_service.tenant())
    client = small_service.client(key)
    statuses = [client.post("/api/ingest/episode", json={}).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    limited = client.post("/api/ingest/episode", json={})
    assert limited.status_code == 429
    assert limited.headers["retry-after"].isdigit() and int(limited.headers["retry-after"]) >= 1
    assert "error" in limited.json()
    # Another key of the same service has its own bucket of tokens.
    other = small_service.client(small_service.key(small_service.tenant("other")))
    assert other.post("/api/ingest/episode", json={}).status_code == 201
    # The official SDK waits Retry-After and retries the create.
    with robotrace.Client(api_key=key, base_url=small_service.url, verbose=False) as sdk:
        episode = sdk.start_episode(name="after the wait", artifacts=[])
        assert episode.status == "recording"


def test_database_failure_is_a_clean_500(
    small_service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = small_service.client(small_service.key(small_service.tenant()))
    path = small_service.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE artifacts")
    response = client.post("/api/ingest/episode", json={"policy_version": "secret-policy-v9"})
    assert response.status_code == 500
    assert set(response.json()) == {"error", "request_id"}
    assert "secret-policy-v9" not in response.text
    ours = [r for r in caplog.records if r.name.startswith(("robotrace_assets", "uvicorn"))]
    text = "\n".join(r.getMessage() + str(r.exc_text or "") for r in ours)
    assert response.json()["request_id"] in text
    assert "secret-policy-v9" not in text
    assert client.get("/api/health").status_code == 200  # the service keeps serving
