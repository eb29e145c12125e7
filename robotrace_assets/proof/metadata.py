"""What a provider-proof partition shows in the Dagster UI: its proof state first, the failed
checks with expected and observed values, and what to do next.

Dagster marks a partition "Materialized" as soon as the proof record is written, whatever the
checks then find, and its partition view shows the materialization's metadata (in the order
given) with the tags folded away. So the state leads the metadata, and the same state is a tag
(`robotrace/proof_state`) for searches and the GraphQL API.
"""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from robotrace_assets.proof import rules

PROOF_STATE_TAG = "robotrace/proof_state"
PASSED, FAILED = "passed", "failed"

# The UI renders Markdown metadata inline only below this many characters.
INLINE_MARKDOWN_LIMIT = 1000

# Lines stay short: the partition view shows metadata in a fixed-width font without wrapping.
NEXT_STEPS = {
    rules.SIZE: "Re-upload the raw video: it is not the declared size.",
    rules.SHA256: "Re-upload the raw video: its bytes differ from the declared SHA-256.",
    rules.PARTS: "Re-upload the raw video: multipart parts are missing or overlap.",
    rules.ETAG: "Re-upload the raw video: its multipart ETag does not match its bytes.",
    rules.CONTENT_TYPE: "Fix the Content-Type (client or envelope) and re-upload.",
    rules.TENANT_PREFIX: "Fix the client: the raw key is outside `robotics/raw/<tenant_id>/`.",
    rules.SESSION: "Fix the media session envelope: it must own this segment.",
    rules.OBJECTS: "Re-upload the declared objects (sensor log...) that differ.",
    rules.UNCHANGED: "An object changed after its proof: re-prove the segment.",
}
RERUN = "Then materialize segment, segment_parts and provider_proof for this partition."
BLOCKED = "Until then derivatives, clips, review and delivery stay blocked."

_CHECK_TABLE = TableSchema(
    columns=[
        TableColumn("check", "string"),
        TableColumn("expected", "string"),
        TableColumn("observed", "string"),
    ]
)


def _cell(value: Any, limit: int = 24) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def proof_state_line(verdict: rules.ProofVerdict) -> str:
    if verdict.passed:
        return f"PASSED ({verdict.status}): every proof rule holds"
    failed = ", ".join(f.check for f in verdict.failed()) or "none named"
    return f"FAILED ({verdict.status}): {failed}"


def next_steps_markdown(verdict: rules.ProofVerdict) -> str:
    """One bullet per failed check, how to re-prove, what stays blocked; short enough to be
    shown inline."""
    steps = list(dict.fromkeys(NEXT_STEPS[f.check] for f in verdict.failed()))
    text = "\n".join(f"- {step}" for step in [*steps, RERUN, BLOCKED])
    if len(text) >= INLINE_MARKDOWN_LIMIT:
        text = text[: INLINE_MARKDOWN_LIMIT - 2] + "…"
    return text


def failed_checks_table(verdict: rules.ProofVerdict) -> MetadataValue:
    records = [
        TableRecord(
            {
                "check": f.check,
                "expected": _cell(f.expected),
                "observed": _cell(f.actual),
            }
        )
        for f in verdict.failed()
    ]
    return MetadataValue.table(records, schema=_CHECK_TABLE)


def proof_state_metadata(verdict: rules.ProofVerdict) -> dict[str, Any]:
    """The entries that lead the partition's metadata: the state, and when it failed, the
    failed checks and what to do next."""
    metadata: dict[str, Any] = {"proof_state": MetadataValue.text(proof_state_line(verdict))}
    if not verdict.passed:
        metadata["what_to_do_next"] = MetadataValue.md(next_steps_markdown(verdict))
        metadata["failed_check_details"] = failed_checks_table(verdict)
    return metadata


def proof_state_tags(verdict: rules.ProofVerdict) -> dict[str, str]:
    return {PROOF_STATE_TAG: PASSED if verdict.passed else FAILED}
