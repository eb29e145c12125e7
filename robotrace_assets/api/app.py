"""The app factory: `create_app(config)` builds the ingest service.

Routers are listed in ROUTERS as "module:attribute"; adding one is one line. Each router module
depends on `robotrace_assets.api.auth.require` and `robotrace_assets.api.db.session.db_session`
(see their docstrings), and reaches shared state through `request.app.state`:
`config` (ApiConfig), `sessionmaker`, `s3` (boto3 client for the bucket), `bucket`, `limiter`.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI

from robotrace_assets.api import errors
from robotrace_assets.api.config import ApiConfig
from robotrace_assets.api.db.session import make_engine, make_sessionmaker, migrate
from robotrace_assets.api.middleware import RequestContext
from robotrace_assets.ingest.ratelimit import TokenBuckets
from robotrace_assets.objectstore.client import make_client

ROUTERS = [
    "robotrace_assets.api.routes.health:router",
    "robotrace_assets.api.routes.ingest:router",
    "robotrace_assets.api.routes.episodes:router",
    "robotrace_assets.api.routes.media:router",
    "robotrace_assets.api.routes.robotics:router",
]

log = logging.getLogger("robotrace_assets.api")


def _load(spec: str):
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def create_app(config: ApiConfig | None = None, *, migrate_db: bool = True) -> FastAPI:
    """The service for `config` (default: from ROBOTRACE_API_* and ROBOTRACE_* variables).

    With `migrate_db` (and ROBOTRACE_API_AUTO_MIGRATE not off), the database is upgraded to the
    Alembic head first (idempotent).
    """
    config = config or ApiConfig.from_env()
    if migrate_db and config.auto_migrate:
        migrate(config.database_url)
    engine = make_engine(config.database_url)
    app = FastAPI(
        title="robotrace_assets ingest service",
        version="1.0.0",
        description=(
            "RoboTrace's ingest API (wire-compatible), auth-gated artifact reads, upload URL "
            "regeneration, verified finalize and large-media multipart uploads."
        ),
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        redirect_slashes=False,  # the SDK treats any 3xx on /api/ as an error: answer 404 JSON
    )
    app.state.config = config
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.s3 = make_client(config.store)
    app.state.bucket = config.store.bucket
    app.state.limiter = TokenBuckets(config.rate_per_s, config.rate_burst)
    errors.install(app)
    for spec in ROUTERS:
        app.include_router(_load(spec))
    app.add_middleware(RequestContext, max_body_bytes=config.max_body_bytes)
    return app
