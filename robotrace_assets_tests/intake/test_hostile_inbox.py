"""The intake under a buggy or hostile client: envelopes pointing at objects that never arrive,
inbox keys that are not entries, ids Dagster or the UI could not hold; and property tests of the
parsers on arbitrary input."""

import contextlib
import json
import string
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from dagster import build_sensor_context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robotrace_assets import layout
from robotrace_assets.envelopes import EnvelopeError, MediaSessionEnvelope, SegmentEnvelope
from robotrace_assets.ids import is_id
from robotrace_assets.intake import discovery
from robotrace_assets.intake.discovery import Intake, IntakeCursor, entry_problem
from robotrace_assets.intake.sensors import capture_intake_sensor
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    check_outcomes,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SEGMENT_ID = "seg_01KT9WNH809PJX8W9XC34AE1HS"


def _no_raw(s3, bucket: str, sessions: int = 1, segments: int = 1):
    """Envelopes whose raw video never arrives (a client that crashed mid-way)."""
    found = simulate(s3, bucket, sessions=sessions, segments=segments)
    for session in found:
        for segment in session.segments:
            s3.delete_object(Bucket=bucket, Key=segment.raw_key)
    return found


def test_missing_object_fails_clearly_once_its_upload_window_closes(s3, bucket, instance) -> None:
    segment = _no_raw(s3, bucket)[0].segments[0]
    intake = Intake(s3, bucket, upload_window=timedelta(hours=2))
    first = intake.discover(IntakeCursor(), now=T0)
    assert first.waiting == [segment.segment_id] and not first.segments
    # A multipart upload still in progress keeps the window open.
    upload = s3.create_multipart_upload(Bucket=bucket, Key=segment.raw_key)
    late = intake.discover(first.cursor, now=T0 + timedelta(hours=3))
    assert late.waiting == [segment.segment_id] and not late.expired
    s3.abort_multipart_upload(Bucket=bucket, Key=segment.raw_key, UploadId=upload["UploadId"])
    closed = intake.discover(late.cursor, now=T0 + timedelta(hours=3, minutes=10))
    assert closed.expired == [segment.segment_id]
    assert [s.segment_id for s in closed.segments] == [segment.segment_id]
    assert closed.cursor.pending == {}

    result = run_assets(
        instance, bucket, [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF], segment.segment_id
    )
    assert not result.success
    outcomes = check_outcomes(instance, segment.segment_id)
    assert outcomes[rules.SIZE] is False and outcomes[rules.SHA256] is False
    record = store_for(bucket).read_record("provider_proofs", segment.segment_id)
    assert record[0]["integrity_status"] == rules.MISSING


def test_waiting_uploads_are_rechecked_with_backoff(s3, bucket) -> None:
    segment = _no_raw(s3, bucket)[0].segments[0]
    intake = Intake(s3, bucket)
    found = intake.discover(IntakeCursor(), now=T0)
    for tick in range(discovery.EVERY_TICK_CHECKS):  # every tick at first
        assert "next" not in found.cursor.pending[segment.segment_id]
        found = intake.discover(found.cursor, now=T0 + timedelta(seconds=30 * (tick + 1)))
    info = found.cursor.pending[segment.segment_id]
    due = datetime.fromisoformat(info["next"])
    before = intake.discover(found.cursor, now=due - timedelta(seconds=1))
    assert before.cursor.pending[segment.segment_id] == info  # not due: no HEAD
    after = intake.discover(found.cursor, now=due)
    assert after.cursor.pending[segment.segment_id]["checks"] == info["checks"] + 1
    later = datetime.fromisoformat(after.cursor.pending[segment.segment_id]["next"])
    last_tick = T0 + timedelta(seconds=30 * discovery.EVERY_TICK_CHECKS)
    assert due - last_tick == discovery.RECHECK_MIN  # then doubling
    assert later - due == 2 * discovery.RECHECK_MIN


def test_pending_set_stays_bounded(s3, bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discovery, "MAX_PENDING", 2)
    sessions = _no_raw(s3, bucket, segments=3)
    found = Intake(s3, bucket).discover(IntakeCursor(), now=T0)
    assert len(found.cursor.pending) == 2
    assert len(found.expired) == 1
    assert {s.segment_id for s in found.segments} == set(found.expired)
    assert {s.segment_id for s in sessions[0].segments} == set(found.cursor.pending) | set(
        found.expired
    )


HOSTILE_NAMES = [
    "README.txt",
    f"2026-11-29/120000.000000Z_segment_{SEGMENT_ID}|x.json",
    "2026-11-29/120000.000000Z_segment_seg_01KT9WNH809PJX8W9XC34AE1H,.json",
    "2026-11-29/120000.000000Z_segment_seg_01KT9WNH809PJX8W9XC34AÉ1HS.json",
    "2026-11-29/120000.000000Z_segment_seg_short.json",
    "2026-11-29/120000.000000Z_session_seg_01KT9WNH809PJX8W9XC34AE1HS.json",
]


def test_unusable_inbox_entries_are_quarantined_and_alerted(s3, bucket, instance, data_dir) -> None:
    good = simulate(s3, bucket)[0]
    for name in HOSTILE_NAMES:
        s3.put_object(Bucket=bucket, Key=f"{layout.INBOX}/{name}", Body=b"{}")
    context = build_sensor_context(instance=instance, resources=resources_for(bucket))
    result = capture_intake_sensor(context)
    keys = [r.partition_key for r in result.run_requests]
    assert sorted(keys) == sorted([good.media_session_id, good.segments[0].segment_id])
    records = s3.list_objects_v2(Bucket=bucket, Prefix=discovery.QUARANTINE + "/")
    assert records["KeyCount"] == len(HOSTILE_NAMES)
    reasons = [
        json.loads(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
        for o in records["Contents"]
    ]
    assert {r["inbox_key"] for r in reasons} == {f"{layout.INBOX}/{n}" for n in HOSTILE_NAMES}
    alerts = [json.loads(line) for line in (data_dir / "alerts.jsonl").read_text().splitlines()]
    assert [a["kind"] for a in alerts] == ["inbox_entry_quarantined"]
    assert len(alerts[0]["details"]["entries"]) == len(HOSTILE_NAMES)
    # The next tick does not report the same keys again.
    again = capture_intake_sensor(
        build_sensor_context(
            instance=instance,
            cursor=result.cursor,
            resources=resources_for(bucket),
        )
    )
    assert not again.run_requests
    assert len((data_dir / "alerts.jsonl").read_text().splitlines()) == 1


def _dagster_safe(key: str) -> bool:
    return bool(key) and not set(key) & set(",|[]{}/\\\"'\n\r\t ") and key.isascii()


@given(st.text(max_size=120))
@settings(max_examples=500, deadline=None)
def test_any_inbox_key_parses_to_a_strict_id_or_a_reason(name: str) -> None:
    entry = entry_problem(f"{layout.INBOX}/{name}")
    if isinstance(entry, str):
        assert entry
        return
    kind, entity_id = entry
    assert is_id(discovery.ID_KINDS[kind], entity_id) and _dagster_safe(entity_id)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=30,
)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_any_json_is_an_envelope_or_an_envelope_error(document: object) -> None:
    raw = json.dumps(document).encode()
    for parser in (SegmentEnvelope.parse, MediaSessionEnvelope.parse):
        with pytest.raises(EnvelopeError):  # nothing random is a valid envelope, nor crashes
            parser(raw)


def _near_valid_segment(overrides: dict) -> dict:
    doc = {
        "schema_version": "1",
        "media_session_id": "msess_01KT9WNH809PJX8W9XC34AE1HS",
        "segment_id": SEGMENT_ID,
        "capture_id": "cap_01KT9WNH809PJX8W9XC34AE1HS",
        "tenant_id": "ten_01KT9WNH809PJX8W9XC34AE1HS",
        "segment_index": 0,
        "started_at": "2026-11-29T12:00:00Z",
        "ended_at": "2026-11-29T12:00:10Z",
        "boundary_reason": "time_limit",
        "raw": {"object_key": "k", "size_bytes": 1, "content_type": "video/mp4"},
        "upload": {"part_count": 1, "part_size_bytes": 5242880},
    }
    doc.update(overrides)
    return doc


@given(
    st.dictionaries(
        st.sampled_from(["started_at", "ended_at", "raw", "objects", "sensors", "segment_index"]),
        json_values,
        max_size=3,
    )
)
@settings(max_examples=300, deadline=None)
def test_near_valid_segment_envelopes_never_crash_the_parser(overrides: dict) -> None:
    with contextlib.suppress(EnvelopeError):
        SegmentEnvelope.parse(json.dumps(_near_valid_segment(overrides)).encode())


inbox_names = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + "_-.|,/é😀 "), max_size=60
)


@given(st.lists(inbox_names, min_size=1, max_size=5))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_arbitrary_keys_in_the_bucket_never_crash_a_tick(s3, bucket, names: list[str]) -> None:
    day = f"{layout.INBOX}/2026-11-29/"
    for index, name in enumerate(names):
        key = f"{day}{index:06d}.000000Z_segment_{name}.json"
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
        except ClientError:
            continue  # the store itself refuses some keys (a `..` segment): nothing to list
    found = Intake(s3, bucket).discover(IntakeCursor(), now=T0)
    for ready in found.segments:
        assert is_id("seg", ready.segment_id) and _dagster_safe(ready.segment_id)
    assert not found.sessions
