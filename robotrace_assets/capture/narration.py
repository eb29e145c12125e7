"""Spoken task narration for simulated captures, synthesized with espeak-ng (Debian package).

An operator narrates the task brief's steps as they work; the simulator speaks the same words
so transcripts of its captures can be scored against a known reference. The narration is
deterministic: the task (chosen by the seed) decides the words, and espeak-ng with a fixed
voice and rate renders the same samples every time on one machine.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NARRATION_RATE_WPM",
    "NARRATION_VOICE",
    "Narration",
    "NarrationError",
    "fit_narration",
    "narration_phrases",
    "speak",
]

# A female variant of the US voice at 140 words a minute: of the espeak-ng voices tried, it is
# the one PocketSphinx's bundled model recognizes best (measured in the transcript tests).
NARRATION_VOICE = "en-us+f5"
NARRATION_RATE_WPM = 140
ESPEAK_TIMEOUT_S = 60.0

# What an operator says at each step of each simulated task brief (robotrace_assets.capture
# .simulator.TASKS). Plain words that espeak-ng says clearly ("hold" and "take" rather than a
# second "grasp"); phrases are spoken with a pause between them (a comma).
STEP_PHRASES: dict[str, dict[str, str]] = {
    "pick_and_place": {
        "reach": "reach for the cup",
        "grasp": "grasp the cup",
        "lift": "lift it up",
        "place": "place it on the tray",
        "release": "and let go",
    },
    "drawer_open": {
        "reach": "reach for the drawer",
        "grasp_handle": "hold the handle",
        "pull": "pull the drawer open",
        "release": "and let it go",
    },
    "towel_fold": {
        "grasp_corner": "take the corner of the towel",
        "fold_half": "fold it in half",
        "fold_quarter": "fold it again",
        "smooth": "and smooth it out",
    },
}


class NarrationError(RuntimeError):
    """espeak-ng is missing or failed; the message says what to install or what went wrong."""


@dataclass(frozen=True)
class Narration:
    text: str  # exactly the words spoken: the reference a transcript is scored against
    wav: Path
    duration_s: float


def narration_phrases(task: str, steps: Sequence[str]) -> list[str]:
    """The phrase spoken for each step; a step without a scripted phrase is named as it is."""
    phrases = STEP_PHRASES.get(task, {})
    return [phrases.get(step, step.replace("_", " ")) for step in steps]


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise NarrationError(
            "espeak-ng is not installed (apt-get install espeak-ng); "
            "simulate without audio (--no-audio) instead"
        )
    return exe


def wav_duration_s(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def speak(text: str, path: Path) -> float:
    """Render ``text`` to a WAV file at ``path``; returns its duration in seconds."""
    if not text.strip():
        raise ValueError("nothing to speak")
    cmd = [_espeak(), "-v", NARRATION_VOICE, "-s", str(NARRATION_RATE_WPM), "-w", str(path)]
    try:
        # "--" so a text starting with "-" is never read as an option.
        proc = subprocess.run(
            [*cmd, "--", text], capture_output=True, timeout=ESPEAK_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise NarrationError(f"espeak-ng ran longer than {ESPEAK_TIMEOUT_S:.0f}s") from None
    if proc.returncode != 0 or not path.is_file():
        detail = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise NarrationError(f"espeak-ng exited with code {proc.returncode}: {detail}")
    return wav_duration_s(path)


def fit_narration(task: str, steps: Sequence[str], seconds: float, path: Path) -> Narration | None:
    """The longest narration of the first steps that fits in ``seconds``, spoken to ``path``.

    Whole phrases are dropped from the end rather than cutting a word at the segment's end,
    so the text stays an exact reference. None when not even the first phrase fits.
    """
    phrases = narration_phrases(task, steps)
    for count in range(len(phrases), 0, -1):
        text = ", ".join(phrases[:count])
        duration = speak(text, path)
        if duration <= seconds:
            return Narration(text, path, duration)
    path.unlink(missing_ok=True)
    return None
