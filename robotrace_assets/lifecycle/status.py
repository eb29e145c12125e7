"""Where a segment or media session stands: active, or archived with when, by whom and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from robotrace_assets.lifecycle.archive import (
    ARCHIVED,
    PartitionStore,
    kind_of,
    latest_event,
    partitions_name,
)
from robotrace_assets.records.store import BucketStore

ACTIVE = "active"
UNKNOWN = "unknown"  # no partition and no lifecycle record: never registered, or a typo


@dataclass(frozen=True)
class EntityStatus:
    entity_id: str
    state: str  # "active" | "archived" | "unknown"
    partition_active: bool
    last_action: str | None = None  # the latest lifecycle event: "archived" | "reopened"
    at: str | None = None
    by: str | None = None
    reason: str | None = None

    def text(self) -> str:
        if self.last_action is None:
            return f"{self.entity_id}  {self.state}"
        note = ""
        if self.partition_active and self.last_action == ARCHIVED:
            note = " (archive recorded; the partition is deleted on the sensor's next apply)"
        return (
            f"{self.entity_id}  {self.state}  (last {self.last_action} {self.at} by {self.by}: "
            f"{self.reason}){note}"
        )


def entity_status(
    instance: PartitionStore, store: BucketStore, ids: Sequence[str]
) -> list[EntityStatus]:
    """One line per id; a LifecycleError (nothing read) if any id is malformed."""
    for entity_id in ids:
        kind_of(entity_id)
    lines = []
    for entity_id in ids:
        active = bool(
            instance.get_existing_dynamic_partitions(partitions_name(entity_id), [entity_id])
        )
        event = latest_event(store, entity_id)
        if active:
            state = ACTIVE
        elif event is not None and event.action == ARCHIVED:
            state = ARCHIVED
        else:
            state = UNKNOWN
        if event is None:
            lines.append(EntityStatus(entity_id, state, active))
        else:
            lines.append(
                EntityStatus(
                    entity_id, state, active, event.action, event.at, event.by, event.reason
                )
            )
    return lines
