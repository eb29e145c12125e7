"""Partitions, in one place: dynamic, keyed by the ids the bucket sensor finds in envelopes.

Two separate one-dimensional definitions rather than a MultiPartitionsDefinition: a multi
partition is the full cross product, which would invent segments for sessions that never had
them. Session-level assets aggregate their own segments by reading the catalog.
"""

from dagster import DynamicPartitionsDefinition

media_session_partitions = DynamicPartitionsDefinition(name="media_session")
segment_partitions = DynamicPartitionsDefinition(name="segment")
