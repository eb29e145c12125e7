"""The code location loads, and its asset graph is the one the README describes."""

import subprocess
import sys

from dagster import AssetKey, Definitions

from robotrace_assets.definitions import defs
from robotrace_assets.settings import PROJECT_ROOT


def test_definitions_load() -> None:
    Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "raw/segment_video",
        "sessions/media_session",
        "segments/segment",
        "segments/segment_parts",
        "segments/media_probe",
        "proof/provider_proof",
        "derivatives/proxy",
        "derivatives/thumbnails",
        "derivatives/contact_sheet",
        "derivatives/labels",
        "derivatives/transcript",
        "derivatives/depth",
        "clips/clip",
        "review/clip_review",
        "review/review_complete",
        "review/regression_bank",
        "delivery/buyer_delivery",
        "payouts/segment_payout",
    }
    checks = defs.resolve_asset_graph().asset_check_keys
    assert {c.name for c in checks if c.asset_key == AssetKey(["proof", "provider_proof"])} == {
        "size_matches_envelope",
        "sha256_matches_envelope",
        "parts_complete_and_contiguous",
        "multipart_etag_matches_parts",
        "content_type_expected",
        "raw_key_in_tenant_prefix",
        "segment_belongs_to_session",
        "declared_objects_proven",
        "object_unchanged_since_proof",
    }
    assert not defs.schedules
    sensors = {s.name for s in defs.sensors or []}
    assert sensors == {
        "capture_intake_sensor",
        "intake_batch_split_sensor",
        "partition_archival_sensor",
        "derivative_refresh_sensor",
        "media_session_rollup_sensor",
        "proof_check_alert_sensor",
        "run_failure_alert_sensor",
        "review_decision_sensor",
        "review_sets_sensor",
        "payout_withhold_sensor",
    }


def test_dagster_cli_validates_the_workspace(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True,
        text=True,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin"},
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
