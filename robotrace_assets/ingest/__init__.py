"""Ingest domain logic, no web framework and no Dagster: keys, wire models, verification."""
