"""The transcript derivative of one segment, from the audio the single derivative pass decoded.

No Dagster here: derivatives/assets.py publishes the two files and records the metadata. A
silent segment gets the explicit no-audio record; an audio stream the pass could not decode is
read again alone, so the error names ffmpeg's reason, and it fails the segment's derivatives
like any other undecodable media (a broken track never passes for a silent one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from robotrace_assets.derivatives.media import DerivativeError, DerivativeSet
from robotrace_assets.derivatives.transcript import (
    TranscriptEngineError,
    TranscriptError,
    TranscriptResult,
    transcribe_segment,
    transcript_files,
)

TRANSCRIPT_NAME, TRANSCRIPT_VTT_NAME = "transcript.json", "transcript.vtt"
KINDS = ("transcript", "transcript_vtt")  # catalog and manifest kinds of the two files


def make_transcript(
    made: DerivativeSet,
    reread: Callable[[], tuple[str, Mapping[str, str]]],
    out_dir: Path,
) -> TranscriptResult:
    """Transcribe the pass's audio and write both files into ``out_dir``. ``reread`` gives a
    fresh pinned source (URL, headers) for an audio track the pass could not decode."""
    try:
        if made.audio is not None:
            result = transcribe_segment(made.audio)
        else:
            url, headers = reread()
            result = transcribe_segment(url, headers=headers)
    except (TranscriptError, TranscriptEngineError) as error:
        raise DerivativeError(f"transcript: {error}") from None
    vtt, document = transcript_files(result)
    (out_dir / TRANSCRIPT_VTT_NAME).write_bytes(vtt)
    (out_dir / TRANSCRIPT_NAME).write_bytes(document)
    return result


def transcript_metadata(
    by_kind: Mapping[str, list[Any]], result: TranscriptResult
) -> dict[str, Any]:
    """Materialization metadata: where the files are, what made them, what was heard."""
    document, vtt = by_kind["transcript"][0], by_kind["transcript_vtt"][0]
    return {
        "object_key": document.key,
        "size_bytes": document.size_bytes,
        "sha256": document.sha256,
        "webvtt_key": vtt.key,
        "webvtt_sha256": vtt.sha256,
        "verified": True,
        "no_audio": result.no_audio,
        "reason": result.reason or "",
        "engine": result.engine or "",
        "model": result.model or "",
        "words": len(result.words),
        "audio_duration_s": round(result.audio_duration_s, 3),
        "real_time_factor": round(result.real_time_factor or 0.0, 3),
        "text_preview": json.dumps(result.text[:200]),
    }
