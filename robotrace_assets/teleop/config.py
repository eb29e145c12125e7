"""LiveKit and teleop configuration, read from the environment in one place.

The API key and secret sign room tokens and verify webhooks; they are read when a config is
built and never logged (repr hides them). The loopback development defaults are the pair a
`livekit-server --dev` instance uses, and are refused for any non-loopback LiveKit URL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlparse

DEV_URL = "ws://127.0.0.1:7880"
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"  # livekit-server --dev; loopback only

# Short-lived room tokens: a leaked token opens one room for minutes, not hours.
DEFAULT_TOKEN_TTL_S = 10 * 60
DEFAULT_TTL = DEFAULT_TOKEN_TTL_S
MAX_TOKEN_TTL_S = 60 * 60
# A webhook whose created_at is further than this from our clock is stale (or a replay
# from outside the window in which we remember event ids).
DEFAULT_WEBHOOK_TOLERANCE_S = 5 * 60
DEFAULT_TOLERANCE = DEFAULT_WEBHOOK_TOLERANCE_S
# Segment length from the data model: media segments are 5-10 minute units.
DEFAULT_SEGMENT_S = 10 * 60
MIN_SEGMENT_S = 5 * 60
MAX_SEGMENT_S = 10 * 60


class TeleopConfigError(ValueError):
    """The environment does not describe a usable LiveKit / teleop setup."""


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class LiveKitConfig:
    url: str
    api_key: str
    api_secret: str = field(repr=False)
    token_ttl: timedelta = timedelta(seconds=DEFAULT_TOKEN_TTL_S)
    webhook_tolerance: timedelta = timedelta(seconds=DEFAULT_WEBHOOK_TOLERANCE_S)
    segment_max_s: float = DEFAULT_SEGMENT_S
    # Tests cut minute-long recordings; production keeps the data model's 5-10 minutes.
    allow_short_segments: bool = False

    def __post_init__(self) -> None:
        if urlparse(self.url).scheme not in ("ws", "wss", "http", "https"):
            raise TeleopConfigError(
                f"ROBOTRACE_LIVEKIT_URL must be ws(s):// or http(s)://, got {self.url!r}"
            )
        if not self.api_key or not self.api_secret:
            raise TeleopConfigError("LiveKit API key and secret must be non-empty")
        if not _is_loopback(self.url) and self.api_secret == DEV_API_SECRET:
            raise TeleopConfigError(
                "ROBOTRACE_LIVEKIT_API_KEY and ROBOTRACE_LIVEKIT_API_SECRET are required for the "
                f"non-local LiveKit URL {self.url}"
            )
        if not self.is_dev and len(self.api_secret) < 32:
            # LiveKit itself refuses shorter secrets outside dev mode (HS256 wants >= 256 bits)
            raise TeleopConfigError("ROBOTRACE_LIVEKIT_API_SECRET must be at least 32 characters")
        ttl = self.token_ttl.total_seconds()
        if not 0 < ttl <= MAX_TOKEN_TTL_S:
            raise TeleopConfigError(f"token TTL must be in (0, {MAX_TOKEN_TTL_S}] s, got {ttl}")
        low = 1.0 if self.allow_short_segments else MIN_SEGMENT_S
        if not low <= self.segment_max_s <= MAX_SEGMENT_S:
            raise TeleopConfigError(
                f"segment length must be in [{low:g}, {MAX_SEGMENT_S}] s, got {self.segment_max_s}"
            )

    @property
    def is_dev(self) -> bool:
        return self.api_secret == DEV_API_SECRET

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveKitConfig:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        url = get("ROBOTRACE_LIVEKIT_URL") or DEV_URL
        key, secret = get("ROBOTRACE_LIVEKIT_API_KEY"), get("ROBOTRACE_LIVEKIT_API_SECRET")
        if bool(key) != bool(secret):
            raise TeleopConfigError(
                "set both ROBOTRACE_LIVEKIT_API_KEY and ROBOTRACE_LIVEKIT_API_SECRET, or neither"
            )
        if not key:
            if not _is_loopback(url):
                raise TeleopConfigError(
                    "ROBOTRACE_LIVEKIT_API_KEY and ROBOTRACE_LIVEKIT_API_SECRET are required for "
                    f"the non-local LiveKit URL {url}"
                )
            key, secret = DEV_API_KEY, DEV_API_SECRET

        def seconds(name: str, default: float) -> float:
            raw = get(name)
            try:
                return float(raw) if raw else default
            except ValueError:
                raise TeleopConfigError(f"{name} must be seconds, got {raw!r}") from None

        return cls(
            url=url,
            api_key=key,
            api_secret=secret or "",
            token_ttl=timedelta(seconds=seconds("ROBOTRACE_LIVEKIT_TOKEN_TTL_S", DEFAULT_TTL)),
            webhook_tolerance=timedelta(
                seconds=seconds("ROBOTRACE_LIVEKIT_WEBHOOK_TOLERANCE_S", DEFAULT_TOLERANCE)
            ),
            segment_max_s=seconds("ROBOTRACE_TELEOP_SEGMENT_S", DEFAULT_SEGMENT_S),
        )
