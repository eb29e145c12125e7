"""The transcript derivative: a segment's narration as WebVTT and JSON with word times.

- ``audio``: the source's audio as 16 kHz mono PCM, or an explicit ``NoAudio``.
- ``engines``: offline ASR (PocketSphinx by default, faster-whisper with a user's model).
- ``transcribe``: ``transcribe_segment`` from a source or from PCM a single pass decoded.
- ``formats``: the published files (``transcript_files`` -> WebVTT bytes, JSON bytes).
- ``wer``: word error rate, for scoring transcripts of known narration.

No Dagster here: the review-derivatives asset publishes what these functions return.
"""

from robotrace_assets.derivatives.transcript.audio import (
    ASR_SAMPLE_RATE,
    AudioPcm,
    NoAudio,
    TranscriptError,
    extract_audio,
)
from robotrace_assets.derivatives.transcript.engines import (
    Recognition,
    TranscriptEngine,
    TranscriptEngineError,
    Word,
    configured_engine,
    engine_for,
)
from robotrace_assets.derivatives.transcript.formats import (
    TRANSCRIPT_SCHEMA,
    transcript_files,
    transcript_record,
)
from robotrace_assets.derivatives.transcript.result import TranscriptResult
from robotrace_assets.derivatives.transcript.transcribe import transcribe_segment
from robotrace_assets.derivatives.transcript.wer import word_error_rate

__all__ = [
    "ASR_SAMPLE_RATE",
    "TRANSCRIPT_SCHEMA",
    "AudioPcm",
    "NoAudio",
    "Recognition",
    "TranscriptEngine",
    "TranscriptEngineError",
    "TranscriptError",
    "TranscriptResult",
    "Word",
    "configured_engine",
    "engine_for",
    "extract_audio",
    "transcribe_segment",
    "transcript_files",
    "transcript_record",
    "word_error_rate",
]
