"""Shared fixtures: a real SeaweedFS per test session, a fresh bucket and Dagster instance per test.

Nothing here is a mock. The object store is the pip-installed `weed` binary on free loopback
ports in a temporary directory, so two test runs on one machine never collide.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from robotrace_assets.objectstore.client import S3Client
from robotrace_assets.objectstore.local import LocalObjectStore, find_free_port_block
from robotrace_assets.settings import Settings
from robotrace_assets_tests.helpers import TEST_STORE

TEST_ACCESS_KEY = "robotrace-test"
TEST_SECRET = "robotrace-test-secret-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalObjectStore]:
    root = tmp_path_factory.mktemp("objectstore")
    store = LocalObjectStore(
        root=root,
        s3_port=find_free_port_block(),
        bucket="robotrace-test",
        access_key_id=TEST_ACCESS_KEY,
        secret_access_key=TEST_SECRET,
    )
    store.start()
    TEST_STORE.endpoint_url = store.endpoint_url
    TEST_STORE.access_key_id, TEST_STORE.secret_access_key = TEST_ACCESS_KEY, TEST_SECRET
    # In-process tests build their resources from TEST_STORE; the environment below is for
    # what reads it as production does: the CLI, and Dagster processes started by tests.
    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    os.environ.update(
        {
            "ROBOTRACE_S3_ENDPOINT_URL": store.endpoint_url,
            "ROBOTRACE_BUCKET": store.bucket,
            "ROBOTRACE_S3_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "ROBOTRACE_S3_SECRET_ACCESS_KEY": TEST_SECRET,
            "ROBOTRACE_S3_REGION": "us-east-1",
            "ROBOTRACE_DATA_DIR": str(root.parent / "data"),
            "ROBOTRACE_LOCAL_S3_PORT": str(store.s3_port),
        }
    )
    for key in ("ROBOTRACE_R2_ACCOUNT_ID", "ROBOTRACE_ALERT_WEBHOOK_URL", "ROBOTRACE_TENANTS"):
        os.environ.pop(key, None)
    try:
        yield store
    finally:
        store.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_ENV_KEYS = (
    "ROBOTRACE_S3_ENDPOINT_URL",
    "ROBOTRACE_BUCKET",
    "ROBOTRACE_S3_ACCESS_KEY_ID",
    "ROBOTRACE_S3_SECRET_ACCESS_KEY",
    "ROBOTRACE_S3_REGION",
    "ROBOTRACE_DATA_DIR",
    "ROBOTRACE_LOCAL_S3_PORT",
    "ROBOTRACE_R2_ACCOUNT_ID",
    "ROBOTRACE_ALERT_WEBHOOK_URL",
    "ROBOTRACE_TENANTS",
)


@pytest.fixture
def s3(local_store: LocalObjectStore) -> S3Client:
    return local_store.client()


@pytest.fixture
def bucket(s3: S3Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh bucket per test, also made the default for code that reads Settings."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    monkeypatch.setenv("ROBOTRACE_BUCKET", name)
    TEST_STORE.data_dir = tmp_path / "data"
    yield name
    drop_bucket(s3, name)


def drop_bucket(s3: S3Client, name: str) -> None:
    """Delete a test bucket and its objects. SeaweedFS gives each bucket volumes of its own and
    a store has a bounded number of them (free disk / volume size): a suite that kept every
    bucket would run out of volumes and see InternalError on PUT."""
    with contextlib.suppress(s3.exceptions.ClientError):  # never fail a test on its cleanup
        s3.delete_bucket(Bucket=name)  # SeaweedFS deletes a non-empty bucket whole


@pytest.fixture
def settings(bucket: str) -> Settings:
    return Settings.from_env()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("ROBOTRACE_DATA_DIR", str(path))
    return path


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A real Dagster instance with SQLite storage in a temporary DAGSTER_HOME."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(str(home), overrides={"telemetry": {"enabled": False}}) as inst:
        yield inst
