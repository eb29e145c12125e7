"""Engine, sessions and migrations: the interface other routers build on.

Other routers (the LiveKit sessions API) use this module as is:

    from robotrace_assets.api.db.models import Base         # declarative base for new tables
    from robotrace_assets.api.db.session import DbSession   # FastAPI dependency (Annotated)

    @router.post("/api/robotics/...")
    def handler(db: DbSession): ...

`DbSession` yields a Session bound to the app's engine and commits when the handler returns
without an exception (rolls back otherwise), BEFORE the response is sent (scope "function"), so
a client that reads right after a write sees it. Use this alias rather than Depends(db_session)
so that the auth dependency and the handler share one session per request. New tables go
into their own Alembic revision, chained after the current head (`0001_ingest` is the first;
keep a single head).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeAlias

from fastapi import Depends
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request


def normalize_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg2 (installed); SQLAlchemy 2.1 would pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """An engine for SQLite (the embedded default) or PostgreSQL (production, several replicas)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=16
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=16, max_overflow=16, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue, not fail.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def db_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a Session from the app's engine, committed when the handler succeeds."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Any:
    """The Alembic configuration shipped in the package (alembic.ini beside migrations/)."""
    from alembic.config import Config

    root = resources.files("robotrace_assets.api.db")
    config = Config(str(root.joinpath("alembic.ini")))
    config.set_main_option("script_location", str(root.joinpath("migrations")))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` to `revision` (idempotent; safe for several replicas on
    PostgreSQL since Alembic runs each revision in a transaction)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


# One alias for every handler and dependency: the same Depends object shares one session per
# request, and scope="function" commits before the response leaves.
DbSession: TypeAlias = Annotated[Session, Depends(db_session, scope="function")]
