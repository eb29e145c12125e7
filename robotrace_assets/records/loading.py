"""Loading an envelope from the bucket: the checks every kind of envelope gets."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol, TypeVar

from robotrace_assets.envelopes import EnvelopeError
from robotrace_assets.ids import InvalidId, check_id
from robotrace_assets.objectstore.client import ObjectNotFound
from robotrace_assets.records.errors import RecordError
from robotrace_assets.records.store import RecordStore


class Envelope(Protocol):
    @property
    def tenant_id(self) -> str: ...


E = TypeVar("E", bound=Envelope)


def load_envelope(
    store: RecordStore,
    *,
    what: str,
    prefix: str,
    entity_id: str,
    key_of: Callable[[str], str],
    parse: Callable[[bytes], E],
    id_of: Callable[[E], str],
    known_tenants: Collection[str] | None,
) -> E:
    """The envelope of `entity_id`, or a RecordError naming what is wrong: a malformed id, a
    missing or invalid envelope, one filed under another id, or a tenant we do not serve."""
    try:
        check_id(prefix, entity_id)
        key = key_of(entity_id)
        envelope = parse(store.get_bytes(key))
    except (InvalidId, EnvelopeError, ObjectNotFound) as error:
        raise RecordError(f"{what} {entity_id}: {error}") from None
    if id_of(envelope) != entity_id:
        raise RecordError(f"envelope at {key} is for {id_of(envelope)}, not {entity_id}")
    if known_tenants is not None and envelope.tenant_id not in known_tenants:
        raise RecordError(f"{what} {entity_id}: unknown tenant {envelope.tenant_id}")
    return envelope
