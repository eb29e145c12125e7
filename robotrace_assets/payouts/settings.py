"""The payout settings: a Dagster resource naming the rate card file.

ROBOTRACE_PAYOUT_RATE_CARD  path of a YAML or JSON rate card (default: the shipped
                            robotrace_assets/payouts/rate_card.example.yaml)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import ConfigurableResource, EnvVar

from robotrace_assets.payouts.ratecard import RATE_CARD_ENV, RateCard, load_rate_card


class PayoutsResource(ConfigurableResource):
    """Where the rate card comes from; read on every use, so a new card applies without a
    code-location reload (each event records the amount it computed)."""

    rate_card_file: str | None = None

    def rate_card(self) -> RateCard:
        return load_rate_card(self.rate_card_file)


def payouts_from_env(env: Mapping[str, str] = os.environ) -> PayoutsResource:
    """An EnvVar where the variable is set (the UI shows its name), the shipped card otherwise."""
    path = EnvVar(RATE_CARD_ENV) if env.get(RATE_CARD_ENV, "").strip() else None
    return PayoutsResource(rate_card_file=path)  # type: ignore[arg-type]


def payouts_settings(env: Mapping[str, str] = os.environ) -> PayoutsResource:
    """The settings for code outside a Dagster run (the CLI): EnvVars resolved now."""
    return payouts_from_env(env).process_config_and_initialize()
