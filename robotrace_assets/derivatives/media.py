"""Review derivatives of one capture segment from a single ffmpeg decode (no Dagster here).

``make_derivatives`` runs ONE ffmpeg process that reads and decodes the source once and
splits the decoded frames three ways::

    [0:v:0] split=2 [proxy][stills]
      [proxy]  scale=-2:min(H,even(ih)), format=yuv420p -> libx264 MP4 (+faststart)
      [stills] select=<N evenly spaced frames>, split=2 [thumbs][sheet]
        [thumbs] scale=W:-2                -> thumb_%02d.jpg
        [sheet]  scale=w:-2, tile=CxR      -> contact_sheet.jpg
    0:v:0 (stream copy, no decode)         -> framemd5 packet log -> MediaProbe

The stills branch selects its frames before scaling, so only N frames are ever scaled or
JPEG-encoded; the packet log is a stream copy of the very packets being decoded, so the probe
costs no second read. ``make_separately`` and ``make_proxy_only`` are the baselines the
benchmark compares against (one decode per derivative, and the proxy alone).

The source is often a presigned GET URL, which is a credential: it is passed to ffmpeg but
scrubbed from every message this module produces, and exceptions raised here never chain one
that carries the ffmpeg argv.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import ffmpeg

from robotrace_assets.capture.media import count_dropped_frames, ffmpeg_exe

__all__ = [
    "DerivativeError",
    "DerivativeProfile",
    "DerivativeSet",
    "MediaProbe",
    "make_derivatives",
    "make_proxy_only",
    "make_separately",
    "scrub",
]

PROXY_NAME = "proxy.mp4"
THUMB_PATTERN = "thumb_%02d.jpg"
THUMB_GLOB = "thumb_*.jpg"
SHEET_NAME = "contact_sheet.jpg"
_PACKETS_NAME = "packets.framemd5"

# A gap is a timestamp step longer than this many nominal frame periods.
GAP_FACTOR = 1.5
# Segments are minutes at most; an hour means a stalled URL or a hung process.
_FFMPEG_TIMEOUT_S = 3600.0
# Stalled network reads fail after this instead of hanging until the overall timeout.
_RW_TIMEOUT_US = 30_000_000
# Enough of ffmpeg's complaint to act on, short enough for an exception or a log line.
_TAIL_LINES = 8
_TAIL_CHARS = 600
# mjpeg quality scale (2 best .. 31 worst); 3 is visually clean at a few tens of KB a still.
_JPEG_QUALITY = 3
# Packets may cover less than the container's declared duration by this much (edit lists,
# a slightly longer audio track) before the file counts as truncated.
_TRUNCATION_SLACK_S = 0.5
_TRUNCATION_SLACK_FRAMES = 3
_X264_PRESETS = frozenset(
    {
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
        "placebo",
    }
)
_URL_SCHEMES = ("http", "https")


class DerivativeError(RuntimeError):
    """The source could not be turned into derivatives; the message is safe to log."""


@dataclass(frozen=True)
class DerivativeProfile:
    """Everything that decides how derivatives look; its fingerprint is stored beside them."""

    version: str = "d1"
    proxy_height: int = 480
    proxy_crf: int = 28
    proxy_preset: str = "veryfast"
    # A keyframe at least this often keeps scrubbing in the review player responsive.
    keyframe_interval_s: float = 1.0
    thumbnails: int = 8
    thumbnail_width: int = 320
    sheet_columns: int = 4
    sheet_tile_width: int = 240
    threads: int = 2

    def __post_init__(self) -> None:
        # yuv420p (x264 and JPEG) needs even sizes; odd ones fail deep inside ffmpeg.
        for name in ("proxy_height", "thumbnail_width", "sheet_tile_width"):
            value = getattr(self, name)
            if value < 2 or value % 2:
                raise ValueError(f"{name} must be an even number >= 2, got {value}")
        for name in ("thumbnails", "sheet_columns", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.proxy_crf <= 51:
            raise ValueError(f"proxy_crf must be within 0..51, got {self.proxy_crf}")
        if self.proxy_preset not in _X264_PRESETS:
            raise ValueError(f"unknown x264 preset {self.proxy_preset!r}")
        if not (self.keyframe_interval_s > 0 and math.isfinite(self.keyframe_interval_s)):
            raise ValueError(
                f"keyframe_interval_s must be positive, got {self.keyframe_interval_s}"
            )
        if not self.version:
            raise ValueError("version must not be empty")

    @property
    def sheet_rows(self) -> int:
        return math.ceil(self.thumbnails / self.sheet_columns)

    def fingerprint(self) -> str:
        """Short stable hash of every field: equal fingerprints mean identically made."""
        # sort_keys and repr-stable JSON floats keep this independent of field order.
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MediaProbe:
    """The source's first video stream, measured from the packets the derivatives read."""

    codec: str
    width: int
    height: int
    # Nominal rate: the median packet interval, so dropped frames do not lower it.
    fps: float
    # Video packets in the stream (= frames for the codecs cameras write).
    frames: int
    # First to last timestamp plus one nominal frame period.
    duration_s: float
    dropped_frames: int
    # (start, length) in seconds: start is the timestamp of the last frame before the gap,
    # relative to the first frame; length is the interval to the next frame.
    timestamp_gaps: list[tuple[float, float]]
    # Longest interval between consecutive frames (one frame period when nothing dropped).
    max_gap_s: float


@dataclass(frozen=True)
class DerivativeSet:
    proxy: Path
    thumbnails: list[Path]
    contact_sheet: Path
    probe: MediaProbe
    profile: DerivativeProfile
    # Wall time of all ffmpeg work for this set (preflight and repair passes included).
    seconds: float


# --------------------------------------------------------------------------- secrets


_SECRET_PARAM_RE = re.compile(
    r"(?i)((?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|token|sig)=)"
    r"[^&\s'\"]+"
)


def scrub(text: str, source: str) -> str:
    """``text`` with the source (a possible presigned URL) and its signature parts removed.

    ffmpeg may echo the whole URL, only its query, or a percent-encoded form; all of those
    are replaced, and any signature-looking query parameter is redacted as a backstop.
    """
    secrets: set[str] = set()
    if source:
        secrets.add(source)
        parts = urlsplit(source)
        if parts.query:
            secrets.add(parts.query)
            for _, value in parse_qsl(parts.query, keep_blank_values=False):
                # Short values (e.g. "X-Amz-Expires=3600") are not secret and too common.
                if len(value) >= 8:
                    secrets.update({value, quote(value, safe="")})
        if parts.password:
            secrets.add(parts.password)
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<source>")
    return _SECRET_PARAM_RE.sub(r"\1<redacted>", text)


def _is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in _URL_SCHEMES


# --------------------------------------------------------------------------- running ffmpeg


def _run(
    outputs: Sequence[Any], source: str, what: str, *, check_exit: bool = True
) -> tuple[int, str]:
    """Run one ffmpeg process producing ``outputs``; returns (exit code, stderr text)."""
    compiled = ffmpeg.merge_outputs(*outputs).compile(cmd=ffmpeg_exe(), overwrite_output=True)
    # Global options first: trailing options draw a warning and may be ignored by ffmpeg.
    # level+info prefixes each line with its level so errors can be picked out of the log.
    argv = [
        compiled[0],
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "level+info",
        *compiled[1:],
    ]
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # from None: TimeoutExpired's text and attributes hold the argv, i.e. the URL.
        raise DerivativeError(f"{what}: ffmpeg ran longer than {_FFMPEG_TIMEOUT_S:.0f}s") from None
    except OSError as exc:
        raise DerivativeError(f"{what}: could not start ffmpeg ({exc.strerror})") from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if check_exit and proc.returncode != 0:
        raise DerivativeError(
            f"{what}: ffmpeg exited with code {proc.returncode}: {_tail(stderr, source)}"
        )
    return proc.returncode, stderr


def _tail(stderr: str, source: str) -> str:
    """The last warning/error lines of an ffmpeg log, scrubbed and shortened."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    problems = [line for line in lines if re.search(r"\[(warning|error|fatal|panic)\]", line)]
    chosen = (problems or lines)[-_TAIL_LINES:]
    # Pointer addresses ("@ 0x55d0...") change every run and only add noise.
    text = re.sub(r" @ 0x[0-9a-f]+", "", " | ".join(chosen))
    text = scrub(text, source)
    return text if len(text) <= _TAIL_CHARS else "..." + text[-_TAIL_CHARS:]


def _input(
    source: str,
    profile: DerivativeProfile,
    *,
    decode: bool,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """ffmpeg input node for a local path or an http(s) URL, streamed (never copied first).

    ``headers`` go with every request ffmpeg makes, ranged ones included: an If-Match pin
    makes the store answer 412 rather than serve bytes other than the proven ones.
    """
    opts: dict[str, Any] = {}
    if decode:
        opts["threads"] = profile.threads
    if _is_url(source):
        # Only the network protocols an https URL needs: a crafted playlist or mp4 reference
        # cannot make ffmpeg open local files or other schemes.
        opts |= {
            "protocol_whitelist": "http,https,tcp,tls",
            "reconnect": 1,
            "reconnect_streamed": 1,
            "reconnect_delay_max": 5,
            "rw_timeout": _RW_TIMEOUT_US,
        }
        if headers:
            opts["headers"] = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return ffmpeg.input(source, **opts)
    path = Path(source)
    if not path.is_file():
        raise DerivativeError("source is not a readable file")
    if path.stat().st_size == 0:
        raise DerivativeError("source is empty (0 bytes)")
    opts["protocol_whitelist"] = "file"
    # "file:" so a name containing ':' is never taken for a protocol prefix.
    return ffmpeg.input(f"file:{path.resolve()}", **opts)


# --------------------------------------------------------------------------- graph pieces


def _proxy_output(video: Any, path: Path, profile: DerivativeProfile) -> Any:
    # At most proxy_height, never upscaled, even on both axes (-2 keeps the aspect ratio).
    scaled = video.filter("scale", -2, f"min({profile.proxy_height},trunc(ih/2)*2)").filter(
        "format", "yuv420p"
    )
    return ffmpeg.output(
        scaled,
        str(path),
        f="mp4",
        vcodec="libx264",
        preset=profile.proxy_preset,
        crf=profile.proxy_crf,
        threads=profile.threads,
        # Time-based keyframes (GOP = fps * interval) without knowing fps before the run,
        # and still correct across timestamp gaps.
        force_key_frames=f"expr:gte(t,n_forced*{profile.keyframe_interval_s!r})",
        # Keep the source's timestamps (gaps included) so proxy time == capture time.
        fps_mode="passthrough",
        movflags="+faststart",
        map_metadata=-1,
        map_chapters=-1,
        metadata=f"comment=robotrace derivative {profile.version} {profile.fingerprint()}",
    )


def _select_stills(video: Any, duration_s: float, profile: DerivativeProfile) -> Any:
    """The ``thumbnails`` frames nearest the centres of equal slices of the segment.

    Still k is the first frame whose time (plus half the previous frame interval, so a frame
    that *covers* the target counts) reaches (k + 0.5) * duration / N. Targets are absolute,
    so rounding never accumulates and, given at least N frames, the last still is reached.
    """
    step = duration_s / profile.thumbnails
    target = f"(selected_n+0.5)*{step!r}"
    expr = f"if(isnan(prev_t),gte(t-start_t,{target}),gte(t-start_t+(t-prev_t)/2,{target}))"
    return video.filter("select", expr)


def _thumbs_output(stills: Any, out_dir: Path, profile: DerivativeProfile) -> Any:
    return ffmpeg.output(
        stills.filter("scale", profile.thumbnail_width, -2),
        str(out_dir / THUMB_PATTERN),
        f="image2",
        vcodec="mjpeg",
        fps_mode="passthrough",  # one file per selected frame, never duplicated
        **{"q:v": _JPEG_QUALITY, "frames:v": profile.thumbnails},
    )


def _sheet_output(stills: Any, path: Path, profile: DerivativeProfile) -> Any:
    tiled = stills.filter("scale", profile.sheet_tile_width, -2).filter(
        "tile", f"{profile.sheet_columns}x{profile.sheet_rows}"
    )
    return ffmpeg.output(
        tiled,
        str(path),
        f="image2",
        vcodec="mjpeg",
        update=1,  # a single image, not a numbered sequence
        **{"q:v": _JPEG_QUALITY, "frames:v": 1},
    )


def _packets_output(source_input: Any, path: Path) -> Any:
    # Stream copy: the packet timestamps of the same read, with no second decode.
    return ffmpeg.output(source_input["v:0"], str(path), f="framemd5", c="copy")


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _PacketLog:
    codec: str
    width: int
    height: int
    times: list[float]  # sorted presentation times, seconds


def _read_packet_log(path: Path) -> _PacketLog:
    if not path.is_file():
        raise DerivativeError("ffmpeg wrote no packet log")
    time_base: Fraction | None = None
    pts_column: int | None = None
    codec, width, height = "", 0, 0
    ticks: list[int] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if m := re.match(r"#tb 0:\s*(\d+)/(\d+)", line):
                time_base = Fraction(int(m.group(1)), int(m.group(2)))
            elif m := re.match(r"#codec_id 0:\s*(\S+)", line):
                codec = m.group(1)
            elif m := re.match(r"#dimensions 0:\s*(\d+)x(\d+)", line):
                width, height = int(m.group(1)), int(m.group(2))
            elif line.startswith("#stream#"):
                # Find pts by name rather than trusting the framemd5 column layout.
                pts_column = [c.strip() for c in line.lstrip("#").split(",")].index("pts")
            continue
        fields = [f.strip() for f in line.split(",")]
        if pts_column is not None and fields[0] == "0":
            ticks.append(int(fields[pts_column]))
    if time_base is None or pts_column is None:
        raise DerivativeError("packet log has no header (no video stream read)")
    return _PacketLog(codec, width, height, sorted(float(t * time_base) for t in ticks))


_DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_VIDEO_LINE_RE = re.compile(r"Stream #0:\d+.*?: Video: .*")
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)(k?) (tbr|fps)\b")


def _container_duration(stderr: str) -> float | None:
    """The input's declared duration from ffmpeg's banner (None if it declares none)."""
    m = _DURATION_RE.search(stderr)
    if m is None:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def _declared_fps(stderr: str) -> float | None:
    """tbr (else fps) of the input's first video stream line: fallback for 1-frame clips."""
    line = _VIDEO_LINE_RE.search(stderr)
    if line is None:
        return None
    rates = {kind: float(v) * (1000 if k else 1) for v, k, kind in _RATE_RE.findall(line[0])}
    return rates.get("tbr") or rates.get("fps")


def _nominal_fps(times: Sequence[float], stderr: str) -> float:
    deltas = [b - a for a, b in itertools.pairwise(times) if b > a]
    if deltas:
        # The median ignores gaps and jitter; 3 decimals keeps 29.97 and snaps 30.0000001.
        return round(1.0 / statistics.median(deltas), 3)
    declared = _declared_fps(stderr)
    if declared:
        return declared
    raise DerivativeError("could not determine the frame rate")


def _probe(log: _PacketLog, stderr: str) -> MediaProbe:
    times = log.times
    if not times:
        raise DerivativeError("no video frames could be read from the source")
    fps = _nominal_fps(times, stderr)
    period = 1.0 / fps
    steps = [(a, b - a) for a, b in itertools.pairwise(times)]
    gaps = [(round(a - times[0], 6), round(d, 6)) for a, d in steps if d > GAP_FACTOR * period]
    probe = MediaProbe(
        codec=log.codec,
        width=log.width,
        height=log.height,
        fps=fps,
        frames=len(times),
        duration_s=round(times[-1] - times[0] + period, 6),
        dropped_frames=count_dropped_frames(times, fps),
        timestamp_gaps=gaps,
        max_gap_s=round(max((d for _, d in steps), default=0.0), 6),
    )
    declared = _container_duration(stderr)
    slack = max(_TRUNCATION_SLACK_S, _TRUNCATION_SLACK_FRAMES * period)
    if declared is not None and probe.duration_s + slack < declared:
        # The index promised more than the bytes held: a cut-off upload or file.
        raise DerivativeError(
            f"source is truncated: its index declares {declared:.2f}s but only "
            f"{probe.duration_s:.2f}s of video ({probe.frames} frames) could be read"
        )
    return probe


def _preflight(
    source: str,
    work: Path,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None = None,
) -> MediaProbe:
    """Stream-copy pass (no decode) that measures the segment when no duration was given.

    It costs one extra read of the source (a second download for a URL) but no decoding.
    """
    log_path = work / "preflight.framemd5"
    _, stderr = _run(
        [_packets_output(_input(source, profile, decode=False, headers=headers), log_path)],
        source,
        "measuring source",
    )
    probe = _probe(_read_packet_log(log_path), stderr)
    log_path.unlink()
    return probe


# --------------------------------------------------------------------------- outputs


def _new_workdir(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Hidden sibling on the same filesystem: renames into out_dir are atomic per file.
    work = out_dir / f".derivatives-{uuid.uuid4().hex}.tmp"
    work.mkdir()
    return work


def _require(path: Path, what: str) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        raise DerivativeError(f"ffmpeg produced no {what}")


def _thumbs_in(work: Path) -> list[Path]:
    return sorted(work.glob(THUMB_GLOB))


def _stills_ok(work: Path, probe: MediaProbe, profile: DerivativeProfile) -> bool:
    count = len(_thumbs_in(work))
    # A segment with fewer frames than thumbnails cannot fill every slice; take what it has.
    fits = count == profile.thumbnails or 1 <= count <= probe.frames < profile.thumbnails
    return fits and (work / SHEET_NAME).is_file()


def _hint_fits(hint_s: float, probe: MediaProbe, profile: DerivativeProfile) -> bool:
    # Within half a still's spacing the stills land in the right slices anyway.
    return abs(hint_s - probe.duration_s) <= probe.duration_s / profile.thumbnails / 2


def _redo_stills(
    source: str,
    work: Path,
    probe: MediaProbe,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Remake thumbnails and sheet with the measured duration (a second decode).

    Only needed when the caller's duration hint was wrong: then the stills of the single
    pass are unevenly spaced or missing, and the packet log now says the real duration.
    """
    for stale in [*_thumbs_in(work), work / SHEET_NAME]:
        stale.unlink(missing_ok=True)
    stills = _select_stills(
        _input(source, profile, decode=True, headers=headers)["v:0"], probe.duration_s, profile
    ).filter_multi_output("split", 2)
    _run(
        [
            _thumbs_output(stills[0], work, profile),
            _sheet_output(stills[1], work / SHEET_NAME, profile),
        ],
        source,
        "remaking stills",
    )


def _publish(work: Path, out_dir: Path) -> tuple[Path, list[Path], Path]:
    """Move finished files from the work dir into out_dir, proxy last (it is the 'done' mark)."""
    thumbs = []
    for thumb in _thumbs_in(work):
        thumbs.append(out_dir / thumb.name)
        os.replace(thumb, thumbs[-1])
    sheet = out_dir / SHEET_NAME
    os.replace(work / SHEET_NAME, sheet)
    proxy = out_dir / PROXY_NAME
    os.replace(work / PROXY_NAME, proxy)
    return proxy, thumbs, sheet


def _check_hint(duration_hint_s: float | None) -> None:
    if duration_hint_s is not None and not (duration_hint_s > 0 and math.isfinite(duration_hint_s)):
        raise ValueError(f"duration_hint_s must be positive and finite, got {duration_hint_s}")


# --------------------------------------------------------------------------- public API


def make_derivatives(
    source: str,
    out_dir: Path,
    profile: DerivativeProfile,
    duration_hint_s: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> DerivativeSet:
    """Proxy, thumbnails and contact sheet from ONE ffmpeg process and ONE decode.

    ``source`` is a local path or an http(s) URL (streamed, never copied locally).
    ``duration_hint_s`` (the envelope's duration) spaces the stills; without it a stream-copy
    preflight measures the segment first (an extra read, no decode). If the hint turns out
    wrong by more than half a still's spacing, the stills alone are remade with the measured
    duration. On any failure ``DerivativeError`` is raised and ``out_dir`` is left as it was.
    """
    _check_hint(duration_hint_s)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    work = _new_workdir(out_dir)
    try:
        duration_s = duration_hint_s or _preflight(source, work, profile, headers).duration_s
        src = _input(source, profile, decode=True, headers=headers)
        branches = src["v:0"].filter_multi_output("split", 2)
        stills = _select_stills(branches[1], duration_s, profile).filter_multi_output("split", 2)
        _, stderr = _run(
            [
                _proxy_output(branches[0], work / PROXY_NAME, profile),
                _thumbs_output(stills[0], work, profile),
                _sheet_output(stills[1], work / SHEET_NAME, profile),
                _packets_output(src, work / _PACKETS_NAME),
            ],
            source,
            "making derivatives",
        )
        probe = _probe(_read_packet_log(work / _PACKETS_NAME), stderr)
        _require(work / PROXY_NAME, "proxy")
        if not (_hint_fits(duration_s, probe, profile) and _stills_ok(work, probe, profile)):
            _redo_stills(source, work, probe, profile, headers)
        if not _stills_ok(work, probe, profile):
            raise DerivativeError("ffmpeg produced too few thumbnails or no contact sheet")
        proxy, thumbs, sheet = _publish(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DerivativeSet(proxy, thumbs, sheet, probe, profile, time.perf_counter() - started)


def make_proxy_only(source: str, out_dir: Path, profile: DerivativeProfile) -> Path:
    """The proxy alone (one decode, no stills, no probe): the benchmark's cost floor."""
    out_dir = Path(out_dir)
    work = _new_workdir(out_dir)
    try:
        src = _input(source, profile, decode=True)
        _run([_proxy_output(src["v:0"], work / PROXY_NAME, profile)], source, "making proxy")
        _require(work / PROXY_NAME, "proxy")
        proxy = out_dir / PROXY_NAME
        os.replace(work / PROXY_NAME, proxy)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return proxy


def make_separately(
    source: str,
    out_dir: Path,
    profile: DerivativeProfile,
    duration_hint_s: float | None = None,
) -> DerivativeSet:
    """Baseline: one ffmpeg run (and one full decode) per derivative, as before the merge.

    The packet log rides along with the proxy run as a stream copy, so the probe matches
    ``make_derivatives`` without adding a fourth read.
    """
    _check_hint(duration_hint_s)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    work = _new_workdir(out_dir)
    try:
        duration_s = duration_hint_s or _preflight(source, work, profile).duration_s
        src = _input(source, profile, decode=True)
        _, stderr = _run(
            [
                _proxy_output(src["v:0"], work / PROXY_NAME, profile),
                _packets_output(src, work / _PACKETS_NAME),
            ],
            source,
            "making proxy",
        )
        probe = _probe(_read_packet_log(work / _PACKETS_NAME), stderr)
        _require(work / PROXY_NAME, "proxy")
        thumbs_src = _select_stills(
            _input(source, profile, decode=True)["v:0"], duration_s, profile
        )
        _run([_thumbs_output(thumbs_src, work, profile)], source, "making thumbnails")
        sheet_src = _select_stills(_input(source, profile, decode=True)["v:0"], duration_s, profile)
        _run([_sheet_output(sheet_src, work / SHEET_NAME, profile)], source, "making sheet")
        if not (_hint_fits(duration_s, probe, profile) and _stills_ok(work, probe, profile)):
            _redo_stills(source, work, probe, profile)
        if not _stills_ok(work, probe, profile):
            raise DerivativeError("ffmpeg produced too few thumbnails or no contact sheet")
        proxy, thumbs, sheet = _publish(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return DerivativeSet(proxy, thumbs, sheet, probe, profile, time.perf_counter() - started)
