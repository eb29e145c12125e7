"""The archival settings: a Dagster resource whose fields come from the environment.

ROBOTRACE_ARCHIVE_AFTER_DAYS  age (from the id's mint time) before a closed partition is
                              archived; default 3, 0 archives as soon as it is closed
ROBOTRACE_ARCHIVE_MAX_PER_TICK  most segments (and most media sessions) evaluated per tick;
                              default 1000
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar
from pydantic import field_validator

DEFAULT_ARCHIVE_AFTER_DAYS = 3  # 12,000 segments a day stay under ~100,000 active (bench c)
DEFAULT_MAX_PER_TICK = 1000
AFTER_DAYS_ENV = "ROBOTRACE_ARCHIVE_AFTER_DAYS"
MAX_PER_TICK_ENV = "ROBOTRACE_ARCHIVE_MAX_PER_TICK"


class LifecycleResource(ConfigurableResource):
    """When closed segments and media sessions leave Dagster's dynamic partitions."""

    archive_after_days: int = DEFAULT_ARCHIVE_AFTER_DAYS
    max_per_tick: int = DEFAULT_MAX_PER_TICK

    @field_validator("archive_after_days")
    @classmethod
    def _non_negative(cls, value: int) -> int:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"archive_after_days must be >= 0, got {value}")
        return value

    @field_validator("max_per_tick")
    @classmethod
    def _positive(cls, value: int) -> int:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"max_per_tick must be >= 1, got {value}")
        return value


def lifecycle_from_env(env: Mapping[str, str] = os.environ) -> LifecycleResource:
    """EnvVar fields where the variable is set (the UI shows its name), defaults otherwise."""

    def field(name: str, default: int) -> int:
        return EnvVar.int(name) if env.get(name, "").strip() else default  # type: ignore[return-value]

    return LifecycleResource(
        archive_after_days=field(AFTER_DAYS_ENV, DEFAULT_ARCHIVE_AFTER_DAYS),
        max_per_tick=field(MAX_PER_TICK_ENV, DEFAULT_MAX_PER_TICK),
    )


def lifecycle_settings(env: Mapping[str, str] = os.environ) -> LifecycleResource:
    """The settings for code outside a Dagster run (the CLI): EnvVars resolved now."""
    return lifecycle_from_env(env).process_config_and_initialize()
