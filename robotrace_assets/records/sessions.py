"""Media-session records: the validated session envelope."""

from __future__ import annotations

from collections.abc import Collection

from robotrace_assets import layout
from robotrace_assets.envelopes import MediaSessionEnvelope
from robotrace_assets.records.loading import load_envelope
from robotrace_assets.records.store import RecordStore


def load_session_envelope(
    store: RecordStore, media_session_id: str, known_tenants: Collection[str] | None = None
) -> MediaSessionEnvelope:
    """The media session's envelope from the bucket, or a RecordError saying what is wrong."""
    return load_envelope(
        store,
        what="media session",
        prefix="msess",
        entity_id=media_session_id,
        key_of=layout.session_envelope_key,
        parse=MediaSessionEnvelope.parse,
        id_of=lambda envelope: envelope.media_session_id,
        known_tenants=known_tenants,
    )
