"""The one way to run ffmpeg: the bundled binary, one timeout, one error type (no Dagster here).

Every run gets the same global flags (no banner, no stdin, no progress lines, overwrite, and
log lines prefixed with their level so problems can be picked out of the log). Failures raise
``MediaError`` with the tail of ffmpeg's stderr, scrubbed of the source when it is a signed
URL; exceptions raised here never chain one that carries the argv (it may hold that URL).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import imageio_ffmpeg

from robotrace_assets.media.scrub import scrub

__all__ = [
    "FFMPEG_TIMEOUT_S",
    "FfmpegRun",
    "MediaError",
    "ffmpeg_exe",
    "ffmpeg_pipe",
    "run_ffmpeg",
    "stderr_tail",
]

# Every job here is one segment or one delivery file (minutes of video at most): a run that
# lasts an hour is a hung process. Stalled network reads fail sooner through rw_timeout.
FFMPEG_TIMEOUT_S = 3600.0
# Enough of ffmpeg's complaint to act on, short enough for an exception or a log line: the
# first problem lines (the cause; later ones are its consequences) and the last ones.
_FIRST_LINES = 3
_LAST_LINES = 3
_TAIL_CHARS = 600
_PROBLEM_RE = re.compile(r"\[(warning|error|fatal|panic)\]")
# Pointer addresses ("@ 0x55d0...") change every run and only add noise.
_POINTER_RE = re.compile(r" @ 0x[0-9a-f]+")


class MediaError(RuntimeError):
    """ffmpeg failed, or its output could not be understood; the message is safe to log."""


@dataclass(frozen=True)
class FfmpegRun:
    returncode: int
    stdout: bytes
    # Raw: it may hold the source URL. Pass it through stderr_tail before showing it.
    stderr: str


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg (the same build everywhere)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_argv(args: Sequence[str], loglevel: str = "error") -> list[str]:
    """The full command line: global options first (trailing ones are ignored with a warning)."""
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-y",
        "-loglevel",
        f"level+{loglevel}",
        *args,
    ]


def stderr_tail(stderr: str | bytes, source: str = "") -> str:
    """The first and last warning/error lines of an ffmpeg log (else any lines), scrubbed."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    chosen = [line for line in lines if _PROBLEM_RE.search(line)] or lines
    if len(chosen) > _FIRST_LINES + _LAST_LINES:
        chosen = [*chosen[:_FIRST_LINES], "...", *chosen[-_LAST_LINES:]]
    joined = scrub(_POINTER_RE.sub("", " | ".join(chosen)), source)
    return joined if len(joined) <= _TAIL_CHARS else joined[:_TAIL_CHARS] + "..."


def run_ffmpeg(
    args: Sequence[str],
    *,
    what: str,
    source: str = "",
    loglevel: str = "error",
    check: bool = True,
) -> FfmpegRun:
    """Run ffmpeg with ``args`` (inputs, filters, outputs) and collect stdout and stderr.

    ``what`` names the job in error messages; ``source`` is scrubbed from them. With
    ``check`` a non-zero exit raises ``MediaError``; a timeout or a missing binary always does.
    """
    try:
        proc = subprocess.run(
            ffmpeg_argv(args, loglevel),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # from None: TimeoutExpired's text and attributes hold the argv, i.e. the URL.
        message = f"{what}: ffmpeg ran longer than {FFMPEG_TIMEOUT_S:.0f}s"
        raise MediaError(scrub(message, source)) from None
    except OSError as exc:
        message = f"{what}: could not start ffmpeg ({exc.strerror})"
        raise MediaError(scrub(message, source)) from None
    stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        message = f"{what}: ffmpeg exited with code {proc.returncode}: "
        raise MediaError(scrub(message, source) + stderr_tail(stderr, source))
    return FfmpegRun(proc.returncode, proc.stdout, stderr)


@contextmanager
def ffmpeg_pipe(args: Sequence[str], *, what: str, source: str = "") -> Iterator[IO[bytes]]:
    """ffmpeg's stdout as a stream, for decodes too large to hold (raw frames).

    Read it to the end inside the ``with`` block. On leaving the block ``MediaError`` is
    raised if ffmpeg failed or logged any error (a decode error means a broken file).
    """
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                ffmpeg_argv(args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        except OSError as exc:
            message = f"{what}: could not start ffmpeg ({exc.strerror})"
            raise MediaError(scrub(message, source)) from None
        assert proc.stdout is not None  # stdout=PIPE
        expired = threading.Event()

        def kill_on_timeout() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(FFMPEG_TIMEOUT_S, kill_on_timeout)
        timer.start()
        try:
            yield proc.stdout
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            code = proc.wait()
            timer.cancel()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if expired.is_set():
        raise MediaError(scrub(f"{what}: ffmpeg ran longer than {FFMPEG_TIMEOUT_S:.0f}s", source))
    if code != 0 or stderr.strip():
        message = f"{what}: ffmpeg exited with code {code}: "
        raise MediaError(scrub(message, source) + stderr_tail(stderr, source))
