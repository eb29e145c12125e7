"""A segment's audio as the ASR engines take it: 16 kHz mono s16le PCM (no Dagster here).

A segment without an audio stream is an ordinary outcome (``NoAudio``); a source that cannot
be opened or an audio stream that does not decode raises ``TranscriptError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from robotrace_assets.media.audio import PCM_BYTES_PER_SAMPLE, decode_pcm, probe_audio_stream
from robotrace_assets.media.ffmpeg import MediaError

__all__ = ["ASR_SAMPLE_RATE", "AudioPcm", "NoAudio", "TranscriptError", "extract_audio"]

# What PocketSphinx's bundled acoustic model and Whisper models are trained on.
ASR_SAMPLE_RATE = 16_000


class TranscriptError(MediaError):
    """The audio could not be read or recognized; the message is safe to log."""


@dataclass(frozen=True)
class AudioPcm:
    pcm: bytes  # mono s16le
    sample_rate: int
    source_codec: str  # the codec of the source's audio stream, e.g. "aac"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if len(self.pcm) % PCM_BYTES_PER_SAMPLE:
            raise ValueError("PCM length is not a whole number of 16-bit samples")

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / PCM_BYTES_PER_SAMPLE / self.sample_rate


@dataclass(frozen=True)
class NoAudio:
    """The source has no audio stream: a silent capture, recorded as such."""

    reason: str = "the source has no audio stream"


def extract_audio(
    source: str,
    headers: Mapping[str, str] | None = None,
    sample_rate: int = ASR_SAMPLE_RATE,
) -> AudioPcm | NoAudio:
    """The first audio stream of a local path or http(s) URL as mono PCM, or ``NoAudio``."""
    try:
        stream = probe_audio_stream(source, headers)
        if stream is None:
            return NoAudio()
        return AudioPcm(decode_pcm(source, sample_rate, headers), sample_rate, stream.codec)
    except TranscriptError:
        raise
    except MediaError as exc:
        # from None: the chained exception's context could hold the (signed) source URL.
        raise TranscriptError(str(exc)) from None
