"""What goes wrong when a record is loaded."""

from __future__ import annotations


class RecordError(Exception):
    """A record is missing or unusable; the message says what to do.

    `retryable` says whether running again can help without anyone changing the input (a record
    a later step will write) or not (a malformed envelope, a tenant we do not serve).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class RecordMissing(RecordError):
    """The record has not been written yet: materialize the asset that writes it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)
