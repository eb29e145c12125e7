"""Narrated captures: espeak-ng speech muxed as AAC into the simulator's video (no mocks)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import (
    STEP_PHRASES,
    fit_narration,
    narration_phrases,
    speak,
)
from robotrace_assets.capture.simulator import TASKS
from robotrace_assets.media.audio import decode_pcm, probe_audio_stream
from robotrace_assets.objectstore.client import presign_get
from robotrace_assets_tests.helpers import simulate

TINY = VideoSpec(seconds=3.0, fps=10, width=64, height=48, codec="h264")


def test_every_simulated_task_step_has_a_phrase() -> None:
    for task, steps in TASKS:
        assert set(steps) == set(STEP_PHRASES[task]), task
    # An unknown task or step is still narrated, by its name.
    assert narration_phrases("shelf_stock", ["reach", "put_back"]) == ["reach", "put back"]


def test_narration_keeps_whole_phrases_that_fit(tmp_path: Path) -> None:
    task, steps = TASKS[1]  # drawer_open: four phrases, about six seconds spoken
    full = fit_narration(task, steps, 30.0, tmp_path / "full.wav")
    short = fit_narration(task, steps, 3.0, tmp_path / "short.wav")
    assert full is not None and short is not None
    assert full.text == ", ".join(narration_phrases(task, steps))
    assert short.duration_s <= 3.0 < full.duration_s
    # Phrases are dropped from the end, never cut inside a word.
    assert full.text.startswith(short.text) and len(short.text) < len(full.text)
    assert fit_narration(task, steps, 0.2, tmp_path / "none.wav") is None
    assert not (tmp_path / "none.wav").exists()


def test_speak_refuses_empty_text_and_reads_dashes_as_words(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to speak"):
        speak("  ", tmp_path / "empty.wav")
    # "--version" is spoken, not taken for an espeak-ng option.
    assert speak("--version", tmp_path / "dash.wav") > 0.1


def test_narrated_video_has_one_aac_track_as_long_as_the_video(tmp_path: Path) -> None:
    speak("lift it up", tmp_path / "n.wav")
    spec = dataclasses.replace(TINY, audio_wav=tmp_path / "n.wav")
    first = encode_synthetic_video(tmp_path / "a.mp4", spec)
    again = encode_synthetic_video(tmp_path / "b.mp4", spec)
    assert first.audio_codec == "aac"
    assert (first.frames, first.duration_s) == (30, pytest.approx(3.0))
    # Padded with silence to exactly the video's length (16 kHz s16le: 32000 bytes a second).
    assert len(decode_pcm(str(first.path), 16_000)) == 3 * 32_000
    # Deterministic like the silent clip: equal specs, equal bytes.
    assert first.path.read_bytes() == again.path.read_bytes()


def test_silent_video_has_no_audio_stream(tmp_path: Path) -> None:
    info = encode_synthetic_video(tmp_path / "silent.mp4", TINY)
    assert info.audio_codec is None
    assert probe_audio_stream(str(info.path)) is None


def test_missing_wav_is_refused_before_encoding(tmp_path: Path) -> None:
    spec = dataclasses.replace(TINY, audio_wav=tmp_path / "absent.wav")
    with pytest.raises(ValueError, match="is not a file"):
        encode_synthetic_video(tmp_path / "x.mp4", spec)


def test_simulator_uploads_narrated_segments_only_when_asked(s3, bucket: str) -> None:
    narrated = simulate(s3, bucket, seconds=3.0, fps=10, width=64, height=48, narration=True)
    silent = simulate(s3, bucket, seed=1, seconds=1.0, fps=10, width=64, height=48)
    segment = narrated[0].segments[0]
    assert segment.narration and segment.video.audio_codec == "aac"
    url = presign_get(s3, bucket, segment.raw_key)
    stream = probe_audio_stream(url)
    assert stream is not None and stream.codec == "aac"
    # The default stays silent: burst and benchmark captures keep one stream and tiny files.
    quiet = silent[0].segments[0]
    assert quiet.narration is None and quiet.video.audio_codec is None
    assert probe_audio_stream(presign_get(s3, bucket, quiet.raw_key)) is None
