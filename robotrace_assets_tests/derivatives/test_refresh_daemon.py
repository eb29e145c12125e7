"""The derivative refresh under the real Dagster daemon: the sensor's request becomes one backfill,
and the backfill's runs remake exactly the stale segments' derivatives with the current profile."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetMaterialization, AssetRecordsFilter, DagsterInstance

from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.sensors import REFRESH_TAG
from robotrace_assets.intake.sensors import capture_intake_sensor
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sessions.sensors import media_session_rollup_sensor
from robotrace_assets.settings import PROJECT_ROOT
from robotrace_assets_tests.helpers import run_assets, simulate, stop_process_group

DEADLINE_S = 360
PROVE = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF]


def _fingerprints(instance: DagsterInstance, segment_id: str) -> list[str]:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PROXY, asset_partitions=[segment_id]), limit=10
    ).records
    return [
        str(r.asset_materialization.metadata["profile_fingerprint"].value)
        for r in records
        if r.asset_materialization and "profile_fingerprint" in r.asset_materialization.metadata
    ]


def _dagster(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), *args, "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.mark.slow
def test_daemon_backfills_the_stale_segments(s3, bucket, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "ROBOTRACE_BUCKET": bucket}
    instance = DagsterInstance.from_config(str(home))
    fresh, outdated, missing = simulate(s3, bucket, segments=3)[0].segments
    assert run_assets(instance, bucket, [*PROVE, PROXY], fresh.segment_id).success
    for segment in (outdated, missing):
        assert run_assets(instance, bucket, PROVE, segment.segment_id).success
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=PROXY,
            partition=outdated.segment_id,
            metadata={"profile_fingerprint": "older-profile"},
        )
    )
    # The sensors that launch runs for new captures and proofs would re-prove these segments.
    for sensor in (capture_intake_sensor, media_session_rollup_sensor):
        _dagster(env, "sensor", "stop", sensor.name)
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=open(tmp_path / "daemon.log", "wb"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    current = CURRENT_PROFILE.fingerprint()
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            remade = [_fingerprints(instance, s.segment_id)[:1] for s in (outdated, missing)]
            if remade == [[current], [current]]:
                break
            assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-3000:]
            time.sleep(2)
        else:
            log = (tmp_path / "daemon.log").read_text()[-4000:]
            pytest.fail(f"refresh did not settle in {DEADLINE_S}s; daemon log tail:\n{log}")
        (backfill,) = instance.get_backfills()
        assert backfill.tags[REFRESH_TAG] == CURRENT_PROFILE.version
        assert len(_fingerprints(instance, fresh.segment_id)) == 1  # not remade
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/backfill")]
        # Both segments in one run: the BackfillPolicy packs consecutive partitions.
        assert len(runs) == 1
    finally:
        stop_process_group(daemon)
        instance.dispose()
        shutil.rmtree(home / "storage", ignore_errors=True)
