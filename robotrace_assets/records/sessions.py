"""Media-session records: the validated session envelope."""

from __future__ import annotations

from collections.abc import Collection

from robotrace_assets import layout
from robotrace_assets.envelopes import EnvelopeError, MediaSessionEnvelope
from robotrace_assets.ids import InvalidId, check_id
from robotrace_assets.objectstore.client import ObjectNotFound
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.store import RecordStore


def load_session_envelope(
    store: RecordStore, media_session_id: str, known_tenants: Collection[str] | None = None
) -> MediaSessionEnvelope:
    """The media session's envelope from the bucket, or a RecordError saying what is wrong."""
    try:
        check_id("msess", media_session_id)
        key = layout.session_envelope_key(media_session_id)
        envelope = MediaSessionEnvelope.parse(store.get_bytes(key))
    except (InvalidId, EnvelopeError, ObjectNotFound) as error:
        raise RecordError(f"media session {media_session_id}: {error}") from None
    if envelope.media_session_id != media_session_id:
        raise RecordError(f"envelope at {key} is for {envelope.media_session_id}")
    if known_tenants is not None and envelope.tenant_id not in known_tenants:
        raise RecordError(f"media session {media_session_id}: unknown tenant {envelope.tenant_id}")
    return envelope
