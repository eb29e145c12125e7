"""Archive and reopen records in the bucket, and reopening partitions.

Every archive or reopen is an append-only JSON event, one object per event:

    robotics/catalog/lifecycle/<folder>/<YYYY-MM-DD>/<id>/<UTC time>-<action>-<n>.json

(<folder>: segment or media_session)

The day is the id's mint day, so the archived segments of one day are one LIST away (for
rollups partitioned by day), and one entity's history is one short LIST. Keys sort by time, so
the last key is the entity's current lifecycle state. Nothing here deletes anything: catalog
records stay, and deleting a Dagster dynamic partition keeps its event-log history.

For other code (derivative refresh, review rollups, deliveries):
  is_archived(store, segment_id) -> bool      one LIST + one GET
  archived_on_day(store, kind, day) -> set    ids whose latest event is "archived"
  reopen(instance, store, ids, by=..., reason=...)  partitions back + a reopen record each
  record_reopened(store, ids, by=..., reason=...)   records only, for a sensor whose
                                                     SensorResult adds the partitions back
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Protocol

from robotrace_assets import layout
from robotrace_assets.ids import id_day, is_id
from robotrace_assets.records.store import BucketStore

LIFECYCLE = f"{layout.CATALOG}/lifecycle"
ARCHIVED = "archived"
REOPENED = "reopened"
# Id kind -> (lifecycle folder, Dagster dynamic partitions definition name; partitions.py).
KINDS = {"seg": ("segment", "segment"), "msess": ("media_session", "media_session")}
SEGMENT_PARTITIONS = KINDS["seg"][1]
SESSION_PARTITIONS = KINDS["msess"][1]


class LifecycleError(ValueError):
    """A request that cannot be carried out; nothing was changed."""


class PartitionStore(Protocol):
    """The slice of a DagsterInstance that the lifecycle uses (so this module imports no
    Dagster): membership, listing, adding."""

    def get_existing_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> AbstractSet[str]: ...

    def add_dynamic_partitions(
        self, partitions_def_name: str, partition_keys: Sequence[str]
    ) -> None: ...

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]: ...


@dataclass(frozen=True)
class LifecycleEvent:
    entity_id: str
    action: str  # ARCHIVED | REOPENED
    at: str  # ISO-8601 UTC
    by: str  # "partition_archival_sensor", or who reopened it
    reason: str  # the policy's closure detail, or the reopen reason given
    media_session_id: str | None = None
    tenant_id: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LifecycleEvent:
        doc = json.loads(data)
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__})


def kind_of(entity_id: str) -> str:
    """ "seg" or "msess"; a LifecycleError for anything else (malformed ids included)."""
    for kind in KINDS:
        if is_id(kind, entity_id):
            return kind
    raise LifecycleError(
        f"{entity_id!r} is not a segment or media session id (seg_<ULID> or msess_<ULID>)"
    )


def partitions_name(entity_id: str) -> str:
    return KINDS[kind_of(entity_id)][1]


def entity_prefix(entity_id: str) -> str:
    folder = KINDS[kind_of(entity_id)][0]
    return f"{LIFECYCLE}/{folder}/{id_day(entity_id)}/{entity_id}/"


def event_key(event: LifecycleEvent) -> str:
    at = datetime.fromisoformat(event.at).astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    # A random tail: two events in the same microsecond never overwrite each other.
    return f"{entity_prefix(event.entity_id)}{at}-{event.action}-{secrets.token_hex(4)}.json"


def record_event(store: BucketStore, event: LifecycleEvent) -> str:
    key = event_key(event)
    store.put_bytes(key, event.to_json(), layout.JSON_CONTENT_TYPE)
    return key


def _keys(store: BucketStore, prefix: str) -> list[str]:
    keys: list[str] = []
    paginator = store.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=store.bucket_name, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return sorted(keys)


def history(store: BucketStore, entity_id: str) -> list[LifecycleEvent]:
    """Every lifecycle event of the entity, oldest first."""
    keys = _keys(store, entity_prefix(entity_id))
    return [LifecycleEvent.from_json(store.get_bytes(k)) for k in keys]


def latest_event(store: BucketStore, entity_id: str) -> LifecycleEvent | None:
    keys = _keys(store, entity_prefix(entity_id))
    return LifecycleEvent.from_json(store.get_bytes(keys[-1])) if keys else None


def is_archived(store: BucketStore, entity_id: str) -> bool:
    """True when the entity's latest lifecycle event archived it (False: never archived, or
    reopened since). The records say what the archival decided; the Dagster partition set may
    lag it by one sensor tick."""
    event = latest_event(store, entity_id)
    return event is not None and event.action == ARCHIVED


def archived_on_day(store: BucketStore, folder: str, day: str) -> set[str]:
    """Ids minted on `day` (YYYY-MM-DD) whose latest event is an archive, without a GET:
    the action is in the key. `folder` is "segment" or "media_session"."""
    latest: dict[str, str] = {}
    for key in _keys(store, f"{LIFECYCLE}/{folder}/{day}/"):
        entity_id, name = key.rsplit("/", 2)[-2:]
        latest[entity_id] = name.split("-")[1]  # keys sort by time: the last one wins
    return {entity_id for entity_id, action in latest.items() if action == ARCHIVED}


def archive_event(
    entity_id: str,
    reason: str,
    *,
    by: str,
    at: datetime,
    media_session_id: str | None = None,
    tenant_id: str | None = None,
) -> LifecycleEvent:
    return LifecycleEvent(
        entity_id, ARCHIVED, at.astimezone(UTC).isoformat(), by, reason, media_session_id, tenant_id
    )


@dataclass(frozen=True)
class Reopened:
    entity_id: str
    outcome: str  # "reopened" | "already active"
    event: LifecycleEvent | None = None


def _plan_reopen(
    instance: PartitionStore, store: BucketStore, ids: Sequence[str]
) -> tuple[list[str], dict[str, LifecycleEvent]]:
    """(ids already active, archived id -> its archive event); a LifecycleError naming every id
    that cannot be reopened, before anything is changed."""
    problems: list[str] = []
    for entity_id in ids:
        try:
            kind_of(entity_id)
        except LifecycleError as error:
            problems.append(str(error))
    if problems:
        raise LifecycleError("; ".join(problems))
    active: list[str] = []
    for name in {partitions_name(i) for i in ids}:
        active += sorted(instance.get_existing_dynamic_partitions(name, ids))
    archived: dict[str, LifecycleEvent] = {}
    for entity_id in ids:
        if entity_id in active:
            continue
        event = latest_event(store, entity_id)
        if event is None or event.action != ARCHIVED:
            problems.append(f"{entity_id}: not active and never archived (unknown id?)")
        else:
            archived[entity_id] = event
    if problems:
        raise LifecycleError("; ".join(problems))
    return active, archived


def reopen(
    instance: PartitionStore,
    store: BucketStore,
    ids: Iterable[str],
    *,
    by: str,
    reason: str,
    at: datetime | None = None,
) -> list[Reopened]:
    """Bring archived segments or media sessions back into the dynamic set and record who and
    why. A segment's media session comes back with it (an archived session has no active
    segment). All ids are checked first: one unknown or malformed id changes nothing."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise LifecycleError("no ids given")
    if not reason.strip():
        raise LifecycleError("a reason is required")
    active, archived = _plan_reopen(instance, store, ids)
    sessions = {
        e.media_session_id
        for e in archived.values()
        if e.media_session_id and e.media_session_id not in archived
    }
    active_sessions = instance.get_existing_dynamic_partitions(SESSION_PARTITIONS, sorted(sessions))
    for session_id in sorted(sessions - set(active_sessions)):
        event = latest_event(store, session_id)
        if event is not None and event.action == ARCHIVED:
            archived[session_id] = event
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
    done = [Reopened(i, "already active") for i in ids if i in active]
    # Sessions first: a segment is never active under an archived session.
    for entity_id in sorted(archived, key=lambda i: (kind_of(i) != "msess", i)):
        instance.add_dynamic_partitions(partitions_name(entity_id), [entity_id])
        old = archived[entity_id]
        event = LifecycleEvent(
            entity_id, REOPENED, when, by, reason, old.media_session_id, old.tenant_id
        )
        record_event(store, event)
        done.append(Reopened(entity_id, REOPENED, event))
    return done


def record_reopened(
    store: BucketStore,
    ids: Iterable[str],
    *,
    by: str,
    reason: str,
    at: datetime | None = None,
) -> list[str]:
    """For a sensor that brings partitions back itself (its SensorResult adds them, e.g.
    `segment_partitions.build_add_request(ids)` beside a RunRequest for an archived segment):
    write a reopen record for each id whose latest event is an archive. The ids reopened."""
    when = (at or datetime.now(UTC)).astimezone(UTC).isoformat()
    done = []
    for entity_id in dict.fromkeys(ids):
        event = latest_event(store, entity_id)
        if event is not None and event.action == ARCHIVED:
            record_event(
                store,
                LifecycleEvent(
                    entity_id, REOPENED, when, by, reason, event.media_session_id, event.tenant_id
                ),
            )
            done.append(entity_id)
    return done


__all__ = [
    "ARCHIVED",
    "REOPENED",
    "LifecycleError",
    "LifecycleEvent",
    "archive_event",
    "archived_on_day",
    "history",
    "is_archived",
    "latest_event",
    "record_event",
    "record_reopened",
    "reopen",
]
