"""Filing reviewer decisions (no Dagster): written by the CLI or any tool to the time-ordered
decisions prefix, validated, and filed under their segment, append-only."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from robotrace_assets import layout
from robotrace_assets.ids import new_id
from robotrace_assets.objectstore.client import S3Client, error_code, head_object
from robotrace_assets.review.decisions import Decision, DecisionError, parse_decision


def clip_index(client: S3Client, bucket: str, clip_id: str) -> dict[str, str]:
    """Where a clip lives (segment, media session) and the SHA-256 of the bytes it was cut from."""
    try:
        body = client.get_object(Bucket=bucket, Key=layout.clip_index_key(clip_id))["Body"].read()
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            raise DecisionError(f"unknown clip {clip_id}: no such clip has been cut") from None
        raise
    return json.loads(body)


def submit(
    client: S3Client,
    bucket: str,
    *,
    clip_id: str,
    reviewer_id: str,
    action: str,
    rationale: str,
    score: str | None = None,
    value: float | None = None,
    now: datetime | None = None,
) -> tuple[Decision, str]:
    """Validate a decision and write it to the decisions prefix, as any review tool would."""
    now = now or datetime.now(UTC)
    index = clip_index(client, bucket, clip_id)
    document = {
        "schema_version": "1",
        "decision_id": new_id("dec", now, random.SystemRandom()),
        "clip_id": clip_id,
        "segment_id": index["segment_id"],
        "source_sha256": index.get("source_sha256"),
        "reviewer_id": reviewer_id,
        "action": action,
        "rationale": rationale,
        "decided_at": now.isoformat(),
    }
    if action == "override_score":
        document.update(score=score, value=value)
    decision = parse_decision(document)  # refuses what the sensor would refuse, before writing
    key = layout.decision_key(decision.decision_id, now)
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document).encode(),
        ContentType=layout.JSON_CONTENT_TYPE,
    )
    return decision, key


def file_decision(client: S3Client, bucket: str, raw: bytes) -> Decision:
    """Validate a submitted decision and file it under its segment. Never overwrites: a
    decision id is filed once, so the record stays append-only."""
    decision = parse_decision(raw)
    index = clip_index(client, bucket, decision.clip_id)
    segment_id = decision.segment_id or index["segment_id"]
    if index["segment_id"] != segment_id:
        raise DecisionError(
            f"clip {decision.clip_id} belongs to {index['segment_id']}, not {segment_id}"
        )
    if decision.source_sha256 != index.get("source_sha256"):
        raise DecisionError(
            f"decision judged bytes {decision.source_sha256} but clip {decision.clip_id} is now "
            f"cut from {index.get('source_sha256')}: review the current content"
        )
    key = layout.filed_decision_key(segment_id, decision.decision_id)
    if head_object(client, bucket, key, checksum=False) is not None:
        return decision  # filed already (a re-listed entry): nothing to do
    body = json.dumps({**decision.to_json(), "segment_id": segment_id}).encode()
    client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=layout.JSON_CONTENT_TYPE)
    return Decision(**{**decision.__dict__, "segment_id": segment_id})
