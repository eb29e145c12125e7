"""The transcript's published files: WebVTT captions and JSON with word times (no Dagster here).

Both are deterministic for a given result (no wall-clock facts in them), so republishing the
same transcript yields the same bytes and the same checksums.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from robotrace_assets.derivatives.transcript.engines import Word
from robotrace_assets.derivatives.transcript.result import TranscriptResult
from robotrace_assets.media.webvtt import cue_text, timestamp

__all__ = [
    "TRANSCRIPT_SCHEMA",
    "transcript_files",
    "transcript_json",
    "transcript_record",
    "transcript_vtt",
]

TRANSCRIPT_SCHEMA = "robotrace.transcript/1"
# A cue ends at a pause, or when it would be too long to read at a glance.
CUE_PAUSE_S = 0.8
CUE_MAX_WORDS = 8
CUE_MAX_S = 4.0


def transcript_record(result: TranscriptResult) -> dict[str, Any]:
    """The JSON document: the same keys for spoken and silent segments."""
    return {
        "schema": TRANSCRIPT_SCHEMA,
        "no_audio": result.no_audio,
        "reason": result.reason,
        "engine": result.engine,
        "engine_version": result.engine_version,
        "model": result.model,
        "language": result.language,
        "sample_rate": result.sample_rate,
        "audio_duration_s": round(result.audio_duration_s, 3),
        "source_audio_codec": result.source_audio_codec,
        "text": result.text,
        "words": [
            {"word": w.word, "start_s": w.start_s, "end_s": w.end_s, "confidence": w.confidence}
            for w in result.words
        ],
    }


def transcript_json(result: TranscriptResult) -> bytes:
    return (json.dumps(transcript_record(result), indent=2, sort_keys=True) + "\n").encode()


def _cue_text(words: Sequence[Word]) -> str:
    return cue_text(" ".join(w.word for w in words))


def _note(text: str) -> str:
    # A NOTE block ends at a blank line and may not contain "-->".
    return "NOTE " + " ".join(text.replace("-->", "->").split())


def _cues(words: Sequence[Word]) -> Iterator[list[Word]]:
    cue: list[Word] = []
    for word in words:
        if cue and (
            word.start_s - cue[-1].end_s > CUE_PAUSE_S
            or len(cue) >= CUE_MAX_WORDS
            or word.end_s - cue[0].start_s > CUE_MAX_S
        ):
            yield cue
            cue = []
        cue.append(word)
    if cue:
        yield cue


def transcript_vtt(result: TranscriptResult) -> bytes:
    """WebVTT captions, a cue per phrase; a silent segment gets a NOTE and no cues."""
    blocks = ["WEBVTT"]
    if result.no_audio:
        blocks.append(_note(f"no audio: {result.reason or 'the source has no audio stream'}"))
    else:
        blocks.append(
            _note(
                f"transcript by {result.engine} {result.engine_version}, "
                f"model {result.model}, language {result.language}"
            )
        )
        for cue in _cues(result.words):
            end_s = max(cue[-1].end_s, cue[0].start_s + 0.001)  # a cue must not be empty
            timing = f"{timestamp(cue[0].start_s)} --> {timestamp(end_s)}"
            blocks.append(f"{timing}\n{_cue_text(cue)}")
    return ("\n\n".join(blocks) + "\n").encode()


def transcript_files(result: TranscriptResult) -> tuple[bytes, bytes]:
    """(WebVTT bytes, JSON bytes), ready to publish beside the other derivatives."""
    return transcript_vtt(result), transcript_json(result)
