"""What a transcript holds, whether speech was recognized or the segment is silent."""

from __future__ import annotations

from dataclasses import dataclass

from robotrace_assets.derivatives.transcript.engines import Word

__all__ = ["TranscriptResult"]


@dataclass(frozen=True)
class TranscriptResult:
    no_audio: bool
    words: tuple[Word, ...] = ()
    reason: str | None = None  # why there is no transcript (only with no_audio)
    engine: str | None = None
    engine_version: str | None = None
    model: str | None = None
    language: str | None = None
    sample_rate: int | None = None
    audio_duration_s: float = 0.0
    source_audio_codec: str | None = None
    # Wall time of decoding and recognition: run facts, kept out of the published files so
    # the same audio always yields the same bytes.
    processing_s: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)

    @property
    def real_time_factor(self) -> float | None:
        """Processing seconds per second of audio (below 1: faster than real time)."""
        return self.processing_s / self.audio_duration_s if self.audio_duration_s else None
