"""The ingest service: RoboTrace's ingest API (wire-compatible) and our large-media endpoints."""
