"""The derivatives' single pass also yields the transcript's PCM (real ffmpeg, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import speak
from robotrace_assets.derivatives.media import make_derivatives
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.derivatives.transcript import (
    AudioPcm,
    NoAudio,
    TranscriptError,
    extract_audio,
    transcribe_segment,
)
from robotrace_assets.media.ffmpeg import run_ffmpeg

TINY = {"seconds": 2.0, "fps": 10, "width": 64, "height": 48, "codec": "h264"}


def _narrated(tmp_path: Path) -> Path:
    speak("lift it up", tmp_path / "n.wav")
    spec = VideoSpec(**TINY, audio_wav=tmp_path / "n.wav")  # type: ignore[arg-type]
    return encode_synthetic_video(tmp_path / "narrated.mp4", spec).path


def test_single_pass_pcm_equals_a_separate_decode(tmp_path: Path) -> None:
    source = str(_narrated(tmp_path))
    made = make_derivatives(source, tmp_path / "out", CURRENT_PROFILE, 2.0, audio_pcm=True)
    assert isinstance(made.audio, AudioPcm)
    assert made.audio == extract_audio(source)
    assert transcribe_segment(made.audio).words == transcribe_segment(source).words
    # Only the published derivatives land in the output directory.
    assert not list((tmp_path / "out").glob("*.pcm"))
    # Not asked: no audio work at all, as before.
    assert make_derivatives(source, tmp_path / "plain", CURRENT_PROFILE, 2.0).audio is None


def test_single_pass_marks_a_silent_source(tmp_path: Path) -> None:
    silent = encode_synthetic_video(tmp_path / "silent.mp4", VideoSpec(**TINY))  # type: ignore[arg-type]
    made = make_derivatives(str(silent.path), tmp_path / "out", CURRENT_PROFILE, audio_pcm=True)
    assert isinstance(made.audio, NoAudio)
    assert made.proxy.is_file()


def test_damaged_audio_costs_the_transcript_not_the_proxy(tmp_path: Path) -> None:
    good = _narrated(tmp_path)
    bad = tmp_path / "bad.mp4"
    args = ["-i", str(good), "-map", "0", "-c", "copy", "-bsf:a", "noise=amount=1", str(bad)]
    run_ffmpeg(args, what="corrupting audio")
    made = make_derivatives(str(bad), tmp_path / "out", CURRENT_PROFILE, 2.0, audio_pcm=True)
    assert made.audio is None
    assert made.proxy.is_file() and len(made.thumbnails) == CURRENT_PROFILE.thumbnails
    # The transcript, reading the audio alone, says why.
    with pytest.raises(TranscriptError, match=r"\[aac\]"):
        transcribe_segment(str(bad))
