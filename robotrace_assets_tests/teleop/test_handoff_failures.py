"""The hand-off under stress: concurrent deliveries (SQLite and PostgreSQL) claim it exactly once;
a recording missing from the bucket fails the hand-off with its reason and releases the claim
for a retry; egress requests are built for the operator only and their failure is audited."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from robotrace_assets.api import admin
from robotrace_assets.api.app import create_app
from robotrace_assets.api.config import ApiConfig
from robotrace_assets.api.db.session import make_engine, make_sessionmaker, migrate
from robotrace_assets.ingest import keys
from robotrace_assets.settings import Settings
from robotrace_assets.teleop import service
from robotrace_assets.teleop.briefs import TaskBriefCatalog
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.egress import EgressStorage, operator_egress_request
from robotrace_assets.teleop.planner import egress_prefix
from robotrace_assets.teleop.webhooks import verify_webhook
from robotrace_assets_tests.teleop.livekit_peer import (
    KEY,
    SECRET,
    egress_info,
    event,
    participant,
    room,
    sign,
)

CONFIG = LiveKitConfig(
    url="wss://lk.example.test",
    api_key=KEY,
    api_secret=SECRET,
    segment_max_s=4.0,
    allow_short_segments=True,
)
BRIEF = "tb_01KT9WNH80TB0000000000000A"
OPERATOR = "op_01KT9WNH80AAAAAAAAAAAAAAAB"


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'teleop.sqlite3'}"
        migrate(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
        engine.dispose()
        return
    name = f"teleop_{uuid.uuid4().hex[:12]}"
    admin_conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin_conn.autocommit = True
    with admin_conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    try:
        migrate(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
        engine.dispose()
    finally:
        with admin_conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_conn.close()


def new_session(factory: sessionmaker[Session]) -> tuple[str, str, str]:
    with factory.begin() as db:
        tenant = admin.create_tenant(db, "cell").id
        brief = TaskBriefCatalog.from_env().get(BRIEF, tenant)
        row, _ = service.create_session(
            db, CONFIG, tenant, brief, service.NewSession(BRIEF, OPERATOR, 2)
        )
        return row.id, tenant, row.media_session_id


def closing_events(sid: str, key: str) -> list[str]:
    op = f"operator:{OPERATOR}"
    ended = egress_info(sid, "EG_op", op, "EGRESS_COMPLETE", key, 0, 1, 2)
    bodies = []
    for _ in range(3):  # the same facts, each delivered three times under new event ids
        bodies.append(event("egress_ended", egress_info=ended))
        bodies.append(event("room_finished", room=room(sid)))
    return bodies


def test_concurrent_deliveries_claim_the_hand_off_once(factory) -> None:
    sid, tenant, msess = new_session(factory)
    bodies = closing_events(sid, egress_prefix(tenant, msess) + "operator.mp4")
    outcomes: list[service.WebhookOutcome] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(bodies))

    def deliver(body: str) -> None:
        try:
            verified = verify_webhook(CONFIG, body.encode(), sign(body))
            barrier.wait()
            with factory.begin() as db:
                outcomes.append(service.apply_webhook(db, verified))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(outcomes) == len(bodies)
    assert sum(o.claimed for o in outcomes) == 1
    with factory() as db:
        row = db.get(service.TeleopSession, sid)
        assert row is not None and row.status == "closed"


def test_missing_recording_fails_hand_off_and_a_retry_can_claim_again(factory, s3, bucket) -> None:
    sid, tenant, msess = new_session(factory)
    key = egress_prefix(tenant, msess) + "operator.mp4"
    claimed = []
    for body in closing_events(sid, key)[:2]:
        with factory.begin() as db:
            claimed.append(
                service.apply_webhook(db, verify_webhook(CONFIG, body.encode(), sign(body)))
            )
    assert [o.claimed for o in claimed] == [False, True]
    assert service.run_hand_off(factory, s3, bucket, CONFIG, sid) is None
    with factory() as db:
        row = db.get(service.TeleopSession, sid)
        assert row is not None and row.status == "closed" and row.segment_ids == []
        failed = [e for e in service.audit.entries(db, sid) if e["kind"] == "hand_off_failed"]
    assert len(failed) == 1 and "not in the bucket" in failed[0]["details"]["reason"]
    # a later delivery of the same facts claims again (the claim was released)
    body = event("room_finished", room=room(sid))
    with factory.begin() as db:
        again = service.apply_webhook(db, verify_webhook(CONFIG, body.encode(), sign(body)))
    assert again.claimed
    with factory.begin() as db:
        assert not service.claim_retry(db, sid)  # a fresh claim is not taken over
    with factory.begin() as db:  # a claim whose worker died (here: any age) is taken over
        assert service.claim_retry(db, sid, stale_after_s=0)


def test_egress_request_records_the_operator_only_and_keeps_the_secret_out() -> None:
    storage = EgressStorage(
        endpoint="https://acct.r2.cloudflarestorage.com",
        bucket="captures",
        region="auto",
        access_key="AKID",
        secret="egress-secret-value",
    )
    request = operator_egress_request("sess_X", f"operator:{OPERATOR}", "ten_A", "msess_B", storage)
    assert request.identity == f"operator:{OPERATOR}" and request.room_name == "sess_X"
    (output,) = request.file_outputs
    assert output.filepath.startswith(egress_prefix("ten_A", "msess_B"))
    assert output.s3.force_path_style and output.s3.bucket == "captures"
    assert "egress-secret-value" not in repr(storage)


def test_failed_egress_request_is_audited_without_secrets(
    bucket, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("ROBOTRACE_LIVEKIT_START_EGRESS", "1")
    app = create_app(
        ApiConfig(
            database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}", settings=Settings.from_env()
        )
    )
    # a real, closed loopback port: LiveKit is unreachable, as when its server is down
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.state.livekit = LiveKitConfig(url=f"ws://127.0.0.1:{port}", api_key=KEY, api_secret=SECRET)
    with app.state.sessionmaker.begin() as db:
        tenant = admin.create_tenant(db, "cell").id
        token = admin.create_key(db, tenant, (keys.SCOPE_ROBOTICS,))[1]
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        sid = client.post(
            "/v1/robotics/sessions",
            json={"task_brief_id": BRIEF, "operator_id": OPERATOR, "tier": 1},
            headers=headers,
        ).json()["session_id"]
        body = event(
            "participant_joined", room=room(sid), participant=participant(f"operator:{OPERATOR}")
        )
        response = client.post(
            "/v1/robotics/livekit/webhook", content=body, headers={"Authorization": sign(body)}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 30
        while True:
            log = client.get(f"/v1/robotics/sessions/{sid}", headers=headers).json()["audit"]
            if (
                any(e["kind"] == "egress_request_failed" for e in log)
                or time.monotonic() > deadline
            ):
                break
            time.sleep(0.2)
    assert [e["kind"] for e in log][-1] == "egress_request_failed"
    secret = Settings.from_env().secret_access_key
    assert secret not in str(log) and secret not in caplog.text
    assert SECRET not in caplog.text
