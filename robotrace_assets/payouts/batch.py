"""Exporting a payout batch: approved segments, re-checked, claimed once, written and signed.

    robotics/catalog/payouts/claims/<segment_id>.json        which batch took the segment
    robotics/catalog/payouts/batches/<batch_id>/payouts.parquet, payouts.csv, batch.json

A segment is paid at most once: before any file is written, the batch claims each segment with a
conditional create (If-None-Match: *) that exactly one batch can win, and a later batch skips a
claimed segment. Every candidate is refreshed from its records first: one whose proof, consent
or review no longer supports the approved amount is refused (and withheld or re-opened). After
the files are written each paid segment gets its `paid` event with the batch id. No Dagster.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from robotrace_assets import layout
from robotrace_assets.delivery.manifest.signing import Signer
from robotrace_assets.ids import ulid
from robotrace_assets.payouts import batchfiles, ledger
from robotrace_assets.payouts.ratecard import RateCard
from robotrace_assets.payouts.service import Outcome, refresh
from robotrace_assets.payouts.states import APPROVED, PAID, Change
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.store import BucketStore

CLAIMS = f"{ledger.PAYOUTS}/claims"
BATCHES = f"{ledger.PAYOUTS}/batches"
ACTOR = "robotrace/payouts-export"
_RNG = random.SystemRandom()


def batch_prefix(batch_id: str) -> str:
    return f"{BATCHES}/{batch_id}/"


def claim_key(segment_id: str) -> str:
    ledger.events_prefix(segment_id)  # validates the id
    return f"{CLAIMS}/{segment_id}.json"


@dataclass
class BatchResult:
    batch_id: str
    paid: list[dict[str, Any]] = field(default_factory=list)  # the batch rows
    refused: dict[str, str] = field(default_factory=dict)  # segment id -> why not paid
    keys: list[str] = field(default_factory=list)
    header: dict[str, Any] | None = None


def approved_segments(store: BucketStore) -> list[str]:
    """Segments whose latest ledger event says approved (one GET per segment, not a full fold)."""
    latest: dict[str, str] = {}
    for key in ledger.list_keys(store, f"{layout.CATALOG}/{ledger.EVENTS}/"):
        segment_id = key.rsplit("/", 2)[-2]
        latest[segment_id] = max(latest.get(segment_id, ""), key)
    return sorted(
        seg for seg, key in latest.items() if ledger.read_key(store, key).state == APPROVED
    )


def _row(batch_id: str, outcome: Outcome) -> dict[str, Any]:
    facts, state = outcome.facts, outcome.state
    return {
        "batch_id": batch_id,
        "segment_id": facts.segment_id,
        "media_session_id": facts.media_session_id,
        "tenant_id": facts.tenant_id,
        "operator_id": facts.operator_id,
        "task_brief_id": facts.task_brief_id,
        "device_tier": facts.device_tier,
        "currency": state.currency,
        "approved_minutes": state.approved_minutes,
        "amount": state.amount,
        "approved_by": state.actor,
        "approved_at": state.at,
        "approval_reason": state.reason,
    }


def _candidate(store: BucketStore, segment_id: str, card: RateCard) -> Outcome | str:
    """The segment refreshed from its records, or why it cannot be paid now."""
    try:
        outcome = refresh(store, segment_id, card, ACTOR)
    except (RecordError, ValueError) as error:
        return f"cannot read its records: {error}"
    if outcome.state.state != APPROVED:
        return f"{outcome.state.state or 'not evaluated'}: {outcome.state.reason}"
    return outcome


def _claim(store: BucketStore, segment_id: str, batch_id: str, at: str) -> str | None:
    """None when this batch won the segment; else which batch holds it."""
    body = json.dumps({"segment_id": segment_id, "batch_id": batch_id, "claimed_at": at})
    if ledger.put_new(store, claim_key(segment_id), body.encode(), layout.JSON_CONTENT_TYPE):
        return None
    held = json.loads(store.get_bytes(claim_key(segment_id)))
    return str(held.get("batch_id"))


def export_batch(
    store: BucketStore,
    card: RateCard,
    signer: Signer,
    by: str,
    reason: str,
    segment_ids: Iterable[str] | None = None,
) -> BatchResult:
    """Pay every approved segment given (default: all approved) in one signed batch."""
    for what, text in (("--by", by), ("--reason", reason)):
        if not text.strip() or "\n" in text or "\r" in text:
            raise ValueError(f"{what} must be one non-empty line: it is signed into the batch")
    now = datetime.now(UTC)
    result = BatchResult(f"pay_{ulid(now, _RNG)}")
    chosen = set(segment_ids) if segment_ids is not None else approved_segments(store)
    for segment_id in sorted(chosen):
        candidate = _candidate(store, segment_id, card)
        if isinstance(candidate, str):
            result.refused[segment_id] = candidate
            continue
        holder = _claim(store, segment_id, result.batch_id, now.isoformat())
        if holder is not None:
            result.refused[segment_id] = f"already in payout batch {holder}"
            continue
        result.paid.append(_row(result.batch_id, candidate))
    if result.paid:
        _write(store, result, card, signer, by, reason, now)
        _mark_paid(store, result, by, reason)
    return result


def _write(
    store: BucketStore,
    result: BatchResult,
    card: RateCard,
    signer: Signer,
    by: str,
    reason: str,
    now: datetime,
) -> None:
    parquet = batchfiles.parquet_bytes(result.paid)
    csv = batchfiles.csv_bytes(result.paid)
    fields = {
        "batch_id": result.batch_id,
        "created_at": now.isoformat(),
        "created_by": by,
        "reason": reason,
        "row_count": len(result.paid),
        "currency_totals": batchfiles.currency_totals(result.paid),
        "rate_card_sha256": card.digest,
    }
    header = batchfiles.signed_header(fields, parquet, csv, signer)
    prefix = batch_prefix(result.batch_id)
    for name, data, kind in (
        ("payouts.parquet", parquet, layout.PARQUET_CONTENT_TYPE),
        ("payouts.csv", csv, "text/csv"),
        ("batch.json", json.dumps(header, indent=2).encode(), layout.JSON_CONTENT_TYPE),
    ):
        if not ledger.put_new(store, prefix + name, data, kind):
            raise ledger.LedgerError(f"{prefix}{name} already exists; batch ids never repeat")
        result.keys.append(prefix + name)
    result.header = header


def _mark_paid(store: BucketStore, result: BatchResult, by: str, reason: str) -> None:
    for row in result.paid:
        current = ledger.current_state(store, row["segment_id"])
        why = f"paid in batch {result.batch_id}: {reason}"
        ledger.append(store, current, Change(PAID, why, batch_id=result.batch_id), by)


def read_batch(store: BucketStore, batch_id: str) -> tuple[dict[str, Any], bytes, bytes]:
    """A written batch: its signed header, Parquet bytes and CSV bytes."""
    prefix = batch_prefix(batch_id)
    header = json.loads(store.get_bytes(prefix + "batch.json"))
    parquet = store.get_bytes(prefix + "payouts.parquet")
    return header, parquet, store.get_bytes(prefix + "payouts.csv")
