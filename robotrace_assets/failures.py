"""Where a record error becomes a Dagster failure of its partition (the one Dagster-side rule)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Failure

from robotrace_assets.records.errors import RecordError


@contextmanager
def failing_on_record_errors() -> Iterator[None]:
    """A record that cannot be loaded fails this partition with the record's own message; it is
    retried only when running again can help (a record a later step will write)."""
    try:
        yield
    except RecordError as error:
        raise Failure(description=str(error), allow_retries=error.retryable) from None
