"""The catalog's records, typed: segments, media sessions and provider proofs.

Every floor reads records through here (assets, checks, sensors, the guard, the CLI), so a row's
shape and the rules for loading it live in one place. No Dagster import: a record that cannot be
loaded raises RecordError, and the Dagster layer turns that into a failure of its partition.
"""
