"""The ingest service's own database (SQLAlchemy 2, Alembic): tenants, keys, episodes, media."""
