"""Review derivatives of proven segments: proxy, thumbnails, contact sheet, the media probe and
the audio for the transcript, all from ONE ffmpeg decode of the raw segment streamed from a
short-lived signed GET URL; the transcript (derivatives/transcripts.py) recognized from that
audio; and the label track (derivatives/labels.py), built in the same step from that pass's media
probe (frame count, fps, gaps), the proven trajectory, the envelopes and the review state; and
the depth derivative (derivatives/depths.py): the proven depth object probed and aligned to the
pass's video frames, or an explicit no-depth record.

The label track's reviewer tags are those known when it was derived (usually none: derivatives
come before review). It is not re-derived when a decision arrives; the LeRobot export joins the
current review state itself.

Backfills and intake batches run many segments per run (BackfillPolicy.multi_run; run start-up
costs seconds, a segment's derivatives far less); batching.materialize_each gives each segment its
own outcome: a good segment is recorded as materialized even when a run-mate is bad, and the run
then fails naming the bad ones.
"""

import base64
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    Failure,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from robotrace_assets import catalog, layout
from robotrace_assets.batching import SEGMENT_BACKFILL_POLICY, SEGMENTS_PER_RUN, materialize_each
from robotrace_assets.derivatives.depths import (
    DepthResult,
    depth_metadata,
    depth_stream_record,
    make_depth,
)
from robotrace_assets.derivatives.labels import (
    LabelError,
    LabelInputs,
    LabelThresholds,
    LabelTrack,
    build_label_track,
    clip_tags_from_reviews,
)
from robotrace_assets.derivatives.media import DerivativeError, DerivativeSet, make_derivatives
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.publish import (
    DerivativeFile,
    PublishedDerivative,
    PublishError,
    publish,
)
from robotrace_assets.derivatives.transcript import TranscriptResult
from robotrace_assets.derivatives.transcripts import (
    TRANSCRIPT_NAME,
    TRANSCRIPT_VTT_NAME,
    make_transcript,
    transcript_metadata,
)
from robotrace_assets.objectstore.client import ObjectChanged, get_pinned, pin_headers
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import confirm_unchanged, require_proven
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.records.segments import SegmentRecord, load_segment
from robotrace_assets.records.sessions import load_session_envelope
from robotrace_assets.resources import AlertsResource, ObjectStoreResource
from robotrace_assets.robotlogs import RobotLogError, read_segment_log
from robotrace_assets.ui_metadata import OWNERS, catalog_table

PROXY = AssetKey(["derivatives", "proxy"])
THUMBNAILS = AssetKey(["derivatives", "thumbnails"])
CONTACT_SHEET = AssetKey(["derivatives", "contact_sheet"])
MEDIA_PROBE = AssetKey(["segments", "media_probe"])
LABELS = AssetKey(["derivatives", "labels"])
TRANSCRIPT = AssetKey(["derivatives", "transcript"])
DEPTH = AssetKey(["derivatives", "depth"])
DERIVATIVE_KEYS = (PROXY, THUMBNAILS, CONTACT_SHEET, MEDIA_PROBE, LABELS, TRANSCRIPT, DEPTH)
LABELS_NAME, LABELS_VTT_NAME = "labels.parquet", "labels.vtt"
VTT_CONTENT_TYPE = "text/vtt"
SEGMENTS_PER_BACKFILL_RUN = SEGMENTS_PER_RUN

# Blocking checks gate automation too; require_proven covers manual runs and backfills.
PROVEN_AND_EAGER = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)

_DESCRIPTIONS = {
    PROXY: "H.264 MP4 review proxy (faststart, bounded height, a keyframe a second).",
    THUMBNAILS: "Evenly spaced JPEG stills of the segment.",
    CONTACT_SHEET: "One tiled image of the stills; shown in the materialization metadata.",
    MEDIA_PROBE: "Codec, fps, frames, resolution, duration, dropped frames and timestamp gaps "
    "from the raw video's packet timestamps, for clip scoring.",
    LABELS: "Per-frame label track (task step, motion phase, privacy flags, reviewer tags known "
    "at derivation) as Parquet and WebVTT.",
    TRANSCRIPT: "The narration as WebVTT and JSON with word times, recognized offline "
    "(ROBOTRACE_TRANSCRIPT_ENGINE); an explicit no-audio record for a silent segment.",
    DEPTH: "The declared depth stream's frames, drops and modality, aligned to the video frames "
    "(depth.json and a per-frame index as Parquet); an explicit no-depth record without one.",
}
_KINDS = {
    PROXY: {"ffmpeg", "s3", "mp4"},
    THUMBNAILS: {"ffmpeg", "s3", "jpeg"},
    CONTACT_SHEET: {"ffmpeg", "s3", "jpeg"},
    MEDIA_PROBE: {"ffmpeg", "parquet"},
    LABELS: {"s3", "parquet"},
    TRANSCRIPT: {"s3", "json"},
    DEPTH: {"s3", "json", "parquet"},
}
# The catalog table each asset's column schema shows.
_TABLES = {MEDIA_PROBE: catalog.MEDIA_PROBES, DEPTH: catalog.DEPTH_STREAMS}
_SIDE_FILES = (  # (kind, name, content type) of the label track and transcript
    ("labels", LABELS_NAME, layout.PARQUET_CONTENT_TYPE),
    ("labels_vtt", LABELS_VTT_NAME, VTT_CONTENT_TYPE),
    ("transcript", TRANSCRIPT_NAME, layout.JSON_CONTENT_TYPE),
    ("transcript_vtt", TRANSCRIPT_VTT_NAME, VTT_CONTENT_TYPE),
)


@dataclass(frozen=True)
class SegmentDerivatives:
    segment_id: str
    results: list[MaterializeResult]  # one per derivative asset


def _files(
    made: DerivativeSet, prefix: str, side_dir: Path, side: tuple[tuple[str, str, str], ...]
) -> list[DerivativeFile]:
    files = [DerivativeFile("proxy", made.proxy, f"{prefix}proxy.mp4", layout.VIDEO_CONTENT_TYPE)]
    files += [
        DerivativeFile(
            "thumbnail", path, f"{prefix}thumbnails/{path.name}", layout.JPEG_CONTENT_TYPE
        )
        for path in made.thumbnails
    ]
    files.append(
        DerivativeFile(
            "contact_sheet",
            made.contact_sheet,
            f"{prefix}contact_sheet.jpg",
            layout.JPEG_CONTENT_TYPE,
        )
    )
    for kind, name, content_type in side:
        files.append(DerivativeFile(kind, side_dir / name, f"{prefix}{name}", content_type))
    return files


def _pinned(store: ObjectStoreResource, key: str, etag: str) -> tuple[str, dict[str, str]]:
    """A short-lived signed URL of an object and the headers that pin it to the proven bytes:
    every request ffmpeg makes carries If-Match on the proven ETag, so an object replaced since
    the proof answers 412 instead of feeding other bytes."""
    return store.presigned_get(key, ttl_s=15 * 60, if_match=etag), pin_headers(etag)


def _pinned_source(
    store: ObjectStoreResource, row: SegmentRecord, proof: ProofRecord
) -> tuple[str, dict[str, str]]:
    """The raw segment, pinned to its proven bytes."""
    return _pinned(store, row.raw_key, proof.row["etag"])


def _make_pinned(
    store: ObjectStoreResource,
    alerts: AlertsResource,
    proof: ProofRecord,
    row: SegmentRecord,
    out_dir: Path,
) -> DerivativeSet:
    """The derivatives made from the proven bytes only; a failure caused by a replaced or
    deleted source is reported (and the proof marked stale) as that, not as an ffmpeg error."""
    url, headers = _pinned_source(store, row, proof)
    try:
        return make_derivatives(
            url,
            out_dir,
            CURRENT_PROFILE,
            duration_hint_s=row.duration_s,
            headers=headers,
            audio_pcm=True,  # the transcript's audio, from the same decode
        )
    except DerivativeError as error:
        if not (unchanged := confirm_unchanged(store, alerts, proof)).passed:
            raise DerivativeError(unchanged.description) from None
        raise error


def _lineage(segment_id: str, row: SegmentRecord, proof: ProofRecord) -> dict[str, str]:
    """What every derivative of the segment records about its source and how it was made."""
    return {
        "source_segment_id": segment_id,
        "source_key": row.raw_key,
        "source_sha256": proof.row["sha256"],  # verified: the proof read every byte
        "profile_version": CURRENT_PROFILE.version,
        "profile_fingerprint": CURRENT_PROFILE.fingerprint(),
    }


def _proven_trajectory(
    store: ObjectStoreResource,
    alerts: AlertsResource,
    row: SegmentRecord,
    proof: ProofRecord,
    device_model: str,
) -> tuple[pa.Table | None, str | None]:
    """The trajectory from exactly the proven bytes, or None and why. A log that cannot be
    read still gets a label track (phases "unknown"); a log replaced since its proof fails the
    segment like a replaced video does."""
    if not row.sensors_key:
        return None, "the segment declares no sensor log"
    proven = proof.proven_object("sensors")
    if proven is None or not proven.get("etag"):
        return None, "the sensor log was not proven"
    try:
        data = get_pinned(store.client(), store.bucket_name, row.sensors_key, proven["etag"])
    except ObjectChanged as error:
        confirm_unchanged(store, alerts, proof)  # records the proof as stale and alerts
        raise DerivativeError(f"sensor log: {error}") from None
    if hashlib.sha256(data).hexdigest() != proven.get("read_sha256"):
        raise DerivativeError("sensor log bytes differ from the proven ones")
    fmt = row.sensors_format
    try:
        table = read_segment_log(data, fmt, tenant_id=row.tenant_id, device_model=device_model)
    except RobotLogError as error:
        return None, f"sensor log ({fmt}) unreadable: {error}"
    return table, None


def _make_labels(
    store: ObjectStoreResource,
    alerts: AlertsResource,
    row: SegmentRecord,
    proof: ProofRecord,
    made: DerivativeSet,
    out_dir: Path,
) -> LabelTrack:
    """The label track from the pass's probe (no second decode), written into ``out_dir``."""
    session = load_session_envelope(store, row.media_session_id, store.known_tenants)
    trajectory, problem = _proven_trajectory(store, alerts, row, proof, session.device_model)
    reviews = store.read_record(catalog.CLIP_REVIEWS, row.segment_id) or []
    inputs = LabelInputs(
        frames=made.probe.frames,
        fps=made.probe.fps,
        timestamp_gaps=made.probe.timestamp_gaps,
        task_steps=row.envelope.get("task_steps") or [],
        task_brief=session.task_name or session.task_brief_id,
        blur_enforced=session.blur_enforced,
        clip_tags=clip_tags_from_reviews(reviews),
        trajectory=trajectory,
        trajectory_problem=problem,
    )
    limits = LabelThresholds(
        made.profile.label_moving_speed_m_s, made.profile.label_contact_force_n
    )
    try:
        track = build_label_track(inputs, limits)
    except LabelError as error:
        raise DerivativeError(f"label track: {error}") from None
    track.write_parquet(out_dir / LABELS_NAME)
    track.write_webvtt(out_dir / LABELS_VTT_NAME)
    return track


def _publish_set(
    store: ObjectStoreResource,
    made: DerivativeSet,
    row: SegmentRecord,
    lineage: dict[str, str],
    side_dir: Path,
    depth: DepthResult,
) -> list[PublishedDerivative]:
    prefix = layout.derivative_prefix(
        row.tenant_id, row.media_session_id, lineage["source_segment_id"], made.profile.version
    )
    return publish(
        store.client(),
        store.bucket_name,
        _files(made, prefix, side_dir, _SIDE_FILES + depth.files),
        source_segment_id=lineage["source_segment_id"],
        source_key=lineage["source_key"],
        source_sha256=lineage["source_sha256"],
        profile_version=lineage["profile_version"],
        profile_fingerprint=lineage["profile_fingerprint"],
        expiry_days=store.derivative_expiry_days,
        tagging=not store.is_r2,  # R2 has no object tagging; metadata carries it
    )


def _write_records(
    store: ObjectStoreResource,
    segment_id: str,
    made: DerivativeSet,
    published: list[PublishedDerivative],
    lineage: dict[str, str],
    depth: DepthResult,
) -> None:
    rows = [{**asdict(p), **lineage} for p in published]
    store.write_record(catalog.DERIVATIVES, segment_id, rows)
    probe = asdict(made.probe)
    store.write_record(catalog.MEDIA_PROBES, segment_id, [{"segment_id": segment_id, **probe}])
    # Written with its declared types: a segment without depth has every depth column null.
    depth_key = layout.catalog_key(catalog.DEPTH_STREAMS, segment_id)
    store.put_bytes(depth_key, depth_stream_record(segment_id, depth), layout.PARQUET_CONTENT_TYPE)


def derive_segment(
    context: AssetExecutionContext,
    store: ObjectStoreResource,
    alerts: AlertsResource,
    segment_id: str,
) -> SegmentDerivatives:
    proof = require_proven(context.instance, store, alerts, segment_id)
    row = load_segment(store, segment_id)
    lineage = _lineage(segment_id, row, proof)
    with tempfile.TemporaryDirectory(prefix="robotrace-derivatives-") as temp:
        made = _make_pinned(store, alerts, proof, row, Path(temp))
        side_dir = Path(temp) / "side"  # labels, depth and transcript, published with the rest
        side_dir.mkdir()
        track = _make_labels(store, alerts, row, proof, made, side_dir)
        depth = _make_depth(store, alerts, row, proof, made, side_dir)  # cheap: a packet read
        transcript = make_transcript(made, partial(_pinned_source, store, row, proof), side_dir)
        published = _publish_set(store, made, row, lineage, side_dir, depth)
        sheet_b64 = base64.b64encode(made.contact_sheet.read_bytes()).decode()
    _write_records(store, segment_id, made, published, lineage, depth)
    events = _segment_events(segment_id, made, published, lineage, sheet_b64, track, transcript)
    events.results.append(_event(lineage, DEPTH, depth_metadata(_by_kind(published), depth)))
    return events


def _make_depth(
    store: ObjectStoreResource,
    alerts: AlertsResource,
    row: SegmentRecord,
    proof: ProofRecord,
    made: DerivativeSet,
    out_dir: Path,
) -> DepthResult:
    """The depth derivative, read pinned to the proven depth object's ETag."""

    def changed() -> str | None:  # records the proof as stale and alerts when it is
        unchanged = confirm_unchanged(store, alerts, proof)
        return None if unchanged.passed else unchanged.description

    return make_depth(row.envelope, proof, made.probe, partial(_pinned, store), changed, out_dir)


def _by_kind(published: list[PublishedDerivative]) -> dict[str, list[Any]]:
    by_kind: dict[str, list[Any]] = {}
    for item in published:
        by_kind.setdefault(item.kind, []).append(item)
    return by_kind


def _event(lineage: dict[str, str], key: AssetKey, metadata: dict[str, Any]) -> MaterializeResult:
    common = {k: MetadataValue.text(str(v)) for k, v in lineage.items()}
    return MaterializeResult(asset_key=key, metadata={**common, **metadata})


def _segment_events(
    segment_id: str,
    made: DerivativeSet,
    published: list[PublishedDerivative],
    lineage: dict[str, str],
    sheet_b64: str,
    track: LabelTrack,
    transcript: TranscriptResult,
) -> SegmentDerivatives:
    """One materialization per derivative asset of the segment, with its lineage."""
    by_kind = _by_kind(published)
    proxy, sheet = by_kind["proxy"][0], by_kind["contact_sheet"][0]
    event = partial(_event, lineage)

    return SegmentDerivatives(
        segment_id,
        [
            event(
                PROXY,
                {
                    "object_key": proxy.key,
                    "size_bytes": proxy.size_bytes,
                    "sha256": proxy.sha256,
                    "verified": True,
                    "encode_seconds": round(made.seconds, 2),
                },
            ),
            event(
                THUMBNAILS,
                {
                    "count": len(by_kind["thumbnail"]),
                    "object_keys": MetadataValue.json([t.key for t in by_kind["thumbnail"]]),
                    "bytes": sum(t.size_bytes for t in by_kind["thumbnail"]),
                    "verified": True,
                },
            ),
            event(
                CONTACT_SHEET,
                {
                    "object_key": sheet.key,
                    "size_bytes": sheet.size_bytes,
                    "sha256": sheet.sha256,
                    "preview": MetadataValue.md(
                        f"![contact sheet](data:image/jpeg;base64,{sheet_b64})"
                    ),
                },
            ),
            event(
                MEDIA_PROBE,
                {
                    "codec": made.probe.codec,
                    "resolution": f"{made.probe.width}x{made.probe.height}",
                    "fps": made.probe.fps,
                    "frames": made.probe.frames,
                    "duration_s": made.probe.duration_s,
                    "dropped_frames": made.probe.dropped_frames,
                    "max_gap_s": made.probe.max_gap_s,
                    "timestamp_gaps": MetadataValue.json(
                        [list(gap) for gap in made.probe.timestamp_gaps]
                    ),
                },
            ),
            event(LABELS, _label_metadata(by_kind, track)),
            event(TRANSCRIPT, transcript_metadata(by_kind, transcript)),
        ],
    )


def _label_metadata(by_kind: dict[str, list[Any]], track: LabelTrack) -> dict[str, Any]:
    labels, vtt = by_kind["labels"][0], by_kind["labels_vtt"][0]
    return {
        "object_key": labels.key,
        "size_bytes": labels.size_bytes,
        "sha256": labels.sha256,
        "webvtt_key": vtt.key,
        "webvtt_sha256": vtt.sha256,
        "verified": True,
        "frames": track.table.num_rows,
        "task_source": track.task_source,
        "motion_phases": MetadataValue.json(track.phase_counts),
        "motion_reason": track.motion_reason or "",
    }


@multi_asset(
    name="review_derivatives",
    specs=[
        AssetSpec(
            key,
            deps=[PROVIDER_PROOF],
            # One group for the one ffmpeg pass, so the group lineage reads proof -> derivatives.
            group_name="derivatives",
            description=_DESCRIPTIONS[key],
            kinds=_KINDS[key],
            owners=OWNERS,
            # The profile decides the bytes; the probe measures the source whatever it is.
            code_version=None if key == MEDIA_PROBE else CURRENT_PROFILE.version,
            metadata=catalog_table(_TABLES.get(key, catalog.DERIVATIVES)),
            automation_condition=PROVEN_AND_EAGER,
        )
        for key in DERIVATIVE_KEYS
    ],
    partitions_def=segment_partitions,
    backfill_policy=SEGMENT_BACKFILL_POLICY,
    op_tags={"robotrace/io": "heavy"},
)
def review_derivatives(
    context: AssetExecutionContext, object_store: ObjectStoreResource, alerts: AlertsResource
) -> Iterator[MaterializeResult]:
    yield from materialize_each(
        context, lambda s: derivative_results(context, object_store, alerts, s)
    )


def derivative_results(
    context: AssetExecutionContext,
    store: ObjectStoreResource,
    alerts: AlertsResource,
    segment_id: str,
) -> list[MaterializeResult]:
    try:
        made = derive_segment(context, store, alerts, segment_id)
    except (DerivativeError, PublishError, RecordError, LabelError) as error:
        raise Failure(f"segment {segment_id}: {error}", allow_retries=False) from None
    return made.results
