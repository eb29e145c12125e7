"""The sessions API end to end: real FastAPI app and SQLite database, real SeaweedFS, real
ffmpeg and Dagster. LiveKit cannot run here, so its side is played with its own library:
tokens are checked with livekit-api's TokenVerifier, webhooks are signed as its server signs
them, and the MP4 is written where Egress would write it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import materialize
from fastapi.testclient import TestClient

from robotrace_assets import catalog
from robotrace_assets.api import admin
from robotrace_assets.api.app import create_app
from robotrace_assets.api.config import ApiConfig
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.ids import id_day
from robotrace_assets.ingest import keys
from robotrace_assets.media.ffmpeg import run_ffmpeg
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.sets import review_sets
from robotrace_assets.review.shards import read_days
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sensorlog import write_parquet
from robotrace_assets.settings import Settings
from robotrace_assets.teleop import audit
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.planner import TELEMETRY_NAME, egress_prefix
from robotrace_assets_tests.helpers import failure_messages, run_assets, store_for
from robotrace_assets_tests.teleop.livekit_peer import (
    KEY,
    SECRET,
    egress_info,
    event,
    grants,
    participant,
    room,
    sign,
)

BRIEF = "tb_01KT9WNH80TB0000000000000A"  # the shipped example brief (no co-resident consent)
CO_RESIDENT_BRIEF = "tb_01KT9WNH80TB0000000000000B"
OPERATOR = "op_01KT9WNH80AAAAAAAAAAAAAAAB"
FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]
SECONDS = 10.0


@pytest.fixture
def service(bucket: str, tmp_path: Path):
    config = ApiConfig(
        database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", settings=Settings.from_env()
    )
    app = create_app(config)
    app.state.livekit = LiveKitConfig(
        url="wss://lk.example.test",
        api_key=KEY,
        api_secret=SECRET,
        segment_max_s=4.0,
        allow_short_segments=True,
    )
    with app.state.sessionmaker() as db, db.begin():
        tenant = admin.create_tenant(db, "cell-1").id
        other = admin.create_tenant(db, "cell-2").id
        robotics = admin.create_key(db, tenant, (keys.SCOPE_ROBOTICS,))[1]
        foreign = admin.create_key(db, other, (keys.SCOPE_ROBOTICS,))[1]
        ingest_only = admin.create_key(db, tenant, (keys.SCOPE_INGEST,))[1]
    with TestClient(app) as client:
        yield (
            app,
            client,
            tenant,
            {"ok": robotrace_headers(robotics)}
            | {
                "foreign": robotrace_headers(foreign),
                "ingest": robotrace_headers(ingest_only),
            },
        )


def robotrace_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_event(client: TestClient, body: str, auth: str | None = None):
    headers = {"Content-Type": "application/webhook+json"}
    if auth is not None:
        headers["Authorization"] = auth
    return client.post("/v1/robotics/livekit/webhook", content=body, headers=headers)


def test_create_session_tokens_and_auth(service) -> None:
    _app, client, _tenant, keys_ = service
    body = {"task_brief_id": BRIEF, "operator_id": OPERATOR, "tier": 4}
    assert client.post("/v1/robotics/sessions", json=body).status_code == 401
    assert (
        client.post("/v1/robotics/sessions", json=body, headers=keys_["ingest"]).status_code == 403
    )
    unknown = {**body, "task_brief_id": "tb_01KT9WNH80TB0000000000000Z"}
    response = client.post("/v1/robotics/sessions", json=unknown, headers=keys_["ok"])
    assert response.status_code == 404 and "error" in response.json()
    for bad in ({**body, "tier": 11}, {**body, "operator_id": "op_../x"}, {**body, "x": 1}):
        assert (
            client.post("/v1/robotics/sessions", json=bad, headers=keys_["ok"]).status_code == 400
        )

    created = client.post("/v1/robotics/sessions", json=body, headers=keys_["ok"])
    assert created.status_code == 201, created.text
    out = created.json()
    assert set(out) == {"session_id", "room_url", "token"}
    assert out["room_url"] == "wss://lk.example.test"
    identity, video = grants(out["token"])
    assert identity == f"operator:{OPERATOR}" and video.room == out["session_id"]

    sid = out["session_id"]
    observer = client.post(
        f"/v1/robotics/sessions/{sid}/observers", json={"reviewer_id": "rev-1"}, headers=keys_["ok"]
    )
    assert observer.status_code == 201
    _, seen = grants(observer.json()["token"])
    assert seen.hidden and not seen.can_publish and not seen.can_publish_data
    assert seen.room == sid
    coach = client.post(
        f"/v1/robotics/sessions/{sid}/coaches", json={"coach_id": "coach-1"}, headers=keys_["ok"]
    )
    assert grants(coach.json()["token"])[1].can_publish_sources == ["microphone"]
    # another tenant's session is indistinguishable from an unknown one
    for path in (f"/v1/robotics/sessions/{sid}", "/v1/robotics/sessions/sess_nope"):
        assert client.get(path, headers=keys_["foreign"]).status_code == 404
    assert (
        client.post(
            f"/v1/robotics/sessions/{sid}/observers",
            json={"reviewer_id": "x"},
            headers=keys_["foreign"],
        ).status_code
        == 404
    )
    session = client.get(f"/v1/robotics/sessions/{sid}", headers=keys_["ok"]).json()
    assert session["consent"] is None  # no brief acceptance sent: recorded, never deliverable
    kinds = [entry["kind"] for entry in session["audit"]]
    assert kinds == ["session_created", "token_minted", "token_minted", "token_minted"]
    assert all(out["token"] not in str(entry) for entry in session["audit"])

    co_resident = {
        **body,
        "task_brief_id": CO_RESIDENT_BRIEF,
        "consent": {"brief_accepted_at": datetime.now(UTC).isoformat()},
    }
    made = client.post("/v1/robotics/sessions", json=co_resident, headers=keys_["ok"]).json()
    got = client.get(f"/v1/robotics/sessions/{made['session_id']}", headers=keys_["ok"]).json()
    assert got["consent"] is None
    assert "co-resident" in got["audit"][0]["details"]["consent"]


def egress_mp4(path: Path) -> Path:
    """An H.264 MP4 like a participant egress writes: keyframe every second."""
    run_ffmpeg(
        [
            *("-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=30:duration={SECONDS}"),
            *("-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-pix_fmt", "yuv420p"),
            *("-c:a", "aac", "-movflags", "+faststart", str(path)),
        ],
        what="egress fixture",
    )
    return path


class LiveKitRoom:
    """Events of one room as LiveKit's server would send them (built with its protocol)."""

    def __init__(self, sid: str, prefix: str, start_ns: int, size: int) -> None:
        self.sid, self.prefix, self.start_ns, self.size = sid, prefix, start_ns, size
        self.room = room(sid, "RM_abc")

    def egress(self, eid: str, who: str, status: str, name: str = "", **kw) -> str:
        end_ns = self.start_ns + int(SECONDS * 1e9)
        info = (
            egress_info(
                self.sid, eid, who, status, self.prefix + name, self.size, self.start_ns, end_ns
            )
            if name
            else egress_info(self.sid, eid, who, status)
        )
        kind = "egress_ended" if status != "EGRESS_ACTIVE" else "egress_started"
        return event(kind, egress_info=info, **kw)

    def operator_ended(self, **kw) -> str:
        return self.egress("EG_op", f"operator:{OPERATOR}", "EGRESS_COMPLETE", "operator.mp4", **kw)

    def until_room_finished(self) -> list[str]:
        """Everything up to room_finished, which comes before the operator's egress ends."""
        op, observer = f"operator:{OPERATOR}", participant("observer:rev-1", True)
        return [
            event("room_started", room=self.room),
            event("participant_joined", room=self.room, participant=participant(op)),
            event("participant_joined", room=self.room, participant=observer),
            self.egress("EG_op", op, "EGRESS_ACTIVE"),
            self.egress("EG_coach", "coach:coach-1", "EGRESS_ACTIVE"),
            self.egress("EG_coach", "coach:coach-1", "EGRESS_COMPLETE", "coach.mp4"),
            event("participant_left", room=self.room, participant=observer),
            event("room_finished", room=self.room),
        ]


def write_egress_outputs(s3, bucket: str, tmp_path: Path, prefix: str) -> tuple[int, int]:
    """Where Egress writes: the operator's MP4 (and a coach's, which must never become capture
    media), plus the data-track telemetry with a jerk spike at 6 s; (start ns, MP4 size)."""
    start_ns = time.time_ns() - int(SECONDS * 1e9)
    video = egress_mp4(tmp_path / "operator.mp4")
    s3.upload_file(str(video), bucket, prefix + "operator.mp4")
    s3.upload_file(str(video), bucket, prefix + "coach.mp4")
    spec = TrajectorySpec(seconds=SECONDS, seed=3, jerk_spikes=(6.0,), start_time_ns=start_ns)
    write_parquet(synthesize_trajectory(spec), tmp_path / "telemetry.parquet")
    s3.upload_file(str(tmp_path / "telemetry.parquet"), bucket, prefix + TELEMETRY_NAME)
    return start_ns, video.stat().st_size


def deliver_lifecycle(client: TestClient, lk: LiveKitRoom, get) -> None:
    """Out of order, hostile and repeated deliveries; the hand-off runs exactly once."""
    for item in lk.until_room_finished():
        response = post_event(client, item, sign(item))
        assert response.status_code == 200, response.text
    assert get()["status"] == "closed"  # the operator's egress has not ended yet
    ended = lk.operator_ended()
    assert post_event(client, ended).status_code == 401  # unsigned
    assert post_event(client, ended.replace("EG_op", "EG_zz"), sign(ended)).status_code == 401
    stale = lk.operator_ended(created_at=int(time.time()) - 3600)
    assert post_event(client, stale, sign(stale)).status_code == 400
    assert post_event(client, ended, sign(ended)).status_code == 200  # the hand-off runs
    assert post_event(client, ended, sign(ended)).status_code == 409  # replayed
    for again in (lk.operator_ended(), event("room_finished", room=lk.room)):
        assert post_event(client, again, sign(again)).status_code == 200  # same facts: no-op


def assert_reviewed(store: ObjectStoreResource, segments: list[str], expected: dict) -> None:
    days = sorted({id_day(s) for s in segments})  # the review sets are stored by capture day
    complete = read_days(store, catalog.REVIEW_COMPLETE, days)
    bank = read_days(store, catalog.REGRESSION_BANK, days)
    assert complete and bank
    assert {r["segment_id"] for r in complete + bank} <= set(segments)
    assert {r["segment_id"] for r in bank} == {segments[1]}  # the spike at 6 s: 2nd segment
    for row in complete + bank:
        for name, value in expected.items():
            assert row[name] == value, name
        assert row["rules_version"] == "v4.2"
        assert list(row["allowed_use"]) == ["robotics_training", "internal_eval"]
        assert row["signal_jerk_peak"] is not None and row["blur_enforced"] is True
    assert all(r["final_status"] == "approved" for r in complete)
    assert all(r["final_status"] == "rejected" and r["reasons"] for r in bank)


@pytest.mark.slow
def test_egress_recording_becomes_reviewed_clips(service, s3, bucket, instance, tmp_path) -> None:
    _app, client, tenant, keys_ = service
    accepted = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    body = {
        "task_brief_id": BRIEF,
        "operator_id": OPERATOR,
        "tier": 4,
        "device": {"model": "ur5e_cell", "has_lidar": False},
        "consent": {"brief_accepted_at": accepted},
        "environment": {"blur_enforced": True},
    }
    sid = client.post("/v1/robotics/sessions", json=body, headers=keys_["ok"]).json()["session_id"]
    client.post(
        f"/v1/robotics/sessions/{sid}/observers", json={"reviewer_id": "rev-1"}, headers=keys_["ok"]
    )

    def get() -> dict:
        return client.get(f"/v1/robotics/sessions/{sid}", headers=keys_["ok"]).json()

    msess = get()["media_session_id"]
    prefix = egress_prefix(tenant, msess)
    start_ns, size = write_egress_outputs(s3, bucket, tmp_path, prefix)
    deliver_lifecycle(client, LiveKitRoom(sid, prefix, start_ns, size), get)

    session = get()
    assert session["status"] == "handed_off", session["audit"][-3:]
    segments = session["segment_ids"]
    assert len(segments) == 3  # 10 s cut at keyframes into <= 4 s pieces
    kinds = [e["kind"] for e in session["audit"]]
    assert kinds.count("handed_off") == 1 and "recording_refused" in kinds
    assert kinds.count("webhook_replayed") == 1
    assert {"participant_joined", "participant_left", "token_minted"} <= set(kinds)
    store = store_for(bucket)
    assert [r["kind"] for r in store.read_record(audit.AUDIT_TABLE, sid) or []] == kinds
    assert (store.read_record(audit.SESSIONS_TABLE, sid) or [{}])[0]["status"] == "handed_off"

    for segment_id in segments:
        result = run_assets(instance, bucket, FULL, segment_id)
        assert result.success, failure_messages(result)
    for day in sorted({id_day(s) for s in segments}):
        assert materialize(
            [review_sets], partition_key=day, instance=instance, resources={"object_store": store}
        ).success
    expected = {
        "operator_id": OPERATOR,
        "task_brief_id": BRIEF,
        "device_model": "ur5e_cell",
        "source": "teleop",
        "session_id": sid,
        "media_session_id": msess,
        "tenant_id": tenant,
        "license_scope_id": session["license"]["scope_id"],
        "consent_receipt_id": session["consent"]["receipt_id"],
        "safety_rules_version": "v4.2",
    }
    assert_reviewed(store, segments, expected)
    # tier and room id do not reach clip rows (session.provenance() omits them); they are in
    # the clip's media session envelope, one lookup away by media_session_id
    provenance = load_session_envelope(store, msess).document["provenance"]
    assert provenance["tier"] == 4 and provenance["room_id"] == "RM_abc"
    assert provenance["egress_ids"] == ["EG_op"]


def record_and_close(client, s3, bucket, tmp_path: Path, sid: str, prefix: str, seconds: float):
    """What LiveKit and Egress do for a short clean session: the MP4 and telemetry land in the
    raw prefix, then the signed lifecycle events arrive."""
    start_ns = time.time_ns() - int(seconds * 1e9)
    video = tmp_path / "short.mp4"
    run_ffmpeg(
        [
            *("-f", "lavfi"),
            *("-i", f"testsrc2=size=320x240:rate=30:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-g", "30", str(video)),
        ],
        what="egress fixture",
    )
    s3.upload_file(str(video), bucket, prefix + "operator.mp4")
    table = synthesize_trajectory(TrajectorySpec(seconds=seconds, seed=5, start_time_ns=start_ns))
    write_parquet(table, tmp_path / "t.parquet")
    s3.upload_file(str(tmp_path / "t.parquet"), bucket, prefix + TELEMETRY_NAME)
    op = f"operator:{OPERATOR}"
    info = egress_info(
        sid,
        "EG_1",
        op,
        "EGRESS_COMPLETE",
        prefix + "operator.mp4",
        video.stat().st_size,
        start_ns,
        start_ns + int(seconds * 1e9),
    )
    for body in (event("egress_ended", egress_info=info), event("room_finished", room=room(sid))):
        assert post_event(client, body, sign(body)).status_code == 200


@pytest.mark.slow
def test_session_without_consent_is_recorded_but_never_approved(
    service, s3, bucket, instance, tmp_path
) -> None:
    _app, client, tenant, keys_ = service
    body = {
        "task_brief_id": BRIEF,
        "operator_id": OPERATOR,
        "tier": 1,
        "environment": {"blur_enforced": True},
    }
    sid = client.post("/v1/robotics/sessions", json=body, headers=keys_["ok"]).json()["session_id"]
    session = client.get(f"/v1/robotics/sessions/{sid}", headers=keys_["ok"]).json()
    assert session["consent"] is None
    record_and_close(
        client, s3, bucket, tmp_path, sid, egress_prefix(tenant, session["media_session_id"]), 3.0
    )
    session = client.get(f"/v1/robotics/sessions/{sid}", headers=keys_["ok"]).json()
    assert session["status"] == "handed_off"
    late = client.post(
        f"/v1/robotics/sessions/{sid}/observers", json={"reviewer_id": "late"}, headers=keys_["ok"]
    )
    assert late.status_code == 409  # no tokens for a finished room
    (segment_id,) = session["segment_ids"]
    result = run_assets(instance, bucket, FULL, segment_id)
    assert result.success, failure_messages(result)
    store = store_for(bucket)
    rows = store.read_record(catalog.CLIP_REVIEWS, segment_id)
    assert rows and all(r["consent_receipt_id"] is None for r in rows)
    assert all(r["final_status"] != "approved" for r in rows)
    assert all(any("consent" in reason for reason in r["reasons"]) for r in rows)
