"""The whole loop with no manual step: the real Dagster daemon, the workspace, SeaweedFS.

Captures uploaded by the simulator are discovered by the intake sensor, proven, proxied when
clean; a corrupted one is blocked and alerted; its media session is rolled up.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dagster import AssetRecordsFilter, DagsterInstance

from robotrace_assets import catalog
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof import rules
from robotrace_assets.sessions.assets import MEDIA_SESSION
from robotrace_assets.settings import PROJECT_ROOT
from robotrace_assets_tests.helpers import check_outcomes, simulate, stop_process_group, store_for

DEADLINE_S = 240


def _materialized(instance: DagsterInstance, key, partition: str) -> bool:
    return bool(
        instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[partition]), limit=1
        ).records
    )


def _proof_alerted(alerts_file: Path, segment_id: str) -> bool:
    """A proof-check alert for this segment's SHA-256 (the run-failure alert for the same
    segment may land first, so the segment id alone is not enough)."""
    if not alerts_file.exists():
        return False
    return any(
        alert["kind"] == "proof_check_failed"
        and alert["details"]["check"] == rules.SHA256
        and alert["details"]["segment_id"] == segment_id
        for alert in map(json.loads, alerts_file.read_text().splitlines())
    )


@pytest.mark.slow
def test_daemon_discovers_proves_blocks_and_alerts(s3, bucket, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "ROBOTRACE_BUCKET": bucket,
        "ROBOTRACE_DATA_DIR": str(data_dir),
        "ROBOTRACE_SENSOR_INTERVAL_S": "3",
    }
    session = simulate(s3, bucket, "corrupt_after_upload@0.1", segments=2)[0]
    clean, corrupt = session.segments
    # Create the SQLite schema before the daemon and its code server open the same files.
    instance = DagsterInstance.from_config(str(home))
    instance.get_runs(limit=1)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=open(tmp_path / "daemon.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    alerts_file = data_dir / "alerts.jsonl"
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            done = (
                _materialized(instance, PROXY, clean.segment_id)
                and check_outcomes(instance, corrupt.segment_id)[rules.SHA256] is False
                and _proof_alerted(alerts_file, corrupt.segment_id)
                and "run_failed" in alerts_file.read_text()
                and _materialized(instance, MEDIA_SESSION, session.media_session_id)
                and len(
                    [
                        r
                        for r in instance.get_runs()
                        if "robotrace/split_from" in r.tags and r.is_finished
                    ]
                )
                == 2
            )
            if done:
                break
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            time.sleep(2)
        else:
            log = (tmp_path / "daemon.log").read_text()[-4000:]
            pytest.fail(f"pipeline did not settle in {DEADLINE_S}s; daemon log tail:\n{log}")
        assert set(check_outcomes(instance, clean.segment_id).values()) == {True}
        assert not _materialized(instance, PROXY, corrupt.segment_id)
        assert _proof_alerted(alerts_file, corrupt.segment_id)
        kinds = {json.loads(line)["kind"] for line in alerts_file.read_text().splitlines()}
        assert "run_failed" in kinds  # the blocked run failed too, and that is alerted as well
        # Both segments arrived together: one batched run, however many ticks the sensor made;
        # the corrupt one failed it, so the split sensor ran each segment once on its own.
        runs = instance.get_runs()
        batches = [r for r in runs if r.tags.get("dagster/asset_partition_range_start")]
        assert len(batches) == 1
        segment_runs = [r for r in runs if r.tags.get("robotrace/segment")]
        assert sorted(r.tags["robotrace/segment"] for r in segment_runs) == sorted(
            [clean.segment_id, corrupt.segment_id]
        )
        assert {r.tags["robotrace/split_from"] for r in segment_runs} == {batches[0].run_id}
        row = store_for(bucket).read_record(catalog.SESSIONS, session.media_session_id)[0]
        assert row["segments_declared"] == 2
    finally:
        stop_process_group(daemon)
        instance.dispose()
        shutil.rmtree(home / "storage", ignore_errors=True)
