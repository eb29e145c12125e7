"""Signed URLs and their signature parts never survive into a message."""

from __future__ import annotations

from robotrace_assets.media.scrub import scrub

SIGNATURE = "f00dfacecafe0123456789abcdef5ec7e7"
CREDENTIAL = "AKIAFAKEFAKEFAKE"
SIGNED_QUERY = f"X-Amz-Credential={CREDENTIAL}%2F20250101&X-Amz-Signature={SIGNATURE}"


def test_scrub_removes_url_query_and_signature_values() -> None:
    url = f"https://bucket.r2.example/seg.mp4?{SIGNED_QUERY}&X-Amz-Expires=3600"
    text = f"Opening '{url}' | sig {SIGNATURE} | q {SIGNED_QUERY} | X-Amz-Signature=zzzzzz9"
    cleaned = scrub(text, url)
    for secret in (url, SIGNATURE, CREDENTIAL, "zzzzzz9"):
        assert secret not in cleaned
    assert scrub("nothing secret here", url) == "nothing secret here"
