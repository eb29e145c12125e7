"""HTTP routers of the ingest service (listed in robotrace_assets.api.app.ROUTERS)."""
