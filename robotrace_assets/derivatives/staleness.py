"""Which proven segments need their derivatives (re)made: none yet, or made with another profile;
and the refresh sensor's cursor (no Dagster here)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Staleness:
    missing: list[str]
    outdated: list[str]

    @property
    def targets(self) -> list[str]:
        return sorted(self.missing + self.outdated)


def select_stale(
    proven: Iterable[str], made_with: Mapping[str, str | None], fingerprint: str
) -> Staleness:
    """Proven segments with no derivatives, and those made with another profile."""
    proven = set(proven)
    missing = sorted(proven - made_with.keys())
    outdated = sorted(s for s in proven & made_with.keys() if made_with[s] != fingerprint)
    return Staleness(missing, outdated)


MAX_PENDING = 5_000  # stale segments remembered in the sensor cursor; past it: another full pass


@dataclass
class RefreshCursor:
    """What the refresh sensor remembers between ticks: the profile its last full pass was for,
    how far it has read the proof-check history (per check) and the proxy materializations, and
    the proven segments still waiting for current derivatives (bounded)."""

    fingerprint: str | None = None
    checks: dict[str, int] = field(default_factory=dict)  # check name -> last execution id read
    proxies: int = 0  # last proxy materialization storage id read
    pending: dict[str, str] = field(default_factory=dict)  # segment -> "missing" | "outdated"
    full_pass: bool = True  # the next tick scans every active partition

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RefreshCursor:
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            cursor = cls(**{k: doc[k] for k in doc if k in cls.__dataclass_fields__})
            cursor.pending = dict(cursor.pending)
            return cursor
        except (ValueError, TypeError):
            return cls()  # an unreadable cursor costs one full pass, never a missed segment

    def needs_full_pass(self, fingerprint: str) -> bool:
        return self.full_pass or self.fingerprint != fingerprint


def remember(cursor: RefreshCursor, stale: Staleness, settled: Iterable[str]) -> None:
    """Pending += stale, -= settled (current, unproven or archived); an overflow asks for a full
    pass instead of growing the cursor."""
    pending = {s: why for s, why in cursor.pending.items() if s not in set(settled)}
    pending.update({s: "missing" for s in stale.missing})
    pending.update({s: "outdated" for s in stale.outdated})
    cursor.pending = dict(sorted(pending.items())[:MAX_PENDING])
    if len(pending) > MAX_PENDING:
        cursor.full_pass = True


def pending_staleness(cursor: RefreshCursor) -> Staleness:
    missing = sorted(s for s, why in cursor.pending.items() if why == "missing")
    return Staleness(missing, sorted(s for s in cursor.pending if s not in set(missing)))
