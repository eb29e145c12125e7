"""The depth derivative: a segment's proven depth stream probed, aligned to its video frames and
published like the proxy, through Dagster, the real store and ffmpeg; and what a segment without
depth, a hostile depth object and a replaced one get."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from robotrace_assets import catalog, layout
from robotrace_assets.columns import CATALOG_COLUMNS
from robotrace_assets.definitions import defs
from robotrace_assets.depth import FORMAT, write_depth_mkv
from robotrace_assets.derivatives.assets import DEPTH, PROXY
from robotrace_assets.derivatives.depths import (
    DEPTH_INDEX_NAME,
    INDEX_METADATA_KEY,
    NO_DEPTH,
    SCHEMA,
    make_depth,
)
from robotrace_assets.derivatives.media import DerivativeError
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.media.ffmpeg import run_ffmpeg
from robotrace_assets.media.measure import MediaProbe
from robotrace_assets.objectstore.client import pin_headers, presign_get
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    latest_metadata,
    materialized,
    published_bytes,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

PROVE = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF]
FULL = [*PROVE, PROXY]
# Seed 0: the first session's device (teleop_cell_rev4) has LiDAR. 2 s at 15 fps: 30 frames, and
# the dropped_depth_frames defect leaves out depth frames 15 and 16.
SMALL = {"seconds": 2.0, "fps": 15, "width": 96, "height": 64, "codec": "h264", "seed": 0}
DROPPED = [15, 16]


def _put_envelope(s3, bucket: str, key: str, doc: dict) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc).encode())


def _declare_instead(s3, bucket: str, segment, body: bytes) -> None:
    """A client that uploads other bytes as its depth object and declares their size and SHA-256
    (and the depth content type): the proof passes, the bytes are not depth."""
    doc = json.loads(s3.get_object(Bucket=bucket, Key=segment.envelope_key)["Body"].read())
    (declared,) = doc["objects"]
    s3.put_object(
        Bucket=bucket, Key=declared["object_key"], Body=body, ContentType=declared["content_type"]
    )
    declared.update(size_bytes=len(body), sha256=hashlib.sha256(body).hexdigest())
    _put_envelope(s3, bucket, segment.envelope_key, doc)


def _record_matches_its_columns(s3, bucket: str, segment_id: str) -> None:
    """The DEPTH_STREAMS Parquet has the declared columns and types, nulls included (as the UI
    test compares every catalog table)."""
    key = layout.catalog_key(catalog.DEPTH_STREAMS, segment_id)
    schema = pq.read_schema(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    written = [(f.name, str(f.type).replace("<element: ", "<")) for f in schema]
    assert written == [(c.name, c.type) for c in CATALOG_COLUMNS[catalog.DEPTH_STREAMS]]


def _h264(path: Path) -> bytes:
    run_ffmpeg(
        [
            *("-f", "lavfi", "-i", "testsrc=size=32x24:rate=15:duration=1"),
            *("-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mp4", "-y", str(path)),
        ],
        what="test video",
    )
    return path.read_bytes()


def test_lidar_segment_with_dropped_depth_frames(s3, bucket, instance) -> None:
    session = simulate(s3, bucket, "dropped_depth_frames@0.0", segments=1, depth=True, **SMALL)[0]
    assert session.envelope["device"]["has_lidar"]
    segment = session.segments[0]
    (declared,) = segment.envelope["objects"]
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)

    meta = latest_metadata(instance, DEPTH, segment.segment_id)
    assert meta["no_depth"] is False and meta["modality"] == "lidar"
    assert (meta["frames"], meta["dropped_frames"], meta["fps"]) == (28, 2, 15.0)
    assert (meta["video_frames"], meta["aligned_video_frames"]) == (30, 28)
    assert meta["unaligned_video_frames"] == meta["dropped_frames"] == len(DROPPED)
    assert meta["max_offset_ms"] < 1.0  # Matroska's millisecond rounding only
    assert meta["depth_object_key"] == declared["object_key"]
    assert meta["depth_object_sha256"] == declared["sha256"]
    assert meta["source_segment_id"] == segment.segment_id
    assert meta["source_sha256"] == segment.envelope["raw"]["sha256"]
    assert meta["profile_version"] == CURRENT_PROFILE.version == "d3"

    document = json.loads(published_bytes(s3, bucket, meta["object_key"], meta["sha256"]))
    assert document["schema"] == SCHEMA and document["reason"] is None
    assert document["depth"]["format"] == FORMAT
    assert document["depth"]["sha256"] == declared["sha256"]
    assert document["depth"]["unaligned_video_frames"] == 2

    index = pq.read_table(
        io.BytesIO(published_bytes(s3, bucket, meta["index_key"], meta["index_sha256"]))
    )
    assert index.num_rows == 30
    depth_index = index.column("depth_frame_index").to_pylist()
    assert [k for k, d in enumerate(depth_index) if d is None] == DROPPED
    assert depth_index[DROPPED[-1] + 1] == DROPPED[0]  # the next stored frame, not a stale one
    facts = json.loads(index.schema.metadata[INDEX_METADATA_KEY])
    assert facts["dropped_frames"] == 2

    for key in (meta["object_key"], meta["index_key"]):  # lineage and lifecycle, as the proxy
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["Metadata"]["robotrace-source-segment"] == segment.segment_id
        assert head["Metadata"]["robotrace-lifecycle"] == "regenerable"
        assert head["Metadata"]["robotrace-profile"].startswith(f"{CURRENT_PROFILE.version}:")
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        assert {"Key": "lifecycle", "Value": "regenerable"} in tags
    assert meta["index_key"].endswith(f"/{CURRENT_PROFILE.version}/{DEPTH_INDEX_NAME}")

    store = store_for(bucket)
    rows = {r["kind"]: r for r in store.read_record(catalog.DERIVATIVES, segment.segment_id) or []}
    assert rows["depth"]["sha256"] == meta["sha256"]
    assert rows["depth_index"]["sha256"] == meta["index_sha256"]
    assert rows["depth_index"]["source_key"] == segment.raw_key
    (record,) = store.read_record(catalog.DEPTH_STREAMS, segment.segment_id) or []
    assert record["modality"] == "lidar" and record["dropped_frames"] == 2
    assert len(record["times"]) == 28 and record["unaligned_video_frames"] == 2
    _record_matches_its_columns(s3, bucket, segment.segment_id)


def test_segment_without_depth_gets_the_no_depth_record(s3, bucket, instance) -> None:
    # A LiDAR device whose capture declares no depth stream: the device flag is not depth.
    session = simulate(s3, bucket, segments=1, **SMALL)[0]
    assert session.envelope["device"]["has_lidar"]
    segment = session.segments[0]
    assert not segment.envelope.get("objects")
    result = run_assets(instance, bucket, FULL, segment.segment_id)
    assert result.success, failure_messages(result)

    meta = latest_metadata(instance, DEPTH, segment.segment_id)
    assert meta["no_depth"] is True and meta["reason"] == NO_DEPTH
    assert "index_key" not in meta
    document = json.loads(published_bytes(s3, bucket, meta["object_key"], meta["sha256"]))
    assert document == {"schema": SCHEMA, "depth": None, "reason": NO_DEPTH}
    store = store_for(bucket)
    kinds = {r["kind"] for r in store.read_record(catalog.DERIVATIVES, segment.segment_id) or []}
    assert "depth" in kinds and "depth_index" not in kinds
    (record,) = store.read_record(catalog.DEPTH_STREAMS, segment.segment_id) or []
    assert record["modality"] is None and record["reason"] == NO_DEPTH
    _record_matches_its_columns(s3, bucket, segment.segment_id)


def test_hostile_depth_object_fails_its_segment_only(s3, bucket, instance, tmp_path) -> None:
    """An H.264 MP4 declared as the depth stream, with its true size and SHA-256: proven, then
    refused by the depth reader; the other segment of the same run is still derived."""
    good, hostile = simulate(s3, bucket, segments=2, depth=True, **SMALL)[0].segments
    _declare_instead(s3, bucket, hostile, _h264(tmp_path / "not-depth.mp4"))
    instance.add_dynamic_partitions("segment", [good.segment_id, hostile.segment_id])
    for segment in (good, hostile):
        assert run_assets(instance, bucket, PROVE, segment.segment_id).success

    result = defs.resolve_job_def("review_derivatives_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": good.segment_id,
            "dagster/asset_partition_range_end": hostile.segment_id,
        },
        resources=resources_for(bucket),
        raise_on_error=False,
    )
    assert not result.success
    failures = failure_messages(result)
    assert f"segment {hostile.segment_id}: depth: depth stream is h264/yuv420p" in failures
    assert "needs ffv1/gray16le" in failures and "X-Amz-Signature" not in failures
    assert materialized(instance, DEPTH, good.segment_id)
    assert materialized(instance, PROXY, good.segment_id)
    assert not materialized(instance, DEPTH, hostile.segment_id)
    assert not materialized(instance, PROXY, hostile.segment_id)
    prefix = layout.derivative_prefix(
        hostile.envelope["tenant_id"],
        hostile.envelope["media_session_id"],
        hostile.segment_id,
        CURRENT_PROFILE.version,
    )
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0


def test_depth_object_replaced_after_its_proof_is_refused(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, segments=1, depth=True, **SMALL)[0].segments[0]
    assert run_assets(instance, bucket, PROVE, segment.segment_id).success
    (declared,) = segment.envelope["objects"]
    s3.put_object(Bucket=bucket, Key=declared["object_key"], Body=b"other bytes after the proof")
    result = run_assets(instance, bucket, [PROXY], segment.segment_id, with_checks=False)
    assert not result.success
    assert "replaced" in failure_messages(result) and rules.UNCHANGED in failure_messages(result)
    assert not materialized(instance, DEPTH, segment.segment_id)


# make_depth on its own, against the real store: the read pinned to the proven ETag.
KEY = "robotics/raw/ten_01KT9WNH809PJX8W9XC34AE1HS/msess_x/seg_x.depth.mkv"
PROBE = MediaProbe("h264", 96, 64, 15.0, 30, 2.0, 0, [], 1 / 15)


def _proven(s3, bucket: str, body: bytes) -> tuple[dict, ProofRecord]:
    etag = s3.put_object(Bucket=bucket, Key=KEY, Body=body, ContentType="video/x-matroska")["ETag"]
    sha = hashlib.sha256(body).hexdigest()
    observed = {"role": "depth", "object_key": KEY, "etag": etag, "read_sha256": sha}
    envelope = {"objects": [{"role": "depth", "object_key": KEY, "format": FORMAT}]}
    return envelope, ProofRecord({"objects": json.dumps([{**observed, "size": len(body)}])})


def _pinned(s3, bucket: str):
    return lambda key, etag: (presign_get(s3, bucket, key, 600, if_match=etag), pin_headers(etag))


def _changed(s3, bucket: str, proof: ProofRecord):
    """The caller's re-check, done for real: HEAD the object and compare the proven ETag."""
    proven = proof.proven_object("depth") or {}

    def changed() -> str | None:
        etag = s3.head_object(Bucket=bucket, Key=KEY)["ETag"]
        return None if etag == proven["etag"] else f"{KEY} was replaced after its proof"

    return changed


def _lidar(tmp_path: Path) -> bytes:
    frames = np.full((30, 12, 16), 900, dtype=np.uint16)
    return write_depth_mkv(frames, 15.0, tmp_path / "d.mkv").read_bytes()


def test_make_depth_reads_only_the_proven_bytes(s3, bucket, tmp_path: Path) -> None:
    envelope, proof = _proven(s3, bucket, _lidar(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    made = make_depth(envelope, proof, PROBE, _pinned(s3, bucket), _changed(s3, bucket, proof), out)
    assert made.alignment is not None and made.alignment.unaligned_video_frames == 0
    # Same size, other bytes: the pinned read answers 412 and the re-check says why.
    body = _lidar(tmp_path)
    s3.put_object(Bucket=bucket, Key=KEY, Body=body[:-64] + bytes(64))
    with pytest.raises(DerivativeError, match=r"depth: .* was replaced after its proof"):
        make_depth(envelope, proof, PROBE, _pinned(s3, bucket), _changed(s3, bucket, proof), out)


def test_make_depth_refuses_garbage_with_the_reader_reason(s3, bucket, tmp_path: Path) -> None:
    envelope, proof = _proven(s3, bucket, b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40)
    with pytest.raises(DerivativeError, match=r"^depth: ") as refused:
        make_depth(
            envelope, proof, PROBE, _pinned(s3, bucket), _changed(s3, bucket, proof), tmp_path
        )
    assert "replaced" not in str(refused.value) and "X-Amz-Signature" not in str(refused.value)
    assert not (tmp_path / DEPTH_INDEX_NAME).exists()


def test_a_declared_format_other_than_ours_is_refused(s3, bucket, tmp_path: Path) -> None:
    envelope, proof = _proven(s3, bucket, _lidar(tmp_path))
    envelope["objects"][0]["format"] = "ros2-depth-topic"
    with pytest.raises(DerivativeError, match="declares format 'ros2-depth-topic'"):
        make_depth(
            envelope, proof, PROBE, _pinned(s3, bucket), _changed(s3, bucket, proof), tmp_path
        )
