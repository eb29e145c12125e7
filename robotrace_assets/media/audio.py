"""A source's first audio stream: probed from ``ffmpeg -i``'s log, decoded to PCM (no Dagster here).

Capture files may or may not carry an audio track (narration is optional on every device), so
"no audio stream" is an ordinary answer (``None``), while an audio stream that will not decode
is a ``MediaError``: a broken file must never pass for a silent one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from robotrace_assets.media.ffmpeg import MediaError, ffmpeg_pipe, run_ffmpeg, stderr_tail
from robotrace_assets.media.inputs import input_args, source_label

__all__ = [
    "PCM_BYTES_PER_SAMPLE",
    "AudioStreamProbe",
    "decode_pcm",
    "pcm_args",
    "probe_audio_stream",
]

# s16le mono: two bytes per sample.
PCM_BYTES_PER_SAMPLE = 2
_AUDIO_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Audio: (?P<codec>\w+)(?P<rest>.*)")
_RATE_RE = re.compile(r"(?P<hz>\d+) Hz")
# Printed once the container was opened and understood (after the "[info] " level prefix).
_INPUT_RE = re.compile(r"\bInput #0\b")
# Read the whole PCM stream in pieces this size (a few seconds of 16 kHz audio each).
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class AudioStreamProbe:
    """First audio stream as reported by ``ffmpeg -i``."""

    codec: str
    sample_rate: int  # 0 when the log does not say


def probe_audio_stream(
    source: str, headers: Mapping[str, str] | None = None
) -> AudioStreamProbe | None:
    """The first audio stream of a local path or http(s) URL, or None when it has none.

    Raises ``MediaError`` when the source cannot be opened at all (then nothing is known).
    """
    # Without an output ffmpeg exits 1 after printing the input summary: only the log counts.
    run = run_ffmpeg(
        input_args(source, headers),
        what=f"probing audio of {source_label(source)}",
        source=source,
        loglevel="info",
        check=False,
    )
    lines = run.stderr.splitlines()
    if not any(_INPUT_RE.search(line) for line in lines):
        raise MediaError(f"cannot open {source_label(source)}: {stderr_tail(run.stderr, source)}")
    for line in lines:
        if stream := _AUDIO_STREAM_RE.search(line):
            rate = _RATE_RE.search(stream.group("rest"))
            return AudioStreamProbe(stream.group("codec"), int(rate.group("hz")) if rate else 0)
    return None


def pcm_args(sample_rate: int) -> list[str]:
    """Output arguments turning the first audio stream into mono s16le PCM on stdout."""
    return ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "s16le", "-"]


def decode_pcm(source: str, sample_rate: int, headers: Mapping[str, str] | None = None) -> bytes:
    """The first audio stream as mono 16-bit little-endian PCM at ``sample_rate``.

    Any decode error ffmpeg logs raises ``MediaError`` (a damaged stream must not come back as
    a shorter or garbled transcript); so does a stream that decodes to nothing.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    label = source_label(source)
    chunks: list[bytes] = []
    with ffmpeg_pipe(
        [*input_args(source, headers), *pcm_args(sample_rate)],
        what=f"decoding audio of {label}",
        source=source,
    ) as out:
        while chunk := out.read(_READ_CHUNK):
            chunks.append(chunk)
    pcm = b"".join(chunks)
    if len(pcm) < PCM_BYTES_PER_SAMPLE:
        raise MediaError(f"decoding audio of {label}: the audio stream holds no samples")
    return pcm
