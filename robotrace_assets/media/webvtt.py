"""The two pieces of WebVTT every track we publish needs (label track, transcript): cue
timestamps and cue text that a client's words cannot break. No Dagster here."""

from __future__ import annotations

__all__ = ["cue_text", "timestamp"]


def timestamp(seconds: float) -> str:
    """HH:MM:SS.mmm, as WebVTT cue timings are written (negative times clamp to zero)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def cue_text(text: str) -> str:
    """One line of cue text: no line break (a blank line would end the cue), no timing arrow,
    and WebVTT's markup characters as entities."""
    flat = " ".join(text.split()).replace("-->", "->")
    return flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
