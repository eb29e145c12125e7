"""The room lifecycle as a pure state machine over verified LiveKit webhook events.

Events may arrive twice, late or out of order (LiveKit delivers each webhook independently), so
the state is a set of facts that only grow: the room started, the room finished, each egress's
latest known status (an ended egress never goes back to active). The session is ready for its
hand-off once the room has finished and every egress we know of has ended with at least one
usable operator recording; `claim_hand_off` then moves it to "claimed" exactly once, whatever
order the facts arrived in. The caller persists the state with a compare-and-set, so two
concurrent deliveries cannot both claim.

Only a participant egress of the session's operator identity, writing inside the session's raw
prefix, becomes capture media: a recording of a coach or an observer is kept out of training
data, and noted in the audit log.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace

from livekit.protocol import egress as egress_pb
from livekit.protocol.webhook import WebhookEvent

from robotrace_assets import layout

EGRESS_EVENTS = {"egress_started", "egress_updated", "egress_ended"}
PARTICIPANT_EVENTS = {"participant_joined", "participant_left", "participant_connection_aborted"}

# Egress status names, as LiveKit spells them.
_ENDED = {"EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED"}
# Statuses whose file is a usable recording (a limit-reached egress still wrote its file).
_RECORDED = {"EGRESS_COMPLETE", "EGRESS_LIMIT_REACHED"}

NONE, CLAIMED, DONE, NO_RECORDING = "none", "claimed", "done", "no_recording"


@dataclass(frozen=True)
class Recording:
    """One egress of the room, as far as we know it."""

    egress_id: str
    status: str  # LiveKit status name
    identity: str  # the participant the egress records ("" for other egress types)
    file_key: str | None = None
    size_bytes: int = 0
    started_at_ns: int = 0
    ended_at_ns: int = 0
    usable: bool = False  # an operator recording inside the session's raw prefix
    refused: str | None = None  # why a finished recording does not become capture media

    @property
    def ended(self) -> bool:
        return self.status in _ENDED


@dataclass(frozen=True)
class RoomState:
    room_started: bool = False
    room_finished: bool = False
    room_sid: str = ""
    recordings: dict[str, Recording] = field(default_factory=dict)
    hand_off: str = NONE
    late_egresses: tuple[str, ...] = ()  # recordings that ended after the hand-off
    # When the hand-off was claimed (epoch s): a claim whose worker died can be taken over.
    claimed_at: float = field(default=0.0, compare=False)

    def to_json(self) -> str:
        doc = {
            "room_started": self.room_started,
            "room_finished": self.room_finished,
            "room_sid": self.room_sid,
            "recordings": {k: vars(v) for k, v in sorted(self.recordings.items())},
            "hand_off": self.hand_off,
            "late_egresses": list(self.late_egresses),
            "claimed_at": self.claimed_at,
        }
        return json.dumps(doc, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RoomState:
        if not text:
            return cls()
        doc = json.loads(text)
        return cls(
            room_started=doc["room_started"],
            room_finished=doc["room_finished"],
            room_sid=doc.get("room_sid", ""),
            recordings={k: Recording(**v) for k, v in doc["recordings"].items()},
            hand_off=doc["hand_off"],
            late_egresses=tuple(doc.get("late_egresses", ())),
            claimed_at=float(doc.get("claimed_at", 0.0)),
        )

    def usable_recordings(self) -> list[Recording]:
        return sorted(
            (r for r in self.recordings.values() if r.usable),
            key=lambda r: (r.started_at_ns, r.egress_id),
        )

    @property
    def ready(self) -> bool:
        """Room closed, every known egress ended, and at least one operator recording."""
        return (
            self.hand_off == NONE
            and self.room_finished
            and bool(self.recordings)
            and all(r.ended for r in self.recordings.values())
            and bool(self.usable_recordings())
        )


@dataclass(frozen=True)
class SessionRoom:
    """What the state machine needs to know about the session the room belongs to."""

    room_name: str
    operator_identity: str
    raw_prefix: str  # robotics/raw/<tenant>/<media_session>/egress/


def _recording(info: egress_pb.EgressInfo, session: SessionRoom) -> Recording:
    status = egress_pb.EgressStatus.Name(info.status)
    identity = info.participant.identity if info.HasField("participant") else ""
    files = list(info.file_results) or ([info.file] if info.HasField("file") else [])
    file = files[0] if files else None
    recording = Recording(
        egress_id=info.egress_id,
        status=status,
        identity=identity,
        file_key=file.filename if file and file.filename else None,
        size_bytes=int(file.size) if file else 0,
        started_at_ns=int(file.started_at or info.started_at) if file else int(info.started_at),
        ended_at_ns=int(file.ended_at or info.ended_at) if file else int(info.ended_at),
    )
    if status not in _ENDED:
        return recording
    refused = None
    if status not in _RECORDED:
        refused = f"egress ended {status}: {info.error[:200]}" if info.error else status
    elif identity != session.operator_identity:
        refused = f"records {identity or 'a non-participant egress'}, not the operator"
    elif recording.file_key is None:
        refused = "egress reported no file"
    else:
        try:
            layout.check_key_within(recording.file_key, session.raw_prefix)
        except layout.UnsafeKey:
            refused = "file is outside the session's raw prefix"
    return replace(recording, usable=refused is None, refused=refused)


def apply_event(state: RoomState, event: WebhookEvent, session: SessionRoom) -> RoomState:
    """The state after one verified event of this session's room (any order, any repeat)."""
    kind = event.event
    if kind == "room_started":
        return replace(state, room_started=True, room_sid=state.room_sid or event.room.sid)
    if kind == "room_finished":
        return replace(
            state,
            room_started=True,
            room_finished=True,
            room_sid=state.room_sid or event.room.sid,
        )
    if kind in EGRESS_EVENTS:
        info = event.egress_info
        if info.room_name != session.room_name or not info.egress_id:
            return state
        known = state.recordings.get(info.egress_id)
        if known is not None and known.ended:
            return state  # an ended egress is final; a late "updated" cannot reopen it
        recording = _recording(info, session)
        recordings = {**state.recordings, info.egress_id: recording}
        late = state.late_egresses
        if recording.ended and state.hand_off in (CLAIMED, DONE) and recording.usable:
            late = (*late, info.egress_id)
        return replace(state, recordings=recordings, late_egresses=late)
    return state  # participant and track events change no lifecycle fact


def claim_hand_off(state: RoomState, now: float | None = None) -> RoomState | None:
    """The claimed state when the session is ready now; None when it is not (or already was)."""
    if state.ready:
        return replace(state, hand_off=CLAIMED, claimed_at=time.time() if now is None else now)
    return None


def take_over_stale_claim(state: RoomState, stale_after_s: float, now: float) -> RoomState | None:
    """A claim older than `stale_after_s` (its worker died mid hand-off: a restart, a crash)
    claimed again; None for a fresh claim or no claim. The hand-off is idempotent, so a worker
    that was only slow and finishes too writes the same keys and bytes."""
    if state.hand_off == CLAIMED and now - state.claimed_at > stale_after_s:
        return replace(state, claimed_at=now)
    return None


def settle_without_recording(state: RoomState) -> RoomState | None:
    """A closed room whose egresses all ended without an operator recording: nothing to hand
    off. The session stays auditable; no media session is written."""
    if (
        state.hand_off == NONE
        and state.room_finished
        and state.recordings
        and all(r.ended for r in state.recordings.values())
        and not state.usable_recordings()
    ):
        return replace(state, hand_off=NO_RECORDING)
    return None
