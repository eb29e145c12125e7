"""How ffmpeg opens a source: a local file or an http(s) URL, streamed (no Dagster here).

The same options go with every read of a source, so a probe and the derivatives' single pass
open it alike. ``headers`` go with every request ffmpeg makes, ranged ones included: an
If-Match pin makes the store answer 412 rather than serve bytes other than the proven ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from robotrace_assets.media.ffmpeg import MediaError

__all__ = ["RW_TIMEOUT_US", "input_args", "input_options", "is_url", "source_label"]

URL_SCHEMES = ("http", "https")
# Stalled network reads fail after this instead of hanging until the overall timeout.
RW_TIMEOUT_US = 30_000_000

InputOptions = dict[str, str | int]


def is_url(source: str) -> bool:
    return urlsplit(source).scheme.lower() in URL_SCHEMES


def source_label(source: str) -> str:
    """A name for the source in messages: a file's name; never a (possibly signed) URL."""
    return "source" if is_url(source) else Path(source).name


def input_options(
    source: str, headers: Mapping[str, str] | None = None
) -> tuple[str, InputOptions]:
    """(what ffmpeg opens, its input options) for a local path or an http(s) URL.

    Raises ``MediaError`` for a local path that is not a non-empty file: ffmpeg's own
    message for that is buried in its log.
    """
    if is_url(source):
        # Only the network protocols an https URL needs: a crafted playlist or mp4 reference
        # cannot make ffmpeg open local files or other schemes.
        options: InputOptions = {
            "protocol_whitelist": "http,https,tcp,tls",
            "reconnect": 1,
            "reconnect_streamed": 1,
            "reconnect_delay_max": 5,
            "rw_timeout": RW_TIMEOUT_US,
        }
        if headers:
            options["headers"] = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return source, options
    path = Path(source)
    if not path.is_file():
        raise MediaError("source is not a readable file")
    if path.stat().st_size == 0:
        raise MediaError("source is empty (0 bytes)")
    # "file:" so a name containing ':' is never taken for a protocol prefix.
    return f"file:{path.resolve()}", {"protocol_whitelist": "file"}


def input_args(source: str, headers: Mapping[str, str] | None = None) -> list[str]:
    """The same input as command-line arguments, ending with ``-i``."""
    target, options = input_options(source, headers)
    args: list[str] = []
    for name, value in options.items():
        args += [f"-{name}", str(value)]
    return [*args, "-i", target]
