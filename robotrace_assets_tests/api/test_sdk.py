"""The official RoboTrace SDK (robotrace-dev from PyPI) against the real service, SeaweedFS and
the Dagster graph: every documented flow, the proof, byte-identical reads, a truncated upload."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import robotrace
from dagster import build_sensor_context
from robotrace.errors import NotFoundError

from robotrace_assets import catalog, layout
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.intake.batches import RANGE_END_TAG, RANGE_START_TAG
from robotrace_assets.intake.sensors import capture_intake_sensor
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sensorlog import write_parquet
from robotrace_assets_tests.api.conftest import Service
from robotrace_assets_tests.helpers import failure_messages, resources_for, run_assets, store_for

pytestmark = pytest.mark.slow
PROOF_RUN = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF]
CONSENT = {
    "receipt_id": "consent_01J8Z3Y4X5W6V7T8S9R0Q1P2N3",
    "brief_accepted_at": "2026-11-29T09:00:00Z",
    "co_resident_required": False,
}
LICENSE = {"scope_id": "lic_01J8Z3Y4X5W6V7T8S9R0Q1P2N3", "allowed_use": ["robotics_training"]}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sdk")
    video = encode_synthetic_video(
        root / "run.mp4", VideoSpec(seconds=2.0, width=160, height=120, codec="h264", seed=3)
    ).path
    sensors = root / "joints.npz"
    np.savez(sensors, q=np.linspace(0, 1, 600).reshape(100, 6))
    actions = root / "actions.parquet"
    pq.write_table(pa.table({"t": list(range(100)), "a": [0.5] * 100}), actions)
    return {"video": video, "sensors": sensors, "actions": actions}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sdk(service: Service) -> robotrace.Client:
    key = service.key(service.tenant("sdk-tenant"))
    return robotrace.Client(api_key=key, base_url=service.url, verbose=False)


def read(client: robotrace.Client, path: str, **headers: str) -> httpx.Response:
    """A read as the SDK does it: its own authenticated httpx client, following redirects."""
    return client._http._client.get(path, follow_redirects=True, headers=headers)


def prove(service: Service, instance, segment_id: str) -> dict:
    result = run_assets(instance, service.bucket, PROOF_RUN, segment_id)
    assert result.success, failure_messages(result)
    return store_for(service.bucket).read_record(catalog.PROOFS, segment_id)[0]


def test_log_episode_is_proven_and_reads_back_byte_identical(
    sqlite_service: Service, instance, files: dict[str, Path]
) -> None:
    with sdk(sqlite_service) as client:
        episode = client.log_episode(
            name="pick_and_place warmup",
            source="sim",
            robot="halcyon-bimanual-01",
            policy_version="pap-v3.2.1",
            env_version="cell-rev4",
            git_sha="abc1234",
            seed=8124,
            fps=30,
            duration_s=2.0,
            video=files["video"],
            sensors=files["sensors"],
            actions=files["actions"],
            metadata={"task": "pick_and_place", "consent": CONSENT, "license": LICENSE},
        )
        assert episode.status == "ready"
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        assert view["verification"]["state"] == "pending"
        assert view["verification"]["sha256_declared_by_client"] is False
        segment_id = view["verification"]["segment_id"]
        record = prove(sqlite_service, instance, segment_id)
        assert record["integrity_status"] == rules.VERIFIED
        assert record["sha256"] == sha(files["video"].read_bytes())
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        assert view["verification"]["state"] == "verified"
        assert view["metadata"]["task"] == "pick_and_place"
        for kind, path in files.items():
            response = read(client, f"/api/episodes/{episode.id}/artifact/{kind}")
            assert response.status_code == 200
            assert response.content == path.read_bytes()
        # A player scrubbing: a byte range through the redirect.
        ranged = read(client, f"/api/episodes/{episode.id}/artifact/video", Range="bytes=100-199")
        assert ranged.status_code == 206
        assert ranged.content == files["video"].read_bytes()[100:200]
        envelope = sqlite_service.s3.get_object(
            Bucket=sqlite_service.bucket,
            Key=f"robotics/envelopes/sessions/{view['verification']['media_session_id']}.json",
        )["Body"].read()
        assert b"lic_01J8Z3Y4X5W6V7T8S9R0Q1P2N3" in envelope
        assert b"pap-v3.2.1" in envelope


def test_explicit_flow_uploading_only_the_video_of_three_slots(
    sqlite_service: Service, instance, files: dict[str, Path]
) -> None:
    with sdk(sqlite_service) as client:
        episode = client.start_episode(name="explicit", policy_version="v1", fps=30)
        assert set(episode.upload_urls) == {"video", "sensors", "actions"}
        assert episode.storage == "r2"
        episode.upload("video", files["video"])
        episode.finalize(status="ready", duration_s=2.0)
        assert episode.status == "ready"
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        assert view["verification"]["state"] == "pending"
        # Discovery is the existing path: the intake sensor finds the handed-off episode.
        tick = capture_intake_sensor(
            build_sensor_context(
                instance=instance,
                resources=resources_for(sqlite_service.bucket),
            )
        )
        verification = view["verification"]
        segment_id = verification["segment_id"]
        requested = {r.partition_key for r in tick.run_requests}
        # The segment runs alone or inside a batch's partition range.
        ranges = [
            (r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG])
            for r in tick.run_requests
            if RANGE_START_TAG in r.tags
        ]
        assert verification["media_session_id"] in requested
        assert segment_id in requested or any(a <= segment_id <= b for a, b in ranges)
        record = prove(sqlite_service, instance, view["verification"]["segment_id"])
        assert record["integrity_status"] == rules.VERIFIED
        assert read(client, f"/api/episodes/{episode.id}/artifact/video").content == (
            files["video"].read_bytes()
        )
        with pytest.raises(NotFoundError):  # the SDK's "no artifact" signal
            client._http.request("GET", f"/api/episodes/{episode.id}/artifact/sensors")


def test_context_manager_flow_and_its_failure_path(
    sqlite_service: Service, instance, files: dict[str, Path]
) -> None:
    with sdk(sqlite_service) as client:
        with client.start_episode(name="ctx", artifacts=["video"]) as episode:
            episode.upload("video", files["video"])
        assert episode.status == "ready"
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        record = prove(sqlite_service, instance, view["verification"]["segment_id"])
        assert record["integrity_status"] == rules.VERIFIED
        assert (
            client._http.request("GET", f"/api/episodes/{episode.id}")["verification"]["state"]
            == "verified"
        )

        with pytest.raises(RuntimeError), client.start_episode(name="boom") as failed:
            raise RuntimeError("gripper watchdog")
        view = client._http.request("GET", f"/api/episodes/{failed.id}")
        assert view["status"] == "failed"
        assert view["metadata"]["failure_reason"] == "RuntimeError: gripper watchdog"
        assert view["verification"]["state"] == "not_applicable"


def test_truncated_upload_is_caught(
    sqlite_service: Service, instance, files: dict[str, Path]
) -> None:
    data = files["video"].read_bytes()
    with sdk(sqlite_service) as client:
        # At finalize: the client uploaded fewer bytes than it reports.
        episode = client.start_episode(name="short", artifacts=["video"])
        put = httpx.put(
            episode.upload_urls["video"].url,
            content=data[: len(data) // 2],
            headers={"Content-Type": "video/mp4"},
        )
        assert put.status_code == 200
        episode.finalize(status="ready", bytes_total=len(data))  # no exception: 200
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        assert view["verification"]["state"] == "failed"
        failed = [c for c in view["verification"]["checks"] if not c["passed"]]
        assert failed[0]["name"] == "bytes_total_matches"
        assert str(len(data) // 2) in failed[0]["reason"]
        assert view["verification"]["segment_id"] is None  # never handed to the graph

        # After finalize: the stored object is cut short; the full-byte proof catches it.
        episode = client.start_episode(name="cut later", artifacts=["video"])
        episode.upload("video", files["video"])
        episode.finalize(status="ready")
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        key = view["verification"]["segment_id"]
        raw_key = next(
            o["Key"]
            for o in sqlite_service.s3.list_objects_v2(
                Bucket=sqlite_service.bucket,
                Prefix="robotics/raw/",
            )["Contents"]
            if key in o["Key"]
        )
        sqlite_service.s3.put_object(
            Bucket=sqlite_service.bucket, Key=raw_key, Body=data[:-500], ContentType="video/mp4"
        )
        result = run_assets(instance, sqlite_service.bucket, PROOF_RUN, key)
        assert not result.success
        view = client._http.request("GET", f"/api/episodes/{episode.id}")
        assert view["verification"]["state"] == "failed"
        assert any(c["name"] == "size_matches_envelope" for c in view["verification"]["checks"])


def test_our_parquet_trajectory_uploaded_as_sensors_feeds_the_sensors_block(
    sqlite_service: Service, instance, files: dict[str, Path], tmp_path: Path
) -> None:
    trajectory = tmp_path / "trajectory.parquet"
    write_parquet(synthesize_trajectory(TrajectorySpec(seconds=2.0, hz=100.0)), trajectory)
    with sdk(sqlite_service) as client:
        episode = client.start_episode(name="with trajectory", artifacts=["video", "sensors"])
        episode.upload("video", files["video"])
        episode.upload("sensors", trajectory)
        episode.finalize(status="ready", duration_s=2.0)
        segment_id = client._http.request("GET", f"/api/episodes/{episode.id}")["verification"][
            "segment_id"
        ]
        envelope = json.loads(
            sqlite_service.s3.get_object(
                Bucket=sqlite_service.bucket, Key=layout.segment_envelope_key(segment_id)
            )["Body"].read()
        )
        assert envelope["sensors"]["format"] == "parquet" and envelope["sensors"]["hz"] == 100.0
        assert envelope["objects"] == []
        record = prove(sqlite_service, instance, segment_id)
        assert record["integrity_status"] == rules.VERIFIED
        # An npz (not our schema) stays a declared object with role "sensors".
        other = client.start_episode(name="npz sensors", artifacts=["video", "sensors"])
        other.upload("video", files["video"])
        other.upload("sensors", files["sensors"])
        other.finalize(status="ready")
        other_segment = client._http.request("GET", f"/api/episodes/{other.id}")["verification"][
            "segment_id"
        ]
        other_envelope = json.loads(
            sqlite_service.s3.get_object(
                Bucket=sqlite_service.bucket, Key=layout.segment_envelope_key(other_segment)
            )["Body"].read()
        )
        assert "sensors" not in other_envelope
        assert [o["role"] for o in other_envelope["objects"]] == ["sensors"]
