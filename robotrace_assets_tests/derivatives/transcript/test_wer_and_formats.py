"""Word error rate and the transcript's published files (pure functions, real parsers)."""

from __future__ import annotations

import io
import json

import pytest
import webvtt

from robotrace_assets.derivatives.transcript import (
    TRANSCRIPT_SCHEMA,
    TranscriptResult,
    Word,
    transcript_files,
    word_error_rate,
)
from robotrace_assets.derivatives.transcript.wer import normalize_words


def test_wer_counts_substitutions_deletions_and_insertions() -> None:
    ref = "reach for the cup"
    assert word_error_rate(ref, "reach for the cup") == 0.0
    assert word_error_rate(ref, "reach for a cup") == 0.25  # one substitution
    assert word_error_rate(ref, "reach the cup") == 0.25  # one deletion
    assert word_error_rate(ref, "reach for the red cup") == 0.25  # one insertion
    assert word_error_rate(ref, "") == 1.0
    assert word_error_rate("go", "no no no") == 3.0  # insertions can push it above 1


def test_wer_ignores_case_and_punctuation() -> None:
    assert normalize_words("Grasp the cup, then LIFT it! 'Let's' go.") == [
        "grasp", "the", "cup", "then", "lift", "it", "let's", "go",
    ]  # fmt: skip
    assert word_error_rate("Hold the handle, and let it go.", "hold the handle and let it go") == 0
    with pytest.raises(ValueError, match="no words"):
        word_error_rate(" ,.", "anything")


def _spoken(*words: tuple[str, float, float]) -> TranscriptResult:
    return TranscriptResult(
        no_audio=False,
        words=tuple(Word(w, s, e, 0.5) for w, s, e in words),
        engine="pocketsphinx",
        engine_version="5.1.1",
        model="test --> model",
        language="en-US",
        sample_rate=16_000,
        audio_duration_s=3700.0,
        source_audio_codec="aac",
        processing_s=12.3,
    )


def test_vtt_cues_split_at_pauses_and_escape_markup() -> None:
    result = _spoken(
        ("open", 0.1, 0.4),
        ("<b>&", 0.4, 0.7),
        ("drawer", 2.0, 2.5),  # after a 1.3 s pause: a new cue
        ("late", 3661.0, 3661.5),  # past an hour
    )
    vtt_bytes, json_bytes = transcript_files(result)
    captions = webvtt.from_buffer(io.StringIO(vtt_bytes.decode()))
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.100", "00:00:00.700"),
        ("00:00:02.000", "00:00:02.500"),
        ("01:01:01.000", "01:01:01.500"),
    ]
    assert "&lt;b&gt;&amp;" in vtt_bytes.decode()
    # The model name cannot end the NOTE block or fake a cue timing line.
    assert "test --> model" not in vtt_bytes.decode()
    record = json.loads(json_bytes)
    assert record["schema"] == TRANSCRIPT_SCHEMA and record["no_audio"] is False
    assert record["words"][2] == {"word": "drawer", "start_s": 2.0, "end_s": 2.5, "confidence": 0.5}
    assert record["text"] == "open <b>& drawer late"
    # Run facts stay out of the files: the same transcript always gives the same bytes.
    assert "processing" not in json_bytes.decode()
    assert transcript_files(result) == transcript_files(
        TranscriptResult(**{**result.__dict__, "processing_s": 99.0})
    )


def test_long_speech_without_pauses_is_cut_into_readable_cues() -> None:
    result = _spoken(*((f"w{i}", i * 0.3, i * 0.3 + 0.3) for i in range(20)))
    captions = webvtt.from_buffer(io.StringIO(transcript_files(result)[0].decode()))
    assert [len(c.text.split()) for c in captions] == [8, 8, 4]


def test_no_audio_record_has_the_same_keys_and_no_cues() -> None:
    silent = TranscriptResult(no_audio=True, reason="the source has no audio stream")
    vtt_bytes, json_bytes = transcript_files(silent)
    assert len(webvtt.from_buffer(io.StringIO(vtt_bytes.decode()))) == 0
    assert "NOTE no audio" in vtt_bytes.decode()
    record = json.loads(json_bytes)
    assert record["no_audio"] is True and record["words"] == [] and record["text"] == ""
    assert record.keys() == json.loads(transcript_files(_spoken())[1]).keys()
