"""Which proven segments need their derivatives (re)made: none yet, or made with another profile."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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
