"""One segment's transcript, from its source or from PCM already decoded (no Dagster here)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from robotrace_assets.derivatives.transcript.audio import (
    AudioPcm,
    NoAudio,
    TranscriptError,
    extract_audio,
)
from robotrace_assets.derivatives.transcript.engines import TranscriptEngine, configured_engine
from robotrace_assets.derivatives.transcript.result import TranscriptResult

__all__ = ["transcribe_segment"]


def transcribe_segment(
    pcm_or_source: AudioPcm | NoAudio | str,
    *,
    engine: TranscriptEngine | None = None,
    headers: Mapping[str, str] | None = None,
) -> TranscriptResult:
    """The transcript of one segment.

    ``pcm_or_source`` is a local path or http(s) URL (its audio is decoded here; ``headers``
    go with every request), or the ``AudioPcm``/``NoAudio`` a single pass already produced.
    ``engine`` defaults to the configured one (``ROBOTRACE_TRANSCRIPT_ENGINE``). A silent
    segment gives a ``no_audio`` result; unreadable audio raises ``TranscriptError``.
    """
    started = time.perf_counter()
    audio = (
        extract_audio(pcm_or_source, headers) if isinstance(pcm_or_source, str) else pcm_or_source
    )
    if isinstance(audio, NoAudio):
        return TranscriptResult(no_audio=True, reason=audio.reason)
    engine = engine or configured_engine()
    try:
        recognition = engine.recognize(audio)
    except (RuntimeError, ValueError) as exc:
        raise TranscriptError(f"{engine.name} could not recognize the audio: {exc}") from None
    return TranscriptResult(
        no_audio=False,
        words=recognition.words,
        engine=recognition.engine,
        engine_version=recognition.engine_version,
        model=recognition.model,
        language=recognition.language,
        sample_rate=audio.sample_rate,
        audio_duration_s=audio.duration_s,
        source_audio_codec=audio.source_codec,
        processing_s=time.perf_counter() - started,
    )
