"""Transcripts of real captures: espeak-ng narration through AAC and SeaweedFS into PocketSphinx.

Bound: espeak-ng's formant voice is far from the speech PocketSphinx's bundled model learned,
so its word error rate is high. Measured on the three narrated tasks (seed 9, voice en-us+f5,
140 wpm, AAC 64 kb/s): 0.24 to 0.44 per sentence. The same transcripts scored against another
task's sentence give 0.72 to 1.0, so the bound of 0.6 still separates hearing the narration
from not.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import webvtt

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import speak
from robotrace_assets.derivatives.transcript import (
    ASR_SAMPLE_RATE,
    AudioPcm,
    NoAudio,
    TranscriptEngineError,
    TranscriptError,
    configured_engine,
    engine_for,
    extract_audio,
    transcribe_segment,
    transcript_files,
    word_error_rate,
)
from robotrace_assets.media.ffmpeg import run_ffmpeg
from robotrace_assets.objectstore.client import presign_get
from robotrace_assets_tests.helpers import simulate

WER_BOUND = 0.6
# Seed 9 gives one session of each simulated task; 7.5 s fits every task's whole narration.
NARRATED = {"seed": 9, "sessions": 3, "seconds": 7.5, "fps": 10, "width": 64, "height": 48}


def test_narrated_captures_are_transcribed_within_the_bound(s3, bucket: str) -> None:
    sessions = simulate(s3, bucket, codec="h264", narration=True, **NARRATED)
    scores: dict[str, float] = {}
    transcripts: dict[str, str] = {}
    for session in sessions:
        segment = session.segments[0]
        task = session.envelope["task"]["name"]
        assert segment.narration is not None
        # Read as production reads it: a presigned GET URL, streamed by ffmpeg.
        result = transcribe_segment(presign_get(s3, bucket, segment.raw_key))
        scores[task] = word_error_rate(segment.narration, result.text)
        transcripts[task] = result.text
        assert not result.no_audio
        assert (result.engine, result.sample_rate, result.source_audio_codec) == (
            "pocketsphinx",
            ASR_SAMPLE_RATE,
            "aac",
        )
        assert result.model and result.engine_version
        assert result.audio_duration_s == pytest.approx(7.5, abs=0.05)
        starts = [w.start_s for w in result.words]
        assert starts == sorted(starts)
        for word in result.words:
            assert 0 <= word.start_s < word.end_s <= result.audio_duration_s + 0.05
            assert 0.0 <= word.confidence <= 1.0
        vtt_bytes, json_bytes = transcript_files(result)
        assert len(webvtt.from_buffer(io.StringIO(vtt_bytes.decode()))) >= 1
        assert json.loads(json_bytes)["text"] == result.text
    print(f"\nWER per task (bound {WER_BOUND}): {scores}\ntranscripts: {transcripts}")
    assert sorted(scores) == ["drawer_open", "pick_and_place", "towel_fold"]
    assert all(score < WER_BOUND for score in scores.values()), scores
    # The bound means something: the same transcripts against the wrong sentences fail it.
    narrations = {s.envelope["task"]["name"]: s.segments[0].narration or "" for s in sessions}
    tasks = sorted(narrations)
    for task, other in zip(tasks, tasks[1:] + tasks[:1], strict=True):
        assert word_error_rate(narrations[other], transcripts[task]) > WER_BOUND


def test_pcm_from_a_single_pass_gives_the_same_transcript(tmp_path: Path) -> None:
    speak("reach for the drawer, hold the handle", tmp_path / "n.wav")
    spec = VideoSpec(
        seconds=3.0, fps=10, width=64, height=48, codec="h264", audio_wav=tmp_path / "n.wav"
    )
    video = encode_synthetic_video(tmp_path / "n.mp4", spec)
    audio = extract_audio(str(video.path))
    assert isinstance(audio, AudioPcm) and audio.duration_s == pytest.approx(3.0)
    from_pcm = transcribe_segment(audio)
    from_source = transcribe_segment(str(video.path))
    assert from_pcm.words == from_source.words and from_pcm.words
    assert transcript_files(from_pcm) == transcript_files(from_source)
    # PCM at a rate the model was not trained on is refused, not misrecognized.
    with pytest.raises(TranscriptError, match="16000 Hz"):
        transcribe_segment(AudioPcm(audio.pcm, 8_000, "aac"))


def test_silent_segment_gives_the_explicit_no_audio_record(s3, bucket: str) -> None:
    segment = simulate(s3, bucket, seconds=1.0, fps=10, width=64, height=48)[0].segments[0]
    url = presign_get(s3, bucket, segment.raw_key)
    assert isinstance(extract_audio(url), NoAudio)
    result = transcribe_segment(url)
    assert result.no_audio and result.words == () and result.engine is None
    record = json.loads(transcript_files(result)[1])
    assert record["no_audio"] is True
    assert record["reason"] == "the source has no audio stream"


def _corrupt_audio_copy(source: Path, out: Path) -> None:
    """The same MP4 with every byte of every audio packet damaged (the noise bitstream filter)."""
    args = ["-i", str(source), "-map", "0", "-c", "copy", "-bsf:a", "noise=amount=1", str(out)]
    run_ffmpeg(args, what="corrupting audio")


def test_undecodable_audio_is_a_clear_error_not_silence(tmp_path: Path) -> None:
    speak("lift it up", tmp_path / "n.wav")
    spec = VideoSpec(
        seconds=2.0, fps=10, width=64, height=48, codec="h264", audio_wav=tmp_path / "n.wav"
    )
    good = encode_synthetic_video(tmp_path / "good.mp4", spec)
    _corrupt_audio_copy(good.path, tmp_path / "bad.mp4")
    with pytest.raises(TranscriptError, match=r"decoding audio of bad\.mp4.*\[aac\]"):
        transcribe_segment(str(tmp_path / "bad.mp4"))
    # A file that is no media at all must never pass for a silent segment either.
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 16)
    with pytest.raises(TranscriptError, match=r"cannot open junk\.mp4"):
        transcribe_segment(str(junk))
    with pytest.raises(TranscriptError, match="not a readable file"):
        transcribe_segment(str(tmp_path / "absent.mp4"))


def test_stronger_engine_needs_its_package_and_a_model_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TranscriptEngineError, match="ROBOTRACE_TRANSCRIPT_MODEL_DIR"):
        engine_for("faster-whisper", None)
    with pytest.raises(TranscriptEngineError, match=r"no model\.bin"):
        engine_for("faster-whisper", tmp_path)
    # A model directory is there, the package is not (it is never a project dependency).
    (tmp_path / "model.bin").write_bytes(b"\0")
    with pytest.raises(TranscriptEngineError, match="pip install faster-whisper"):
        engine_for("faster-whisper", tmp_path)
    monkeypatch.setenv("ROBOTRACE_TRANSCRIPT_ENGINE", "whisper.cpp")
    with pytest.raises(TranscriptEngineError, match="pocketsphinx, faster-whisper"):
        configured_engine()
    monkeypatch.delenv("ROBOTRACE_TRANSCRIPT_ENGINE")
    assert configured_engine().name == "pocketsphinx"


def test_signed_url_never_reaches_the_error(s3, bucket: str) -> None:
    url = presign_get(s3, bucket, "robotics/raw/absent.mp4")
    with pytest.raises(TranscriptError) as caught:
        transcribe_segment(url)
    message = str(caught.value)
    assert "cannot open source" in message
    assert "Signature" not in message and url not in message and bucket not in message
    assert caught.value.__cause__ is None
