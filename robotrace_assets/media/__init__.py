"""Running and probing ffmpeg for production code (no Dagster here).

- ``ffmpeg``: the bundled binary, the one runner (one timeout, one error type, stderr scrubbed
  of signed URLs) and a streaming variant for decodes read from stdout.
- ``inputs``: the input options every ffmpeg read uses (protocol whitelist, reconnects, the
  If-Match pin headers for a signed URL; ``file:`` for a local path).
- ``probe``: packet timestamps and keyframes (stream copy, nothing decoded), the first video
  stream's codec and size, dropped-frame counting.
- ``measure``: a segment's measured facts (fps, gaps, truncation) from its packet log.
- ``scrub``: removing a signed URL and its signature parts from text.

The synthetic capture side (``robotrace_assets.capture``) uses this package; production code
never imports the capture simulator.
"""
