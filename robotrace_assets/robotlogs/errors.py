"""The one error a robot log read raises."""

from __future__ import annotations

__all__ = ["RobotLogError"]


class RobotLogError(ValueError):
    """A robot log that cannot become a trajectory table; names the topic when one is at fault.

    ``reason`` is the bare why, ``topic`` the topic (None for file-level faults such as a
    truncated MCAP or bytes that are no log at all); ``str()`` joins both for a record.
    """

    def __init__(self, reason: str, *, topic: str | None = None) -> None:
        self.reason = reason
        self.topic = topic
        super().__init__(f"topic {topic}: {reason}" if topic else reason)
