"""Alert delivery: always a log line and a JSON line in data/alerts.jsonl; also a webhook and
Slack when configured. No Dagster here.

Alerts carry ids, check names and expected/actual values, never URLs, credentials or request
bodies; webhook and Slack failures are reported without the webhook address.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

logger = logging.getLogger("robotrace_assets.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str  # "proof_check_failed" | "run_failed"
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def text(self) -> str:
        lines = [f":rotating_light: {self.title}"]
        lines += [f"• {k}: {v}" for k, v in self.details.items()]
        return "\n".join(lines)


@dataclass(frozen=True)
class Delivery:
    file: bool
    webhook: bool | None  # None: not configured
    slack: bool | None
    errors: tuple[str, ...] = ()


def append_line(path: Path, alert: Alert) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(alert), sort_keys=True, default=str) + "\n"
    # One write of one line with O_APPEND: concurrent writers do not interleave lines.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def deliver(
    alert: Alert,
    alerts_file: Path,
    webhook_url: str | None = None,
    slack_post: Callable[[str], None] | None = None,
) -> Delivery:
    """Log the alert, append it to the alerts file, then post it to the webhook and Slack when
    given. A failing webhook or Slack is reported in the result, never raised: the alert itself
    is already on disk."""
    errors: list[str] = []
    logger.error("ALERT %s: %s %s", alert.kind, alert.title, json.dumps(alert.details, default=str))
    append_line(alerts_file, alert)
    webhook: bool | None = None
    if webhook_url:
        try:
            response = requests.post(webhook_url, json=asdict(alert), timeout=10)
            webhook = response.ok
            if not response.ok:
                errors.append(f"webhook answered HTTP {response.status_code}")
        except requests.RequestException as error:
            webhook = False
            errors.append(f"webhook unreachable: {type(error).__name__}")
    slack: bool | None = None
    if slack_post is not None:
        try:
            slack_post(alert.text())
            slack = True
        except Exception as error:  # slack_sdk raises many types; none may stop the alert
            slack = False
            errors.append(f"slack post failed: {type(error).__name__}")
    for error in errors:
        logger.warning("alert delivery: %s", error)
    return Delivery(True, webhook, slack, tuple(errors))
