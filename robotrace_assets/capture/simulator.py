"""A capture client simulator: synthetic sessions uploaded the way a real phone or teleop rig does.

For each media session it writes the session envelope, then for each segment: encodes real
video with ffmpeg, synthesizes trajectory/joint/force samples, writes the segment envelope
(declared size, SHA-256, part count), uploads the raw video as a multipart upload through
presigned UploadPart URLs and the sensor log through a presigned PUT, and finally drops an
inbox notification. Everything but wall-clock upload times is deterministic for a seed.
With ``narration`` on, each segment's video also carries an audio track: the task brief's
steps spoken by espeak-ng (``capture.narration``), so transcripts can be scored. With ``depth``
on, segments of a LiDAR device also declare a depth stream (``capture.depth``).

Defects can be injected per segment to exercise every failure the pipeline must catch.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args

import requests
from tqdm import tqdm

from robotrace_assets import layout
from robotrace_assets.capture.depth import declared_depth, write_synthetic_depth
from robotrace_assets.capture.media import VideoInfo, VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import fit_narration
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.depth import ROLE as DEPTH_ROLE
from robotrace_assets.envelopes import SCHEMA_VERSION, validate
from robotrace_assets.ids import new_id
from robotrace_assets.objectstore.client import S3Client, presign_put
from robotrace_assets.objectstore.multipart import (
    MIN_PART_SIZE,
    FileDigest,
    PresignedMultipartUploader,
    UploadReport,
    digest_file,
)
from robotrace_assets.sensorlog import write_parquet

DefectKind = Literal[
    "dropped_frames",  # frames missing from the video: gaps in its packet timestamps
    "clock_drift",  # the device clock runs 250 ppm fast and 40 ms ahead of the video clock
    "jerk_spike",  # a violent bump in the end-effector trajectory mid-segment
    "missing_consent",  # the session envelope has no consent receipt
    "corrupt_after_upload",  # one byte of the stored object differs from what was declared
    "truncated_upload",  # the stored object is shorter than declared
    "missing_part",  # CompleteMultipartUpload without the middle part (the store accepts it)
    "dropped_depth_frames",  # the LiDAR depth stream (with depth on) misses frames mid-segment
]
DEFECT_KINDS: tuple[str, ...] = get_args(DefectKind)
SESSION_DEFECTS = {"missing_consent"}

TASKS = (
    ("pick_and_place", ("reach", "grasp", "lift", "place", "release")),
    ("drawer_open", ("reach", "grasp_handle", "pull", "release")),
    ("towel_fold", ("grasp_corner", "fold_half", "fold_quarter", "smooth")),
)
DEVICES = (("iphone_15_pro", 1, True), ("pixel_8", 2, False), ("teleop_cell_rev4", 4, True))
BASE_TIME = datetime(2026, 6, 4, 18, 0, tzinfo=UTC)


class SimulationError(ValueError):
    pass


@dataclass(frozen=True)
class Defect:
    kind: str
    session: int = 0
    segment: int = 0

    @classmethod
    def parse(cls, text: str) -> Defect:
        """`kind` or `kind@SESSION.SEGMENT` (0-based), e.g. `missing_part@0.1`."""
        kind, _, where = text.partition("@")
        if kind not in DEFECT_KINDS:
            raise SimulationError(f"unknown defect {kind!r}; choose from {', '.join(DEFECT_KINDS)}")
        session, _, segment = (where or "0.0").partition(".")
        try:
            return cls(kind, int(session), int(segment or 0))
        except ValueError:
            raise SimulationError(f"bad defect position in {text!r}: use kind@S.G") from None


@dataclass(frozen=True)
class SimulationConfig:
    sessions: int = 1
    segments: int = 2
    seed: int = 0
    seconds: float = 4.0
    fps: int = 30
    width: int = 320
    height: int = 240
    codec: Literal["hevc", "h264"] = "hevc"
    video_bitrate_kbps: int | None = None
    sensor_hz: float = 100.0
    part_size: int = MIN_PART_SIZE
    defects: tuple[Defect, ...] = ()
    base_time: datetime = BASE_TIME
    # Spoken task narration as an AAC track (needs espeak-ng). Off by default: burst and
    # benchmark captures stay tiny and silent; `robotrace simulate` and `demo` turn it on.
    narration: bool = False
    # A LiDAR depth stream (robotrace_assets.depth's format) for every segment of a session
    # whose device has LiDAR. Off by default for the same reason.
    depth: bool = False

    def defects_for(self, session: int, segment: int | None = None) -> set[str]:
        """Session-level defects when `segment` is None, else that segment's own."""
        return {
            d.kind
            for d in self.defects
            if d.session == session
            and (d.kind in SESSION_DEFECTS) == (segment is None)
            and (segment is None or d.segment == segment)
        }


@dataclass
class SimulatedSegment:
    segment_id: str
    envelope_key: str
    raw_key: str
    sensors_key: str
    envelope: dict[str, Any]
    video: VideoInfo
    digest: FileDigest
    defects: set[str]
    upload: UploadReport | None = None
    narration: str | None = None  # the words spoken in the audio track, if it has one
    depth: Path | None = None  # the depth stream's file, when the segment has one


@dataclass
class SimulatedSession:
    index: int
    media_session_id: str
    tenant_id: str
    envelope_key: str
    envelope: dict[str, Any]
    defects: set[str]
    segments: list[SimulatedSegment] = field(default_factory=list)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class CaptureSimulator:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        config: SimulationConfig,
        workdir: Path | None = None,
        http: requests.Session | None = None,
    ) -> None:
        for defect in config.defects:
            if defect.session >= config.sessions or defect.segment >= config.segments:
                raise SimulationError(f"defect {defect} points outside the simulated batch")
        self.client = client
        self.bucket = bucket
        self.config = config
        self.workdir = workdir
        self.http = http or requests.Session()
        self.uploader = PresignedMultipartUploader(
            client, bucket, part_size=config.part_size, session=self.http
        )

    # -- the capture client's side of the ingest protocol -------------------------------------

    def put_json(self, key: str, document: dict[str, Any]) -> str:
        """PUT through a presigned URL with Content-Type bound into its signature."""
        body = json.dumps(document, indent=2, sort_keys=True).encode()
        url = presign_put(self.client, self.bucket, key, layout.JSON_CONTENT_TYPE)
        response = self.http.put(
            url, data=body, headers={"Content-Type": layout.JSON_CONTENT_TYPE}, timeout=60
        )
        if response.status_code != 200:
            raise SimulationError(f"PUT {key} refused: HTTP {response.status_code}")
        return response.headers.get("ETag", "").strip('"')

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        url = presign_put(self.client, self.bucket, key, content_type)
        with open(path, "rb") as body:
            response = self.http.put(
                url, data=body, headers={"Content-Type": content_type}, timeout=300
            )
        if response.status_code != 200:
            raise SimulationError(f"PUT {key} refused: HTTP {response.status_code}")

    def notify(self, kind: str, entity_id: str, key: str, etag: str, size: int) -> str:
        """The inbox entry the discovery sensor lists (the shape of an R2 event notification)."""
        now = datetime.now(UTC)
        inbox_key = layout.inbox_key(kind, entity_id, now)
        event = {
            "action": "PutObject",
            "bucket": self.bucket,
            "object": {"key": key, "size": size, "eTag": etag},
            "eventTime": _iso(now),
            "kind": kind,
            "id": entity_id,
        }
        validate("inbox_event", event)
        self.put_json(inbox_key, event)
        return inbox_key

    # -- generation ---------------------------------------------------------------------------

    def run(self, progress: bool = False) -> list[SimulatedSession]:
        temp = Path(tempfile.mkdtemp(prefix="robotrace-capture-", dir=self.workdir))
        sessions: list[SimulatedSession] = []
        total = self.config.sessions * self.config.segments
        try:
            with tqdm(total=total, unit="segment", disable=not progress, desc="capture") as bar:
                for session in self._plan():
                    sessions.append(session)
                    self._upload_session(session, temp, bar)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return sessions

    def _plan(self) -> Iterable[SimulatedSession]:
        cfg = self.config
        rng = random.Random(cfg.seed)
        tenant = new_id("ten", cfg.base_time, rng)
        operator = new_id("op", cfg.base_time, rng)
        for s in range(cfg.sessions):
            created = cfg.base_time + timedelta(hours=s)
            task_name, steps = TASKS[rng.randrange(len(TASKS))]
            model, tier, lidar = DEVICES[rng.randrange(len(DEVICES))]
            media_session_id = new_id("msess", created, rng)
            segment_ids = [
                new_id("seg", created + timedelta(seconds=i * cfg.seconds), rng)
                for i in range(cfg.segments)
            ]
            defects = cfg.defects_for(s)
            consent = (
                None
                if "missing_consent" in defects
                else {
                    "receipt_id": new_id("consent", created, rng),
                    "brief_accepted_at": _iso(created - timedelta(seconds=2)),
                    "co_resident_required": False,
                }
            )
            envelope = {
                "schema_version": SCHEMA_VERSION,
                "media_session_id": media_session_id,
                "session_id": new_id("sess", created, rng),
                "tenant_id": tenant,
                "operator_id": operator,
                "task_brief_id": new_id("tb", created, rng),
                "task": {"name": task_name, "steps": list(steps)},
                "device": {"model": model, "tier": tier, "has_lidar": lidar},
                "created_at": _iso(created),
                "consent": consent,
                "license": {
                    "scope_id": new_id("lic", created, rng),
                    "allowed_use": ["robotics_training", "internal_eval"],
                },
                "safety_rules_version": "v4.2",
                "environment": {"room_scale_mesh": lidar, "blur_enforced": rng.random() < 0.8},
                "segment_ids": segment_ids,
            }
            validate("media_session", envelope)
            yield SimulatedSession(
                index=s,
                media_session_id=media_session_id,
                tenant_id=tenant,
                envelope_key=layout.session_envelope_key(media_session_id),
                envelope=envelope,
                defects=defects,
            )

    def _upload_session(self, session: SimulatedSession, temp: Path, bar: tqdm) -> None:
        etag = self.put_json(session.envelope_key, session.envelope)
        size = len(json.dumps(session.envelope, indent=2, sort_keys=True).encode())
        self.notify("session", session.media_session_id, session.envelope_key, etag, size)
        for index, segment_id in enumerate(session.envelope["segment_ids"]):
            segment = self._make_segment(session, index, segment_id, temp)
            session.segments.append(segment)
            self._upload_segment(segment, temp)
            bar.update(1)

    def _make_segment(
        self, session: SimulatedSession, index: int, segment_id: str, temp: Path
    ) -> SimulatedSegment:
        cfg = self.config
        defects = cfg.defects_for(session.index, index)
        seed = cfg.seed * 100_003 + session.index * 1_009 + index
        video_path = temp / f"{segment_id}.mp4"
        narration = self._narrate(session, temp / f"{segment_id}.narration.wav")
        video = (
            self._encode_narrated_video(video_path, seed, defects, narration[1])
            if narration
            else self._encode_video(video_path, seed, defects)
        )
        started = cfg.base_time + timedelta(hours=session.index, seconds=index * cfg.seconds)
        sensors_path = temp / f"{segment_id}.sensors.parquet"
        self._write_trajectory(sensors_path, seed, defects, started)
        depth = self._write_depth(session, temp / f"{segment_id}.depth.mkv", seed, defects)
        digest = digest_file(video_path, cfg.part_size)
        if "missing_part" in defects and len(digest.parts) < 3:
            raise SimulationError(
                f"missing_part needs >= 3 parts but {segment_id} has {len(digest.parts)}; "
                "raise --video-bitrate-kbps or --seconds, or lower --part-size"
            )
        envelope = self._segment_envelope(
            session,
            index,
            segment_id,
            started,
            video,
            digest,
            digest_file(sensors_path, MIN_PART_SIZE),
            seed,
        )
        if depth is not None:
            envelope["objects"] = [self._depth_object(session, segment_id, depth)]
        validate("segment", envelope)
        return SimulatedSegment(
            segment_id=segment_id,
            envelope_key=layout.segment_envelope_key(segment_id),
            raw_key=envelope["raw"]["object_key"],
            sensors_key=envelope["sensors"]["object_key"],
            envelope=envelope,
            video=video,
            digest=digest,
            defects=defects,
            narration=narration[0] if narration else None,
            depth=depth,
        )

    def _write_depth(
        self, session: SimulatedSession, path: Path, seed: int, defects: set[str]
    ) -> Path | None:
        cfg = self.config
        if not (cfg.depth and session.envelope["device"]["has_lidar"]):
            return None
        return write_synthetic_depth(path, cfg, seed=seed, drop="dropped_depth_frames" in defects)

    def _depth_object(
        self, session: SimulatedSession, segment_id: str, path: Path
    ) -> dict[str, Any]:
        key = layout.raw_depth_key(session.tenant_id, session.media_session_id, segment_id)
        return declared_depth(key, path)

    def _narrate(self, session: SimulatedSession, wav: Path) -> tuple[str, Path] | None:
        """(words, WAV) of the task narration that fits the segment, if narration is on."""
        if not self.config.narration:
            return None
        task = session.envelope["task"]
        spoken = fit_narration(task["name"], task["steps"], self.config.seconds, wav)
        return (spoken.text, spoken.wav) if spoken else None

    def _encode_video(self, path: Path, seed: int, defects: set[str]) -> VideoInfo:
        return encode_synthetic_video(path, self._video_spec(seed, defects))

    def _encode_narrated_video(
        self, path: Path, seed: int, defects: set[str], wav: Path
    ) -> VideoInfo:
        # Its own method: subclasses that reuse or pad silent clips (bursts, topology tests)
        # override _encode_video and never see narrated segments.
        return encode_synthetic_video(path, replace(self._video_spec(seed, defects), audio_wav=wav))

    def _video_spec(self, seed: int, defects: set[str]) -> VideoSpec:
        cfg = self.config
        frames = int(cfg.seconds * cfg.fps)
        dropped = (
            tuple(range(frames // 3, frames // 3 + max(3, frames // 20)))
            if "dropped_frames" in defects
            else ()
        )
        spec = VideoSpec(
            seconds=cfg.seconds,
            fps=cfg.fps,
            width=cfg.width,
            height=cfg.height,
            codec=cfg.codec,
            seed=seed,
            dropped_frames=dropped,
        )
        if cfg.video_bitrate_kbps:
            spec = replace(spec, bitrate_kbps=cfg.video_bitrate_kbps)
        return spec

    def _write_trajectory(
        self, path: Path, seed: int, defects: set[str], started: datetime
    ) -> None:
        cfg = self.config
        trajectory = synthesize_trajectory(
            TrajectorySpec(
                seconds=cfg.seconds,
                hz=cfg.sensor_hz,
                seed=seed,
                jerk_spikes=(cfg.seconds / 2,) if "jerk_spike" in defects else (),
                clock_skew_ppm=250.0 if "clock_drift" in defects else 0.0,
                clock_offset_s=0.040 if "clock_drift" in defects else 0.0,
                start_time_ns=int(started.timestamp() * 1e9),
            )
        )
        write_parquet(trajectory, path)

    def _segment_envelope(
        self,
        session: SimulatedSession,
        index: int,
        segment_id: str,
        started: datetime,
        video: VideoInfo,
        digest: FileDigest,
        sensors_digest: FileDigest,
        seed: int,
    ) -> dict[str, Any]:
        """The segment envelope a capture client writes for these files."""
        cfg = self.config
        tenant = session.tenant_id
        steps = session.envelope["task"]["steps"]
        step_len = cfg.seconds / len(steps)
        return {
            "schema_version": SCHEMA_VERSION,
            "media_session_id": session.media_session_id,
            "segment_id": segment_id,
            "capture_id": new_id("cap", started, random.Random(seed)),
            "tenant_id": tenant,
            "segment_index": index,
            "started_at": _iso(started),
            "ended_at": _iso(started + timedelta(seconds=cfg.seconds)),
            "boundary_reason": "task_step" if index + 1 < cfg.segments else "end_of_session",
            "raw": {
                "object_key": layout.raw_video_key(tenant, session.media_session_id, segment_id),
                "size_bytes": digest.size,
                "sha256": digest.sha256_hex,
                "content_type": video.content_type,
                "codec": video.codec,
                "fps": video.fps,
                "width": video.width,
                "height": video.height,
                "frames": video.frames,
            },
            "sensors": {
                "object_key": layout.raw_sensors_key(tenant, session.media_session_id, segment_id),
                "size_bytes": sensors_digest.size,
                "sha256": sensors_digest.sha256_hex,
                "format": "parquet",
                "hz": cfg.sensor_hz,
            },
            "upload": {
                "part_count": len(digest.parts),
                "part_size_bytes": cfg.part_size,
                "checksum_algorithm": "SHA256",
            },
            "task_steps": [
                {
                    "label": label,
                    "start_s": round(i * step_len, 6),
                    "end_s": round((i + 1) * step_len, 6),
                }
                for i, label in enumerate(steps)
            ],
        }

    def _upload_segment(self, segment: SimulatedSegment, temp: Path) -> None:
        # The envelope goes first, as a client opens its upload: until the raw object is
        # complete the pipeline sees a pending segment and waits for it.
        etag = self.put_json(segment.envelope_key, segment.envelope)
        size = len(json.dumps(segment.envelope, indent=2, sort_keys=True).encode())
        self.notify("segment", segment.segment_id, segment.envelope_key, etag, size)
        self.put_file(
            segment.sensors_key,
            temp / f"{segment.segment_id}.sensors.parquet",
            layout.PARQUET_CONTENT_TYPE,
        )
        for declared in segment.envelope.get("objects", ()):
            if declared["role"] == DEPTH_ROLE and segment.depth is not None:
                self.put_file(declared["object_key"], segment.depth, declared["content_type"])
        video_path = segment.video.path
        content_type = segment.video.content_type
        if "truncated_upload" in segment.defects:
            video_path = _truncated_copy(video_path, temp, keep=segment.digest.size - 1000)
            segment.upload = self.uploader.upload(video_path, segment.raw_key, content_type)
        elif "missing_part" in segment.defects:
            numbers = [p.number for p in segment.digest.parts]
            segment.upload = self.uploader.upload(
                video_path,
                segment.raw_key,
                content_type,
                digest=segment.digest,
                complete_parts=[n for n in numbers if n != 2],
            )
        else:
            segment.upload = self.uploader.upload(
                video_path, segment.raw_key, content_type, digest=segment.digest
            )
        if "corrupt_after_upload" in segment.defects:
            # The store now holds bytes that differ from the declared SHA-256 in one place,
            # at the same size: only a full read of the bytes can tell.
            corrupted = _flipped_copy(video_path, temp, offset=segment.digest.size // 2)
            segment.upload = self.uploader.upload(corrupted, segment.raw_key, content_type)


def _truncated_copy(path: Path, temp: Path, keep: int) -> Path:
    out = temp / f"{path.stem}.truncated{path.suffix}"
    with open(path, "rb") as src, open(out, "wb") as dst:
        dst.write(src.read(keep))
    return out


def _flipped_copy(path: Path, temp: Path, offset: int) -> Path:
    out = temp / f"{path.stem}.corrupted{path.suffix}"
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    out.write_bytes(bytes(data))
    return out
