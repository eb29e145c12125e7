"""Deterministic synthetic capture video for the simulator, tests and benchmarks.

Encoded with the bundled ffmpeg through ``robotrace_assets.media`` (the one runner) and
measured from the written file with its probes, never trusted from the spec. A spec may carry
a WAV file (the narration) that is muxed in as an AAC audio track of the same length.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ffmpeg
import numpy as np

from robotrace_assets.media.audio import probe_audio_stream
from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg
from robotrace_assets.media.probe import probe_packet_times, probe_video_stream

__all__ = ["VideoInfo", "VideoSpec", "encode_synthetic_video"]

Codec = Literal["hevc", "h264"]

CONTENT_TYPE_MP4 = "video/mp4"
# Speech needs little: 64 kb/s mono AAC-LC keeps the narration intelligible to ASR.
AUDIO_BITRATE = "64k"


@dataclass(frozen=True)
class VideoSpec:
    """What synthetic clip to render; equal specs yield byte-identical files."""

    seconds: float = 4.0
    fps: int = 30
    width: int = 320
    height: int = 240
    codec: Codec = "hevc"
    seed: int = 0
    # Source frame indices removed from the stream; their timestamps stay missing (gaps).
    dropped_frames: tuple[int, ...] = ()
    # Constant bitrate target. None: constant quality (small files). Set it to get files of a
    # predictable size, e.g. large enough to need several multipart-upload parts.
    bitrate_kbps: int | None = None
    # A WAV file muxed in as the audio track (AAC), padded with silence to the video's length.
    # None: a silent capture with no audio stream at all.
    audio_wav: Path | None = None

    @property
    def source_frames(self) -> int:
        """Frames the source renders before any drops."""
        return round(self.seconds * self.fps)


@dataclass(frozen=True)
class VideoInfo:
    """Facts about an encoded clip, measured from the file rather than trusted from the spec."""

    path: Path
    codec: str
    fps: int
    width: int
    height: int
    frames: int
    duration_s: float
    size_bytes: int
    content_type: str = CONTENT_TYPE_MP4
    audio_codec: str | None = None  # None: the file has no audio stream


def _validate(spec: VideoSpec) -> None:
    if not (spec.seconds > 0 and math.isfinite(spec.seconds)):
        raise ValueError(f"seconds must be a positive finite number, got {spec.seconds}")
    if spec.fps <= 0:
        raise ValueError(f"fps must be positive, got {spec.fps}")
    if spec.width <= 0 or spec.height <= 0:
        raise ValueError(f"frame size must be positive, got {spec.width}x{spec.height}")
    # yuv420p needs even sizes and ffmpeg silently rounds odd ones down instead of failing,
    # which would make the file disagree with the spec. Encoder size limits (x265 minimum,
    # x264 maximum) are left to ffmpeg and surface as MediaError.
    if spec.width % 2 or spec.height % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {spec.width}x{spec.height}")
    if spec.seed < 0:
        raise ValueError(f"seed must be non-negative, got {spec.seed}")
    if spec.codec not in ("hevc", "h264"):
        raise ValueError(f"unsupported codec {spec.codec!r}")
    total = spec.source_frames
    if total < 1:
        raise ValueError(f"{spec.seconds}s at {spec.fps} fps renders no frames")
    bad = [i for i in spec.dropped_frames if not 0 <= i < total]
    if bad:
        raise ValueError(f"dropped_frames {bad} outside source frame range [0, {total})")
    if len(set(spec.dropped_frames)) >= total:
        raise ValueError("dropped_frames would remove every frame")
    if spec.bitrate_kbps is not None and spec.bitrate_kbps <= 0:
        raise ValueError(f"bitrate_kbps must be positive, got {spec.bitrate_kbps}")
    if spec.audio_wav is not None and not Path(spec.audio_wav).is_file():
        raise ValueError(f"audio_wav {spec.audio_wav} is not a file")


def _video(spec: VideoSpec) -> Any:
    """The synthetic picture as an ffmpeg-python stream: seeded motion, exact length, drops."""
    # Every seed-dependent knob comes from one generator, drawn in a fixed order.
    rng = np.random.default_rng(spec.seed)
    hue_offset_deg = float(rng.uniform(0.0, 360.0))
    hue_rate_deg_s = float(rng.uniform(-45.0, 45.0))
    box = max(8, min(spec.width, spec.height) // 5)
    box_rgb = "0x{:02X}{:02X}{:02X}".format(*(int(v) for v in rng.integers(40, 256, size=3)))
    freq_x, freq_y = (float(v) for v in rng.uniform(0.2, 0.9, size=2))
    phase_x, phase_y = (float(v) for v in rng.uniform(0.0, 2.0 * math.pi, size=2))

    # testsrc2 already moves (scrolling gradient and counter); the seed then changes the
    # colours over time and the Lissajous path of a solid "end-effector" marker on top.
    base = ffmpeg.input(
        f"testsrc2=size={spec.width}x{spec.height}:rate={spec.fps}", f="lavfi"
    ).filter("hue", h=f"{hue_offset_deg:.4f}+{hue_rate_deg_s:.4f}*t")
    marker = ffmpeg.input(f"color=c={box_rgb}:size={box}x{box}:rate={spec.fps}", f="lavfi")
    video = ffmpeg.overlay(
        base,
        marker,
        x=f"(W-w)*(0.5+0.45*sin({freq_x:.4f}*2*PI*t+{phase_x:.4f}))",
        y=f"(H-h)*(0.5+0.45*sin({freq_y:.4f}*2*PI*t+{phase_y:.4f}))",
        eval="frame",
        shortest=1,
    )
    # Cut by frame count, not time, so the source length is exact for any fps.
    video = video.trim(end_frame=spec.source_frames)
    dropped = sorted(set(spec.dropped_frames))
    if dropped:
        # select keeps the original pts of surviving frames, so drops leave timestamp gaps.
        keep = "not(" + "+".join(f"eq(n,{i})" for i in dropped) + ")"
        video = video.filter("select", keep)
    return video


def _codec_options(spec: VideoSpec) -> dict[str, str | int]:
    """Encoder options: deterministic whatever the core count, constant bitrate if asked."""
    codec_opts: dict[str, str | int] = {}
    rate = spec.bitrate_kbps
    if spec.codec == "hevc":
        # No thread pool and one frame thread: x265 output then cannot depend on core count.
        x265_params = "log-level=error:pools=none:frame-threads=1"
        if rate is not None:
            # strict-cbr makes x265 pad with filler data, so simple synthetic content still
            # reaches the requested size instead of undershooting it.
            x265_params += f":vbv-maxrate={rate}:vbv-bufsize={2 * rate}:strict-cbr=1"
            codec_opts["b:v"] = f"{rate}k"
        codec_opts |= {
            "vcodec": "libx265",
            # hvc1 (not hev1) is what Apple players and browsers require to play HEVC in MP4.
            "tag:v": "hvc1",
            "x265-params": x265_params,
        }
    else:
        codec_opts |= {"vcodec": "libx264", "threads": 1}
        if rate is not None:
            # HRD-compliant CBR: x264 emits filler NAL units to hold the bitrate exactly.
            codec_opts |= {
                "b:v": f"{rate}k",
                "minrate": f"{rate}k",
                "maxrate": f"{rate}k",
                "bufsize": f"{2 * rate}k",
                "x264-params": "nal-hrd=cbr",
            }
    return codec_opts


def _audio(spec: VideoSpec, wav: Path) -> tuple[Any, dict[str, str | int]]:
    """The narration as an audio stream exactly as long as the source video, and its encoder."""
    audio = (
        ffmpeg.input(f"file:{Path(wav).resolve()}", protocol_whitelist="file")
        .filter("apad", whole_dur=f"{spec.source_frames / spec.fps:.6f}")
        .filter("atrim", end=f"{spec.source_frames / spec.fps:.6f}")
    )
    options: dict[str, str | int] = {
        "acodec": "aac",
        "b:a": AUDIO_BITRATE,
        "ac": 1,
        "flags:a": "+bitexact",
    }
    return audio, options


def _build_args(spec: VideoSpec, out_path: Path) -> list[str]:
    """ffmpeg arguments rendering ``spec`` into ``out_path`` (an MP4, whatever its suffix)."""
    streams = [_video(spec)]
    audio_opts: dict[str, str | int] = {}
    if spec.audio_wav is not None:
        audio, audio_opts = _audio(spec, spec.audio_wav)
        streams.append(audio)
    out = ffmpeg.output(
        *streams,
        str(out_path),
        f="mp4",
        pix_fmt="yuv420p",
        preset="ultrafast",
        # passthrough: keep the (gappy) pts as-is instead of duplicating frames into gaps.
        fps_mode="passthrough",
        movflags="+faststart",
        # bitexact drops version strings/timestamps from the muxer and encoder metadata.
        fflags="+bitexact",
        map_metadata=-1,
        map_chapters=-1,
        **{"flags:v": "+bitexact"},
        **_codec_options(spec),
        **audio_opts,
    )
    return ffmpeg.get_args(out)


def encode_synthetic_video(path: Path, spec: VideoSpec) -> VideoInfo:
    """Render ``spec`` into an MP4 at ``path`` atomically and describe the result.

    The clip is written to a temporary file beside ``path`` and renamed into place only on
    success, so a failure never leaves a partial file (and never clobbers an existing one).
    """
    _validate(spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, unique sibling: same filesystem so the final rename is atomic. ffmpeg creates
    # it itself, so it gets ordinary umask permissions (mkstemp would force 0600).
    tmp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        run_ffmpeg(_build_args(spec, tmp_path), what=f"encoding {path.name}")
        times = probe_packet_times(tmp_path)
        stream = probe_video_stream(tmp_path)
        audio = probe_audio_stream(str(tmp_path))
        if not times:
            raise MediaError(f"encoding {path.name}: ffmpeg wrote no video packets")
        size_bytes = tmp_path.stat().st_size
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return VideoInfo(
        path=path,
        codec=stream.codec,
        fps=spec.fps,
        width=stream.width,
        height=stream.height,
        frames=len(times),
        # Span of presentation timestamps plus the last frame's nominal display time.
        duration_s=times[-1] - times[0] + 1.0 / spec.fps,
        size_bytes=size_bytes,
        content_type=CONTENT_TYPE_MP4,
        audio_codec=audio.codec if audio else None,
    )
