"""The one ffmpeg runner, with the bundled binary (no mocks)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from robotrace_assets.media.ffmpeg import MediaError, ffmpeg_exe, ffmpeg_pipe, run_ffmpeg
from robotrace_assets.media.inputs import input_args

SIGNATURE = "f00dfacecafe0123456789abcdef5ec7e7"
# Port 1 on loopback: nothing listens, so ffmpeg fails at once and names what it opened.
SIGNED_URL = f"http://127.0.0.1:1/seg.mp4?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=60"


def _clip(path: Path, seconds: int = 1) -> Path:
    run_ffmpeg(
        [
            *("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=10:duration={seconds}"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)),
        ],
        what="fixture",
    )
    return path


def test_ffmpeg_exe_is_runnable() -> None:
    proc = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("ffmpeg version")


def test_failure_names_the_job_and_never_the_signed_url() -> None:
    with pytest.raises(MediaError, match="reading segment: ffmpeg exited with code") as caught:
        run_ffmpeg(
            [*input_args(SIGNED_URL), "-f", "null", "-"], what="reading segment", source=SIGNED_URL
        )
    assert SIGNATURE not in str(caught.value)
    assert SIGNED_URL not in str(caught.value)
    # Nothing chained either: a chained exception could carry the argv.
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_without_check_the_exit_code_and_log_are_returned(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.mp4")
    # An input without an output: ffmpeg prints the input summary and exits non-zero.
    run = run_ffmpeg(input_args(str(clip)), what="summary", loglevel="info", check=False)
    assert run.returncode != 0
    assert "Video: h264" in run.stderr


def test_pipe_streams_raw_frames(tmp_path: Path) -> None:
    clip = _clip(tmp_path / "clip.mp4", seconds=2)
    frame_bytes = 64 * 48 * 3
    frames = 0
    args = [*input_args(str(clip)), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    with ffmpeg_pipe(args, what="decoding") as stdout:
        while chunk := stdout.read(frame_bytes):
            assert len(chunk) == frame_bytes
            frames += 1
    assert frames == 20


def test_pipe_raises_when_ffmpeg_fails(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"definitely not an mp4")
    with (
        pytest.raises(MediaError, match="decoding junk: ffmpeg exited with code"),
        ffmpeg_pipe([*input_args(str(junk)), "-f", "rawvideo", "-"], what="decoding junk") as out,
    ):
        assert out.read() == b""
