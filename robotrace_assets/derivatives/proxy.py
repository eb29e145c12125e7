"""Proxy encoding with ffmpeg, streamed from a short-lived signed GET URL (no Dagster here).

The URL is a credential: it is passed to ffmpeg as an argument but scrubbed from every message
this module produces.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from robotrace_assets.capture.media import ffmpeg_exe

PROXY_PROFILE = {"version": "p1", "height": 480, "codec": "h264", "preset": "veryfast", "crf": 28}


class DerivativeError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProxyResult:
    path: Path
    size_bytes: int
    sha256: str


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, "<signed-url>") if secret else text


def encode_proxy(source_url: str, out: Path, fps_hint: float = 30.0) -> ProxyResult:
    profile = PROXY_PROFILE
    stream = ffmpeg.input(source_url).video.filter("scale", -2, f"min({profile['height']},ih)")
    command = (
        ffmpeg.output(
            stream,
            str(out),
            vcodec="libx264",
            preset=profile["preset"],
            crf=profile["crf"],
            pix_fmt="yuv420p",
            g=max(1, round(fps_hint)),  # a keyframe a second keeps scrubbing responsive
            movflags="+faststart",
            an=None,
        )
        .overwrite_output()
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
    )
    process = subprocess.run(
        command.compile(cmd=ffmpeg_exe()), capture_output=True, text=True, check=False
    )
    if process.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        out.unlink(missing_ok=True)
        tail = scrub(process.stderr.strip()[-600:], source_url)
        raise DerivativeError(f"ffmpeg could not make a proxy (exit {process.returncode}): {tail}")
    digest = hashlib.sha256()
    with open(out, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return ProxyResult(out, out.stat().st_size, digest.hexdigest())
