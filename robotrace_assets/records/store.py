"""The slice of the object store that records need, as a protocol (the Dagster resource and any
plain client wrapper satisfy it), so this package never imports Dagster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class RecordStore(Protocol):
    def get_bytes(self, key: str) -> bytes:
        """The object's bytes; raises ObjectNotFound when there is none."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> Any: ...

    def read_record(self, table: str, partition: str) -> list[dict[str, Any]] | None: ...

    def write_record(self, table: str, partition: str, rows: Sequence[dict[str, Any]]) -> str: ...


class BucketStore(RecordStore, Protocol):
    """A record store that also hands out its S3 client, for code that copies, signs or
    streams objects itself."""

    @property
    def bucket_name(self) -> str: ...

    def client(self) -> Any: ...
