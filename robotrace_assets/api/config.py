"""Service configuration from ROBOTRACE_API_* environment variables (the object store itself is
configured by robotrace_assets.settings, shared with the Dagster code location)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from robotrace_assets.settings import Settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780


class ApiConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ApiConfig:
    database_url: str = field(repr=False)  # a PostgreSQL URL can carry a password
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Where artifact reads should point clients (RoboTrace's R2_PUBLIC_URL): `public_url` in the
    # create response is null unless this is set. The bucket itself stays private.
    public_artifact_base_url: str | None = None
    storage_enabled: bool = True  # False: storage "unconfigured", metadata-only runs
    rate_per_s: float = 50.0  # token refill per API key
    rate_burst: int = 100
    max_body_bytes: int = 1024 * 1024
    # Upgrade the schema when the app starts. Turn off for replicas (run `robotrace api migrate`
    # once per release instead), so replicas starting together never race on a migration.
    auto_migrate: bool = True
    settings: Settings | None = field(default=None, repr=False)

    @property
    def store(self) -> Settings:
        return self.settings or Settings.from_env()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"ROBOTRACE_API_{name}", "").strip()
            return value or None

        settings = Settings.from_env(env)
        url = get("DATABASE_URL") or default_database_url(settings.data_dir)
        try:
            return cls(
                database_url=url,
                host=get("HOST") or DEFAULT_HOST,
                port=int(get("PORT") or DEFAULT_PORT),
                public_artifact_base_url=(get("PUBLIC_URL") or "").rstrip("/") or None,
                storage_enabled=(get("STORAGE") or "on").lower() not in {"off", "unconfigured"},
                rate_per_s=float(get("RATE_PER_S") or 50.0),
                rate_burst=int(get("RATE_BURST") or 100),
                max_body_bytes=int(get("MAX_BODY_BYTES") or 1024 * 1024),
                auto_migrate=(get("AUTO_MIGRATE") or "on").lower() not in {"off", "0", "false"},
                settings=settings,
            )
        except ValueError as error:
            raise ApiConfigError(f"invalid ROBOTRACE_API_* setting: {error}") from None


def default_database_url(data_dir: Path) -> str:
    """The embedded default: one SQLite file under the data directory."""
    return f"sqlite:///{data_dir / 'ingest.sqlite3'}"
