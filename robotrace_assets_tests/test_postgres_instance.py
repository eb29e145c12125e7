"""The proof, the cross-run guard and the alert cursor on the production instance type:
Dagster storage in PostgreSQL (dagster-postgres), against the machine's server on :5432."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from dagster import DagsterInstance, build_sensor_context

from robotrace_assets.alerts.sensors import proof_check_alert_sensor
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    alerts_for,
    check_outcomes,
    failure_messages,
    materialized,
    run_assets,
    simulate,
)

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _admin():
    connection = psycopg2.connect(dbname="postgres", connect_timeout=5, **PG)
    connection.autocommit = True
    return connection


@pytest.fixture
def pg_instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    try:
        admin = _admin()
    except psycopg2.OperationalError as error:
        if os.environ.get("CI"):
            raise  # .ci/run starts PostgreSQL: in CI its absence is a failure
        pytest.skip(f"PostgreSQL is not running on 127.0.0.1:5432: {error}")
    name = f"robotrace_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    storage = {
        "postgres": {
            "postgres_db": {
                "username": PG["user"],
                "password": "",
                "hostname": PG["host"],
                "port": PG["port"],
                "db_name": name,
                # SQLAlchemy >= 2.1 maps plain postgresql:// to psycopg 3; name the driver.
                "scheme": "postgresql+psycopg2",
            }
        }
    }
    home = tmp_path / "dagster_home"
    home.mkdir()
    try:
        with DagsterInstance.local_temp(
            str(home), overrides={"storage": storage, "telemetry": {"enabled": False}}
        ) as instance:
            yield instance
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_proof_guard_and_alerts_on_postgres(s3, bucket, pg_instance, data_dir) -> None:
    clean, corrupt = simulate(s3, bucket, "corrupt_after_upload@0.1", segments=2)[0].segments
    run = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY]
    assert run_assets(pg_instance, bucket, run, clean.segment_id).success
    assert not run_assets(pg_instance, bucket, run, corrupt.segment_id).success
    assert type(pg_instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert set(check_outcomes(pg_instance, clean.segment_id).values()) == {True}
    assert check_outcomes(pg_instance, corrupt.segment_id)[rules.SHA256] is False
    later = run_assets(pg_instance, bucket, [PROXY], corrupt.segment_id, with_checks=False)
    assert "sha256_matches_envelope: failed" in failure_messages(later)
    assert materialized(pg_instance, PROXY, clean.segment_id)
    assert not materialized(pg_instance, PROXY, corrupt.segment_id)
    proof_check_alert_sensor(
        build_sensor_context(instance=pg_instance, resources={"alerts": alerts_for()})
    )
    assert corrupt.segment_id in (data_dir / "alerts.jsonl").read_text()
