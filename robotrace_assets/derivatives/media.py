"""Review derivatives of one capture segment from a single ffmpeg decode (no Dagster here).

``make_derivatives`` runs ONE ffmpeg process that reads and decodes the source once and splits
the decoded frames three ways (proxy, thumbnails, contact sheet) while a stream copy of the same
packets measures the segment; the graph is in ``derivatives.graph``. Asked for it
(``audio_pcm=True``), the same process also decodes the first audio stream to the PCM the
transcript engines take, so the transcript needs no second read. The pieces below (work
directory, preflight, stills checks, publishing) are public so the benchmark's baselines in
``bench/derivatives_baselines.py`` are built from the same parts.

The source is often a presigned GET URL, which is a credential: it is passed to ffmpeg but
scrubbed from every message this module produces (``robotrace_assets.media`` does it).
"""

from __future__ import annotations

import math
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from robotrace_assets.derivatives.graph import (
    PACKETS_NAME,
    PROXY_NAME,
    SHEET_NAME,
    THUMB_GLOB,
    packets_output,
    proxy_output,
    select_stills,
    sheet_output,
    source_input,
    thumbs_output,
)
from robotrace_assets.derivatives.profiles import DerivativeProfile
from robotrace_assets.derivatives.transcript.audio import ASR_SAMPLE_RATE, AudioPcm, NoAudio
from robotrace_assets.media.audio import AudioStreamProbe, probe_audio_stream
from robotrace_assets.media.ffmpeg import MediaError, run_ffmpeg
from robotrace_assets.media.measure import MediaProbe, measure
from robotrace_assets.media.probe import parse_packet_log

__all__ = ["DerivativeError", "DerivativeSet", "make_derivatives"]

PCM_NAME = "audio.pcm"


class DerivativeError(MediaError):
    """The source could not be turned into derivatives; the message is safe to log."""


@dataclass(frozen=True)
class DerivativeSet:
    proxy: Path
    thumbnails: list[Path]
    contact_sheet: Path
    probe: MediaProbe
    profile: DerivativeProfile
    # Wall time of all ffmpeg work for this set (preflight and repair passes included).
    seconds: float
    # Only with audio_pcm=True: the decoded audio, NoAudio for a silent source, or None when
    # the audio did not decode cleanly (the transcript then reads it alone and reports why).
    audio: AudioPcm | NoAudio | None = None


@contextmanager
def derivative_errors() -> Iterator[None]:
    """Media failures surface as DerivativeError, the one error callers of this module catch."""
    try:
        yield
    except DerivativeError:
        raise
    except MediaError as exc:
        raise DerivativeError(str(exc)) from None


def open_source(
    source: str,
    profile: DerivativeProfile,
    *,
    decode: bool,
    headers: Mapping[str, str] | None = None,
) -> Any:
    with derivative_errors():
        return source_input(source, profile, decode=decode, headers=headers)


def run_graph(outputs: Sequence[Any], source: str, what: str) -> str:
    """Run one ffmpeg process producing ``outputs``; returns its info log (banner included)."""
    args = ffmpeg.merge_outputs(*outputs).get_args()
    with derivative_errors():
        # info: the input summary (declared duration and rate) is part of the measurement.
        return run_ffmpeg(args, what=what, source=source, loglevel="info").stderr


def measure_packets(path: Path, log: str) -> MediaProbe:
    """The segment's facts from the packet log ffmpeg wrote to ``path`` in the same run."""
    if not path.is_file():
        raise DerivativeError("ffmpeg wrote no packet log")
    with derivative_errors():
        return measure(parse_packet_log(path.read_text(encoding="utf-8", errors="replace")), log)


def preflight(
    source: str,
    work: Path,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None = None,
) -> MediaProbe:
    """Stream-copy pass (no decode) that measures the segment when no duration was given.

    It costs one extra read of the source (a second download for a URL) but no decoding.
    """
    log_path = work / "preflight.framecrc"
    src = open_source(source, profile, decode=False, headers=headers)
    log = run_graph([packets_output(src, log_path)], source, "measuring source")
    probe = measure_packets(log_path, log)
    log_path.unlink()
    return probe


def new_workdir(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Hidden sibling on the same filesystem: renames into out_dir are atomic per file.
    work = out_dir / f".derivatives-{uuid.uuid4().hex}.tmp"
    work.mkdir()
    return work


def require_output(path: Path, what: str) -> None:
    if not path.is_file() or path.stat().st_size == 0:
        raise DerivativeError(f"ffmpeg produced no {what}")


def _thumbs_in(work: Path) -> list[Path]:
    return sorted(work.glob(THUMB_GLOB))


def stills_ok(work: Path, probe: MediaProbe, profile: DerivativeProfile) -> bool:
    count = len(_thumbs_in(work))
    # A segment with fewer frames than thumbnails cannot fill every slice; take what it has.
    fits = count == profile.thumbnails or 1 <= count <= probe.frames < profile.thumbnails
    return fits and (work / SHEET_NAME).is_file()


def hint_fits(hint_s: float, probe: MediaProbe, profile: DerivativeProfile) -> bool:
    # Within half a still's spacing the stills land in the right slices anyway.
    return abs(hint_s - probe.duration_s) <= probe.duration_s / profile.thumbnails / 2


def redo_stills(
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
    video = open_source(source, profile, decode=True, headers=headers)["v:0"]
    stills = select_stills(video, probe.duration_s, profile).filter_multi_output("split", 2)
    outputs = [
        thumbs_output(stills[0], work, profile),
        sheet_output(stills[1], work / SHEET_NAME, profile),
    ]
    run_graph(outputs, source, "remaking stills")


def finish_stills(
    source: str,
    work: Path,
    duration_s: float,
    probe: MediaProbe,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Remake the stills if the duration used was wrong or they came out short; then check."""
    if not (hint_fits(duration_s, probe, profile) and stills_ok(work, probe, profile)):
        redo_stills(source, work, probe, profile, headers)
    if not stills_ok(work, probe, profile):
        raise DerivativeError("ffmpeg produced too few thumbnails or no contact sheet")


def publish_outputs(work: Path, out_dir: Path) -> tuple[Path, list[Path], Path]:
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


def check_hint(duration_hint_s: float | None) -> None:
    if duration_hint_s is not None and not (duration_hint_s > 0 and math.isfinite(duration_hint_s)):
        raise ValueError(f"duration_hint_s must be positive and finite, got {duration_hint_s}")


def _audio_output(src: Any, path: Path) -> Any:
    return ffmpeg.output(src["a:0"], str(path), f="s16le", ac=1, ar=ASR_SAMPLE_RATE)


def _audio_errors(log: str, stream: AudioStreamProbe) -> bool:
    """Whether the info log holds an error from the audio decoder (a damaged stream)."""
    return any(
        "[error]" in line and (f"[{stream.codec}" in line or "[aist#" in line)
        for line in log.splitlines()
    )


def _read_pcm(work: Path, log: str, stream: AudioStreamProbe) -> AudioPcm | None:
    pcm_path = work / PCM_NAME
    if _audio_errors(log, stream) or not pcm_path.is_file():
        return None
    pcm = pcm_path.read_bytes()
    pcm_path.unlink()
    return AudioPcm(pcm, ASR_SAMPLE_RATE, stream.codec) if len(pcm) >= 2 else None


def _one_pass(
    source: str,
    work: Path,
    duration_s: float,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None,
    audio: AudioStreamProbe | None = None,
) -> tuple[MediaProbe, AudioPcm | None]:
    """Proxy, stills, packet log (and PCM of ``audio``) from one process and one decode."""
    src = open_source(source, profile, decode=True, headers=headers)
    branches = src["v:0"].filter_multi_output("split", 2)
    stills = select_stills(branches[1], duration_s, profile).filter_multi_output("split", 2)
    outputs = [
        proxy_output(branches[0], work / PROXY_NAME, profile),
        thumbs_output(stills[0], work, profile),
        sheet_output(stills[1], work / SHEET_NAME, profile),
        packets_output(src, work / PACKETS_NAME),
    ]
    if audio is not None:
        outputs.append(_audio_output(src, work / PCM_NAME))
    log = run_graph(outputs, source, "making derivatives")
    pcm = _read_pcm(work, log, audio) if audio is not None else None
    return measure_packets(work / PACKETS_NAME, log), pcm


def _pass_with_audio(
    source: str,
    work: Path,
    duration_s: float,
    profile: DerivativeProfile,
    headers: Mapping[str, str] | None,
) -> tuple[MediaProbe, AudioPcm | NoAudio | None]:
    """The single pass with the audio branch; a pass that fails is retried without it, so a
    damaged audio stream never costs the proxy and stills (only the transcript reports it)."""
    try:
        with derivative_errors():
            stream = probe_audio_stream(source, headers)
    except DerivativeError:
        # A source the probe cannot open: the plain pass fails it with ffmpeg's own reason, as
        # for any bad media (or, if the video reads after all, the transcript reports the audio).
        return _one_pass(source, work, duration_s, profile, headers)[0], None
    if stream is None:
        return _one_pass(source, work, duration_s, profile, headers)[0], NoAudio()
    try:
        return _one_pass(source, work, duration_s, profile, headers, stream)
    except DerivativeError:
        (work / PCM_NAME).unlink(missing_ok=True)
        return _one_pass(source, work, duration_s, profile, headers)[0], None


def make_derivatives(
    source: str,
    out_dir: Path,
    profile: DerivativeProfile,
    duration_hint_s: float | None = None,
    headers: Mapping[str, str] | None = None,
    audio_pcm: bool = False,
) -> DerivativeSet:
    """Proxy, thumbnails and contact sheet from ONE ffmpeg process and ONE decode.

    ``source`` is a local path or an http(s) URL (streamed, never copied locally).
    ``duration_hint_s`` (the envelope's duration) spaces the stills; without it a stream-copy
    preflight measures the segment first (an extra read, no decode). If the hint turns out
    wrong by more than half a still's spacing, the stills alone are remade with the measured
    duration. On any failure ``DerivativeError`` is raised and ``out_dir`` is left as it was.
    With ``audio_pcm`` the set also carries the source's audio for the transcript (see
    ``DerivativeSet.audio``); the audio is probed first (a header read, no decode).
    """
    check_hint(duration_hint_s)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    work = new_workdir(out_dir)
    try:
        duration_s = duration_hint_s or preflight(source, work, profile, headers).duration_s
        audio: AudioPcm | NoAudio | None = None
        if audio_pcm:
            probe, audio = _pass_with_audio(source, work, duration_s, profile, headers)
        else:
            probe = _one_pass(source, work, duration_s, profile, headers)[0]
        require_output(work / PROXY_NAME, "proxy")
        finish_stills(source, work, duration_s, probe, profile, headers)
        proxy, thumbs, sheet = publish_outputs(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    return DerivativeSet(proxy, thumbs, sheet, probe, profile, elapsed, audio)
