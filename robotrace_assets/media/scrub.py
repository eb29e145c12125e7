"""Keeping signed URLs out of messages: a presigned GET URL is a credential (no Dagster here)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["scrub"]

_SECRET_PARAM_RE = re.compile(
    r"(?i)((?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|token|sig)=)"
    r"[^&\s'\"]+"
)
# Shorter query values (e.g. "X-Amz-Expires=3600") are not secret and too common to replace.
_MIN_SECRET_CHARS = 8


def scrub(text: str, source: str = "") -> str:
    """``text`` with the source (a possible presigned URL) and its signature parts removed.

    ffmpeg may echo the whole URL, only its query, or a percent-encoded form; all of those
    are replaced, and any signature-looking query parameter is redacted as a backstop.
    """
    secrets: set[str] = set()
    if source:
        secrets.add(source)
        parts = urlsplit(source)
        if parts.query:
            secrets.add(parts.query)
            for _, value in parse_qsl(parts.query, keep_blank_values=False):
                if len(value) >= _MIN_SECRET_CHARS:
                    secrets.update({value, quote(value, safe="")})
        if parts.password:
            secrets.add(parts.password)
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "<source>")
    return _SECRET_PARAM_RE.sub(r"\1<redacted>", text)
