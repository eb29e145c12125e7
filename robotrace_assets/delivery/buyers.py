"""Buyers, configured in a JSON file (ROBOTRACE_BUYERS_FILE; the shipped example otherwise).

A buyer buys for some uses, under a proof policy, in a format, by a delivery method, and may
receive clips only of the tenants it is licensed for (`licensed_tenants`, or its own
`tenant_id`). `"*"` licenses every tenant and exists for the demo; production lists tenants.
A `lerobot` buyer may opt in to depth (`include_depth`): every episode then carries its
segment's depth maps (`observation.depth`, `observation.depth_valid`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

EXAMPLE = Path(__file__).with_name("buyers.example.json")
BUYER_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DELIVERY_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
PARTITION_SEPARATOR = "--"  # buyer ids cannot contain it; "," and "|" upset the Dagster UI


class BuyerConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Buyer:
    buyer_id: str
    uses: frozenset[str]
    proof_policy: str  # "strict" | "lenient"
    format: str  # "raw" | "lerobot" | "mcap"
    method: str  # "presigned_url" | "copy"
    tenant_id: str | None = None
    licensed_tenants: frozenset[str] = frozenset()
    description: str = ""
    # Only segments whose client declared the SHA-256 (not merely observed by the proof).
    require_declared_sha256: bool = False
    # LeRobot only: per-frame depth maps from each clip's proven depth stream; a clip whose
    # segment has none fails the export with its clip id (nothing is delivered).
    include_depth: bool = False

    def may_receive_tenant(self, tenant_id: str) -> bool:
        return (
            tenant_id == self.tenant_id
            or tenant_id in self.licensed_tenants
            or ("*" in self.licensed_tenants)
        )


def _buyer(doc: dict) -> Buyer:
    try:
        buyer = Buyer(
            buyer_id=doc["buyer_id"],
            uses=frozenset(doc["uses"]),
            proof_policy=doc.get("proof_policy", "strict"),
            format=doc.get("format", "raw"),
            method=doc.get("method", "copy"),
            tenant_id=doc.get("tenant_id"),
            licensed_tenants=frozenset(doc.get("licensed_tenants", [])),
            description=doc.get("description", ""),
            require_declared_sha256=bool(doc.get("require_declared_sha256", False)),
            include_depth=doc.get("include_depth", False),
        )
    except (KeyError, TypeError) as error:
        raise BuyerConfigError(f"buyer entry {doc!r} is missing {error}") from None
    problems = []
    if not BUYER_ID.match(buyer.buyer_id) or PARTITION_SEPARATOR in buyer.buyer_id:
        problems.append("buyer_id must be lower-case letters, digits and single underscores")
    if buyer.proof_policy not in ("strict", "lenient"):
        problems.append("proof_policy must be strict or lenient")
    if buyer.format not in ("raw", "lerobot", "mcap"):
        problems.append("format must be raw, lerobot or mcap")
    if buyer.method not in ("presigned_url", "copy"):
        problems.append("method must be presigned_url or copy")
    if not buyer.uses:
        problems.append("uses must name at least one use")
    if not isinstance(buyer.include_depth, bool):
        problems.append("include_depth must be true or false")
    elif buyer.include_depth and buyer.format != "lerobot":
        # raw deliveries already carry the depth object itself; mcap has no depth topic.
        problems.append("include_depth needs format lerobot")
    if problems:
        raise BuyerConfigError(f"buyer {buyer.buyer_id}: " + "; ".join(problems))
    return buyer


def load_buyers(path: Path | None = None) -> dict[str, Buyer]:
    path = path or Path(os.environ.get("ROBOTRACE_BUYERS_FILE") or EXAMPLE)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise BuyerConfigError(f"cannot read buyers from {path}: {error}") from None
    buyers = [_buyer(entry) for entry in doc.get("buyers", [])]
    ids = [b.buyer_id for b in buyers]
    if len(set(ids)) != len(ids):
        raise BuyerConfigError(f"duplicate buyer ids in {path}")
    return {b.buyer_id: b for b in buyers}


def delivery_partition(buyer_id: str, delivery_id: str) -> str:
    if not DELIVERY_ID.match(delivery_id):
        raise BuyerConfigError(f"delivery id {delivery_id!r}: use [a-z0-9_-], up to 60 chars")
    return f"{buyer_id}{PARTITION_SEPARATOR}{delivery_id}"


def parse_delivery_partition(key: str) -> tuple[str, str]:
    buyer_id, separator, delivery_id = key.partition(PARTITION_SEPARATOR)
    if not separator or not BUYER_ID.match(buyer_id) or not DELIVERY_ID.match(delivery_id):
        raise BuyerConfigError(f"delivery partition {key!r} is not <buyer_id>--<delivery_id>")
    return buyer_id, delivery_id


DEFAULT_WINDOW_DAYS = 7  # without --from/--to: the week of capture days ending today (UTC)
MAX_WINDOW_DAYS = 366  # a delivery reads one LIST per day and one GET per segment shard
WINDOWS_TABLE = "delivery_windows"  # catalog table: the window each delivery was made for


@dataclass(frozen=True)
class DeliveryWindow:
    """The capture days a delivery draws its candidate clips from, inclusive (UTC)."""

    from_day: str
    to_day: str

    def days(self) -> list[str]:
        start, end = date.fromisoformat(self.from_day), date.fromisoformat(self.to_day)
        return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def window(from_day: str | None, to_day: str | None, today: date | None = None) -> DeliveryWindow:
    """A checked window; a missing end defaults to today, a missing start to DEFAULT_WINDOW_DAYS
    before the end."""
    try:
        end = date.fromisoformat(to_day) if to_day else (today or datetime.now(UTC).date())
        start = (
            date.fromisoformat(from_day)
            if from_day
            else end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
        )
    except ValueError as error:
        raise BuyerConfigError(f"delivery window: {error} (use YYYY-MM-DD)") from None
    if start > end:
        raise BuyerConfigError(f"delivery window: {start} is after {end}")
    if (end - start).days + 1 > MAX_WINDOW_DAYS:
        raise BuyerConfigError(f"delivery window: more than {MAX_WINDOW_DAYS} days")
    return DeliveryWindow(start.isoformat(), end.isoformat())
