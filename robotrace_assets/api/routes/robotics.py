"""The teleop sessions API: sessions, role tokens, the session's audit, and the
LiveKit webhook. Thin: the work is in robotrace_assets.teleop.service.

    POST /v1/robotics/sessions                 {task_brief_id, operator_id, tier, device?, consent?}
                                               -> 201 {session_id, room_url, token} (operator)
    POST /v1/robotics/sessions/{id}/observers  {reviewer_id} -> 201 observer token (hidden)
    POST /v1/robotics/sessions/{id}/coaches    {coach_id} -> 201 coach token (microphone)
    GET  /v1/robotics/sessions/{id}            the session object and its audit log
    POST /v1/robotics/sessions/{id}/hand-off   retry a failed hand-off -> 202
    POST /v1/robotics/livekit/webhook          LiveKit webhooks (signed JWT, raw body)

The API routes need a key with the `robotics:write` scope; the webhook is authenticated by
LiveKit's signature instead. Tokens are returned once and never logged or stored.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from robotrace_assets.api.auth import Principal, require
from robotrace_assets.api.db.session import DbSession
from robotrace_assets.api.errors import ApiError
from robotrace_assets.api.routes.common import errors
from robotrace_assets.ids import ULID_PATTERN
from robotrace_assets.ingest.keys import SCOPE_ROBOTICS
from robotrace_assets.teleop import audit, service
from robotrace_assets.teleop.briefs import TaskBriefCatalog, UnknownTaskBrief
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.egress import start_egress_enabled
from robotrace_assets.teleop.models import TeleopSession
from robotrace_assets.teleop.tokens import MintedToken, Role
from robotrace_assets.teleop.webhooks import WebhookRejected, verify_webhook

log = logging.getLogger("robotrace_assets.teleop")
router = APIRouter(tags=["robotics"])

Db = DbSession  # committed before the response leaves; shared with the auth dependency
Robotics = Annotated[Principal, Depends(require(SCOPE_ROBOTICS))]
_SUBJECT = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def livekit(request: Request) -> LiveKitConfig:
    """The LiveKit config (from ROBOTRACE_LIVEKIT_*), read once per app."""
    state = request.app.state
    if getattr(state, "livekit", None) is None:
        state.livekit = LiveKitConfig.from_env()
    return state.livekit


def task_briefs(request: Request) -> TaskBriefCatalog:
    state = request.app.state
    if getattr(state, "task_briefs", None) is None:
        state.task_briefs = TaskBriefCatalog.from_env()
    return state.task_briefs


LiveKit = Annotated[LiveKitConfig, Depends(livekit)]
Briefs = Annotated[TaskBriefCatalog, Depends(task_briefs)]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=120)
    has_lidar: bool = False


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    brief_accepted_at: datetime = Field(description="When the operator accepted the task brief")
    co_resident_consent: bool = Field(
        default=False, description="Everyone else in the capture room consented"
    )


class EnvironmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    blur_enforced: bool | None = Field(default=None, description="The cell blurs faces/screens")
    room_scale_mesh: bool | None = None


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_brief_id: str = Field(pattern=rf"^tb_{ULID_PATTERN}$")
    operator_id: str = Field(pattern=rf"^op_{ULID_PATTERN}$")
    tier: int = Field(ge=0, le=9)
    device: DeviceIn | None = None
    consent: ConsentIn | None = None
    environment: EnvironmentIn | None = None


class SessionOut(BaseModel):
    session_id: str
    room_url: str
    token: str


class ParticipantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer_id: str | None = Field(default=None, pattern=_SUBJECT)
    coach_id: str | None = Field(default=None, pattern=_SUBJECT)


class ParticipantOut(BaseModel):
    session_id: str
    room_url: str
    token: str
    identity: str
    role: str
    expires_at: datetime


def _owned(db: Session, principal: Principal, session_id: str) -> TeleopSession:
    row = db.get(TeleopSession, session_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise ApiError(404, "Session not found.")
    return row


def _publish(request: Request, background: BackgroundTasks, session_id: str) -> None:
    state = request.app.state
    background.add_task(
        service.publish_committed, state.sessionmaker, state.s3, state.bucket, session_id
    )


@router.post(
    "/v1/robotics/sessions",
    status_code=201,
    response_model=SessionOut,
    responses=errors(400, 403, 404, 413),
)
def create_session(
    body: SessionIn,
    principal: Robotics,
    db: Db,
    config: LiveKit,
    briefs: Briefs,
    request: Request,
    background: BackgroundTasks,
) -> SessionOut:
    try:
        brief = briefs.get(body.task_brief_id, principal.tenant_id)
    except UnknownTaskBrief:
        raise ApiError(404, "Task brief not found.") from None
    consent = (
        service.ConsentInput(body.consent.brief_accepted_at, body.consent.co_resident_consent)
        if body.consent
        else None
    )
    new = service.NewSession(
        task_brief_id=body.task_brief_id,
        operator_id=body.operator_id,
        tier=body.tier,
        device=body.device.model_dump() if body.device else None,
        consent=consent,
        environment=body.environment.model_dump(exclude_none=True) if body.environment else None,
    )
    row, token = service.create_session(db, config, principal.tenant_id, brief, new)
    db.commit()
    _publish(request, background, row.id)
    return SessionOut(session_id=row.id, room_url=config.url, token=token.jwt)


def _participant(
    role: Role, subject: str | None, row: TeleopSession, db: Session, config: LiveKitConfig
) -> MintedToken:
    if subject is None:
        field = "reviewer_id" if role is Role.OBSERVER else "coach_id"
        raise ApiError(400, f"Invalid request: {field}: Field required")
    try:
        return service.mint_for(db, config, row, role, subject)
    except service.SessionClosed:
        raise ApiError(409, "Session closed: its room has finished.") from None


def _participant_out(row: TeleopSession, config: LiveKitConfig, token: MintedToken) -> Any:
    return ParticipantOut(
        session_id=row.id,
        room_url=config.url,
        token=token.jwt,
        identity=token.identity,
        role=token.role.value,
        expires_at=token.expires_at,
    )


def _admit(
    role: Role,
    participant_id: str | None,
    session_id: str,
    principal: Principal,
    db: Session,
    config: LiveKitConfig,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    """Mint a room token for a coach or an observer of an owned session, audited and published."""
    row = _owned(db, principal, session_id)
    token = _participant(role, participant_id, row, db, config)
    db.commit()
    _publish(request, background, row.id)
    return _participant_out(row, config, token)


@router.post(
    "/v1/robotics/sessions/{session_id}/observers",
    status_code=201,
    response_model=ParticipantOut,
    responses=errors(400, 403, 404, 409, 413),
)
def add_observer(
    session_id: str,
    body: ParticipantIn,
    principal: Robotics,
    db: Db,
    config: LiveKit,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    return _admit(
        Role.OBSERVER, body.reviewer_id, session_id, principal, db, config, request, background
    )


@router.post(
    "/v1/robotics/sessions/{session_id}/coaches",
    status_code=201,
    response_model=ParticipantOut,
    responses=errors(400, 403, 404, 409, 413),
)
def add_coach(
    session_id: str,
    body: ParticipantIn,
    principal: Robotics,
    db: Db,
    config: LiveKit,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    return _admit(Role.COACH, body.coach_id, session_id, principal, db, config, request, background)


@router.get("/v1/robotics/sessions/{session_id}", responses=errors(403, 404))
def get_session(session_id: str, principal: Robotics, db: Db) -> dict[str, Any]:
    row = _owned(db, principal, session_id)
    return {**audit.session_object(row), "audit": audit.entries(db, row.id)}


@router.post(
    "/v1/robotics/sessions/{session_id}/hand-off",
    status_code=202,
    responses=errors(403, 404, 409),
)
def retry_hand_off(
    session_id: str,
    principal: Robotics,
    db: Db,
    config: LiveKit,
    request: Request,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Retry the hand-off of a closed session whose last attempt failed (see its audit)."""
    row = _owned(db, principal, session_id)
    if not service.claim_retry(db, row.id):
        raise ApiError(409, "Nothing to hand off: the room is open, or already handed off.")
    db.commit()
    state = request.app.state
    background.add_task(
        service.run_hand_off, state.sessionmaker, state.s3, state.bucket, config, row.id
    )
    return {"session_id": row.id, "status": "hand_off_started"}


async def raw_body(request: Request) -> bytes:
    return await request.body()


class WebhookOut(BaseModel):
    status: str = Field(description="applied, or unknown_room for a room that is not ours")
    event_id: str


@router.post(
    "/v1/robotics/livekit/webhook",
    response_model=WebhookOut,
    responses=errors(400, 409, 413),
)
def livekit_webhook(
    body: Annotated[bytes, Depends(raw_body)],
    db: Db,
    config: LiveKit,
    request: Request,
    background: BackgroundTasks,
) -> WebhookOut:
    try:
        verified = verify_webhook(config, body, request.headers.get("authorization"))
    except WebhookRejected as refused:
        # The reason code only: never the body, the token or the claims.
        log.warning("livekit webhook refused: %s", refused.reason)
        status = 401 if refused.reason in ("unsigned", "bad_signature", "tampered") else 400
        raise ApiError(status, f"Webhook refused: {refused.reason}.") from None
    outcome = service.apply_webhook(db, verified)
    service.prune_events(db, config)
    db.commit()
    if outcome.status == "replayed":
        raise ApiError(409, "Webhook refused: replayed.")
    if outcome.session_id:
        state = request.app.state
        if outcome.claimed:
            background.add_task(
                service.run_hand_off,
                state.sessionmaker,
                state.s3,
                state.bucket,
                config,
                outcome.session_id,
            )
        else:
            _publish(request, background, outcome.session_id)
        if outcome.operator_joined and start_egress_enabled():
            background.add_task(
                service.request_operator_egress,
                state.sessionmaker,
                state.s3,
                state.bucket,
                config,
                outcome.session_id,
            )
    return WebhookOut(status=outcome.status, event_id=verified.event_id)
