"""Teleop sessions over the database: create a session, mint role tokens, apply webhooks,
run the hand-off. Plain functions over a SQLAlchemy Session; the HTTP layer stays thin.

Every state change appends to the session's audit log in the same transaction. The lifecycle
is stored as JSON with a version column: each webhook applies its event and writes back with a
compare-and-set, so concurrent or repeated deliveries cannot both claim the hand-off.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from robotrace_assets.ids import check_id, new_id
from robotrace_assets.objectstore.client import S3Client
from robotrace_assets.teleop import audit, lifecycle
from robotrace_assets.teleop.briefs import TaskBrief
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.lifecycle import RoomState, SessionRoom
from robotrace_assets.teleop.models import TeleopSession, TeleopWebhookEvent
from robotrace_assets.teleop.planner import (
    HandOffError,
    SessionFacts,
    egress_prefix,
    hand_off_recordings,
)
from robotrace_assets.teleop.tokens import MintedToken, Role, mint_token, participant_identity
from robotrace_assets.teleop.tokens import role_of as identity_role
from robotrace_assets.teleop.webhooks import VerifiedEvent

log = logging.getLogger("robotrace_assets.teleop")
_rng = random.SystemRandom()
DEFAULT_DEVICE = {"model": "teleop_cell", "has_lidar": False}
OPEN, LIVE, CLOSED, HANDED_OFF, NO_RECORDING = "created", "live", "closed", "handed_off", "empty"


class SessionClosed(RuntimeError):
    """The room has finished: no more tokens are minted for it."""


@dataclass(frozen=True)
class ConsentInput:
    brief_accepted_at: datetime | None
    co_resident_consent: bool = False


@dataclass(frozen=True)
class NewSession:
    task_brief_id: str
    operator_id: str
    tier: int
    device: dict[str, Any] | None = None
    consent: ConsentInput | None = None
    # What the operator cell enforces: privacy blur, room-scale mesh (the envelope's environment)
    environment: dict[str, bool] | None = None


def _consent(
    brief: TaskBrief, given: ConsentInput | None, now: datetime
) -> tuple[dict | None, str]:
    """The consent receipt (or None) and why."""
    if given is None or given.brief_accepted_at is None:
        return None, "the operator did not accept the task brief"
    if given.brief_accepted_at > now:
        return None, "brief_accepted_at is in the future"
    if brief.co_resident_consent_required and not given.co_resident_consent:
        return None, "the brief requires co-resident consent and none was given"
    receipt = {
        "receipt_id": new_id("consent", now, _rng),
        "brief_accepted_at": given.brief_accepted_at.astimezone(UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "co_resident_required": brief.co_resident_consent_required,
    }
    return receipt, "brief accepted"


def create_session(
    db: Session, config: LiveKitConfig, tenant_id: str, brief: TaskBrief, request: NewSession
) -> tuple[TeleopSession, MintedToken]:
    """Record a session for an accepted (or not) brief and mint the operator's token."""
    check_id("op", request.operator_id)
    now = datetime.now(UTC)
    session_id = new_id("sess", now, _rng)
    consent, why = _consent(brief, request.consent, now)
    row = TeleopSession(
        id=session_id,
        tenant_id=tenant_id,
        media_session_id=new_id("msess", now, _rng),
        room_name=session_id,
        operator_id=request.operator_id,
        task_brief_id=brief.task_brief_id,
        tier=request.tier,
        device={**DEFAULT_DEVICE, **(request.device or {})},
        task=brief.task(),
        environment=dict(request.environment or {}),
        consent=consent,
        license=brief.license(),
        safety_rules_version=brief.safety_rules_version,
        status=OPEN,
        lifecycle=RoomState().to_json(),
        version=0,
        segment_ids=[],
        created_at=now,
    )
    db.add(row)
    db.flush()
    audit.append(
        db,
        session_id,
        "session_created",
        identity=participant_identity(Role.OPERATOR, request.operator_id),
        role=Role.OPERATOR.value,
        task_brief_id=brief.task_brief_id,
        tier=request.tier,
        license_scope_id=brief.license_scope_id,
        consent_receipt_id=consent["receipt_id"] if consent else None,
        consent=why,
    )
    token = mint_for(db, config, row, Role.OPERATOR, request.operator_id)
    return row, token


def mint_for(
    db: Session, config: LiveKitConfig, row: TeleopSession, role: Role, subject: str
) -> MintedToken:
    """A token for one participant of the session's room, written to its audit log."""
    if row.status in (CLOSED, HANDED_OFF, NO_RECORDING):
        raise SessionClosed(f"session {row.id} is {row.status}: its room has finished")
    token = mint_token(config, row.room_name, role, subject)
    audit.append(
        db,
        row.id,
        "token_minted",
        identity=token.identity,
        role=role.value,
        **token.audit_details(),
    )
    return token


def facts_of(row: TeleopSession, state: RoomState) -> SessionFacts:
    return SessionFacts(
        session_id=row.id,
        tenant_id=row.tenant_id,
        media_session_id=row.media_session_id,
        room_name=row.room_name,
        room_sid=state.room_sid,
        operator_id=row.operator_id,
        task_brief_id=row.task_brief_id,
        tier=row.tier,
        device=row.device,
        task=row.task,
        environment=row.environment or {},
        consent=row.consent,
        license=row.license,
        safety_rules_version=row.safety_rules_version,
        created_at=row.created_at,
    )


def session_room(row: TeleopSession) -> SessionRoom:
    return SessionRoom(
        room_name=row.room_name,
        operator_identity=participant_identity(Role.OPERATOR, row.operator_id),
        raw_prefix=egress_prefix(row.tenant_id, row.media_session_id),
    )


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # applied | replayed | unknown_room
    session_id: str | None = None
    claimed: bool = False  # this delivery claimed the hand-off: run it once committed
    operator_joined: bool = False  # start the operator's egress (when enabled)


def _remember(db: Session, verified: VerifiedEvent) -> bool:
    """Record the event id; False when it was seen before (a replay)."""
    try:
        with db.begin_nested():
            db.add(
                TeleopWebhookEvent(
                    event_id=verified.event_id,
                    kind=verified.kind,
                    room_name=verified.room_name[:200],
                    created_at=verified.created_at,
                )
            )
            db.flush()
    except IntegrityError:
        return False
    return True


def prune_events(db: Session, config: LiveKitConfig, now: datetime | None = None) -> int:
    """Forget event ids older than twice the window: such events are refused as stale anyway."""
    cutoff = (now or datetime.now(UTC)) - 2 * config.webhook_tolerance
    result = db.execute(delete(TeleopWebhookEvent).where(TeleopWebhookEvent.created_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _status(state: RoomState) -> str:
    if state.hand_off == lifecycle.DONE:
        return HANDED_OFF
    if state.hand_off == lifecycle.NO_RECORDING:
        return NO_RECORDING
    if state.room_finished or state.hand_off == lifecycle.CLAIMED:
        return CLOSED
    return LIVE if state.room_started else OPEN


def _audit_event(db: Session, row: TeleopSession, verified: VerifiedEvent) -> None:
    event = verified.event
    base = {"event_id": verified.event_id, "at": verified.created_at}
    if verified.kind in lifecycle.PARTICIPANT_EVENTS:
        identity = event.participant.identity
        role = identity_role(identity)
        audit.append(
            db,
            row.id,
            verified.kind,
            identity=identity[:120],
            role=role.value if role else "unknown",
            hidden=bool(event.participant.permission.hidden),
            participant_sid=event.participant.sid,
            **base,
        )
    elif verified.kind in lifecycle.EGRESS_EVENTS:
        info = event.egress_info
        identity = info.participant.identity if info.HasField("participant") else None
        audit.append(db, row.id, verified.kind, identity=identity, egress_id=info.egress_id, **base)
    else:
        audit.append(db, row.id, verified.kind, room_sid=event.room.sid or None, **base)


def _audit_transition(db: Session, row: TeleopSession, old: RoomState, new: RoomState) -> None:
    for egress_id, recording in new.recordings.items():
        before = old.recordings.get(egress_id)
        if recording.ended and not (before and before.ended) and recording.refused:
            audit.append(
                db,
                row.id,
                "recording_refused",
                identity=recording.identity or None,
                egress_id=egress_id,
                reason=recording.refused,
            )
    for egress_id in new.late_egresses[len(old.late_egresses) :]:
        audit.append(db, row.id, "late_recording", egress_id=egress_id, reason="after hand-off")


def _write_state(db: Session, row: TeleopSession, state: RoomState, **values: Any) -> bool:
    result = db.execute(
        update(TeleopSession)
        .where(TeleopSession.id == row.id, TeleopSession.version == row.version)
        .values(lifecycle=state.to_json(), version=row.version + 1, status=_status(state), **values)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def _load(db: Session, session_id: str) -> TeleopSession:
    query = select(TeleopSession).where(TeleopSession.id == session_id)
    return db.execute(query.execution_options(populate_existing=True)).scalar_one()


def apply_webhook(db: Session, verified: VerifiedEvent) -> WebhookOutcome:
    """Apply a verified event to its session (by room name), exactly once per event id."""
    row = db.scalars(
        select(TeleopSession).where(TeleopSession.room_name == verified.room_name)
    ).first()
    if not _remember(db, verified):
        log.warning("webhook %s (%s) refused: replayed", verified.event_id, verified.kind)
        if row is not None:
            audit.append(db, row.id, "webhook_replayed", event_id=verified.event_id)
        return WebhookOutcome("replayed", row.id if row else None)
    if row is None:
        log.info("webhook %s (%s) for an unknown room ignored", verified.event_id, verified.kind)
        return WebhookOutcome("unknown_room")
    _audit_event(db, row, verified)
    joined = (
        verified.kind == "participant_joined"
        and verified.event.participant.identity == session_room(row).operator_identity
    )
    for _attempt in range(8):
        row = _load(db, row.id)
        old = RoomState.from_json(row.lifecycle)
        new = lifecycle.apply_event(old, verified.event, session_room(row))
        claimed = lifecycle.claim_hand_off(new)
        final = claimed or lifecycle.settle_without_recording(new) or new
        if final == old and _status(final) == row.status:
            return WebhookOutcome("applied", row.id, operator_joined=joined)
        if _write_state(db, row, final):
            _audit_transition(db, row, old, final)
            if final.hand_off == lifecycle.NO_RECORDING and old.hand_off != final.hand_off:
                audit.append(db, row.id, "no_recording", reason="no usable operator recording")
            return WebhookOutcome(
                "applied", row.id, claimed=claimed is not None, operator_joined=joined
            )
    raise RuntimeError(f"session {row.id}: lifecycle kept changing under concurrent webhooks")


# A hand-off of a two-hour session moves tens of GB; a claim older than this lost its worker.
STALE_CLAIM_S = 6 * 3600


def claim_retry(db: Session, session_id: str, stale_after_s: float = STALE_CLAIM_S) -> bool:
    """Claim the hand-off of a closed session whose earlier hand-off failed, never ran, or was
    claimed by a worker that died (claimed more than `stale_after_s` ago)."""
    for _attempt in range(8):
        row = _load(db, session_id)
        state = RoomState.from_json(row.lifecycle)
        claimed = lifecycle.claim_hand_off(state) or lifecycle.take_over_stale_claim(
            state, stale_after_s, time.time()
        )
        if claimed is None:
            return False
        if _write_state(db, row, claimed):
            audit.append(db, session_id, "hand_off_retried")
            return True
    return False


def _finish(factory: sessionmaker[Session], session_id: str, done: bool, **details: Any) -> None:
    """Record the outcome of a claimed hand-off: done, or released so a retry can claim it."""
    with factory.begin() as db:
        for _attempt in range(8):
            row = _load(db, session_id)
            state = RoomState.from_json(row.lifecycle)
            target = lifecycle.DONE if done else lifecycle.NONE
            values: dict[str, Any] = {}
            if done:
                values = {"segment_ids": details["segment_ids"], "handed_off_at": datetime.now(UTC)}
            if _write_state(db, row, _replace_hand_off(state, target), **values):
                audit.append(db, session_id, "handed_off" if done else "hand_off_failed", **details)
                return


def _replace_hand_off(state: RoomState, value: str) -> RoomState:
    return replace(state, hand_off=value)


def run_hand_off(
    factory: sessionmaker[Session],
    s3: S3Client,
    bucket: str,
    config: LiveKitConfig,
    session_id: str,
) -> list[str] | None:
    """Run a claimed hand-off (after the claim is committed); the segment ids, or None."""
    with factory() as db:
        row = _load(db, session_id)
        state = RoomState.from_json(row.lifecycle)
        if state.hand_off != lifecycle.CLAIMED:
            return None
        facts, recordings = facts_of(row, state), state.usable_recordings()
    try:
        segment_ids = hand_off_recordings(s3, bucket, facts, recordings, config.segment_max_s)
    except Exception as error:  # any failure releases the claim; the reason is kept
        reason = str(error)[:500] if isinstance(error, HandOffError) else type(error).__name__
        if not isinstance(error, HandOffError):
            reason = f"{reason}: {str(error)[:300]}"
        log.error("session %s: hand-off failed: %s", session_id, type(error).__name__)
        _finish(factory, session_id, False, reason=reason)
        publish_committed(factory, s3, bucket, session_id)
        return None
    _finish(
        factory,
        session_id,
        True,
        segment_ids=segment_ids,
        media_session_id=facts.media_session_id,
        egress_ids=[r.egress_id for r in recordings],
    )
    publish_committed(factory, s3, bucket, session_id)
    return segment_ids


def publish_committed(
    factory: sessionmaker[Session], s3: S3Client, bucket: str, session_id: str
) -> None:
    """The session and its audit log to the catalog, from what is committed."""
    with factory() as db:
        audit.publish(db, s3, bucket, session_id)


def request_operator_egress(
    factory: sessionmaker[Session],
    s3: S3Client,
    bucket: str,
    config: LiveKitConfig,
    session_id: str,
) -> str | None:
    """Ask LiveKit Egress to record the operator into the session's raw prefix; audited either
    way (the request carries bucket credentials, so only its outcome is recorded)."""
    from robotrace_assets.teleop.egress import (
        EgressStorage,
        operator_egress_request,
        start_operator_egress,
    )

    with factory() as db:
        row = _load(db, session_id)
        request = operator_egress_request(
            row.room_name,
            session_room(row).operator_identity,
            row.tenant_id,
            row.media_session_id,
            EgressStorage.from_env(),
        )
    egress_id: str | None = None
    try:
        egress_id = start_operator_egress(config, request)
        details: dict[str, Any] = {"egress_id": egress_id}
        kind = "egress_requested"
    except Exception as error:  # LiveKit unreachable or refusing: audited, never fatal
        log.error("session %s: egress request failed: %s", session_id, type(error).__name__)
        details, kind = {"error": type(error).__name__}, "egress_request_failed"
    with factory.begin() as db:
        audit.append(db, session_id, kind, identity=request.identity, role="operator", **details)
    publish_committed(factory, s3, bucket, session_id)
    return egress_id
