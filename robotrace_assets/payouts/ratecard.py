"""The payout rate card (pure): parsing, validation and lookup per task brief and device tier.

A rate card is a YAML or JSON file (ROBOTRACE_PAYOUT_RATE_CARD; the shipped
rate_card.example.yaml otherwise). Money is Decimal throughout: amounts are read from strings or
integers, never from floats, so "0.10" stays exactly ten cents.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

ANY = "*"
EXAMPLE = Path(__file__).with_name("rate_card.example.yaml")
RATE_CARD_ENV = "ROBOTRACE_PAYOUT_RATE_CARD"
_CURRENCY = re.compile(r"^[A-Z]{3}$")  # ISO 4217 alphabetic code
_MAX_RATE = Decimal("10000")  # per minute: anything above is a typo, not a rate


class RateCardError(ValueError):
    """The rate card cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True)
class QualityBonus:
    min_quality: float
    rate_per_approved_minute: Decimal


@dataclass(frozen=True)
class Rate:
    task_brief_id: str  # or "*"
    device_tier: int | None  # None: any tier
    currency: str
    rate_per_approved_minute: Decimal
    bonus: QualityBonus | None = None

    @property
    def key(self) -> str:
        tier = ANY if self.device_tier is None else str(self.device_tier)
        return f"{self.task_brief_id}/{tier}"


@dataclass(frozen=True)
class RateCard:
    version: str
    digest: str  # SHA-256 of the file's bytes: which card an amount was computed with
    rates: tuple[Rate, ...]

    def rate_for(self, task_brief_id: str, device_tier: int) -> Rate | None:
        """The most specific entry: task + tier, task, tier, then the catch-all."""
        for task, tier in (
            (task_brief_id, device_tier),
            (task_brief_id, None),
            (ANY, device_tier),
            (ANY, None),
        ):
            for rate in self.rates:
                if rate.task_brief_id == task and rate.device_tier == tier:
                    return rate
        return None


def money(value: Any, where: str) -> Decimal:
    """A non-negative amount from a string or an integer; floats are refused (1.1 is inexact)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RateCardError(f'{where} must be a string like "1.50" or an integer, got {value!r}')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RateCardError(f"{where} is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount > _MAX_RATE:
        raise RateCardError(f"{where} must be between 0 and {_MAX_RATE}, got {value!r}")
    return amount


def _bonus(raw: Any, where: str) -> QualityBonus | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RateCardError(f"{where}.quality_bonus must be a mapping")
    quality = raw.get("min_quality")
    if isinstance(quality, bool) or not isinstance(quality, int | float) or not 0 <= quality <= 1:
        raise RateCardError(f"{where}.quality_bonus.min_quality must be a number in 0..1")
    rate = money(raw.get("rate_per_approved_minute"), f"{where}.quality_bonus.rate")
    return QualityBonus(float(quality), rate)


def _tier(raw: Any, where: str) -> int | None:
    if raw == ANY:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise RateCardError(f'{where}.device_tier must be a tier number or "*", got {raw!r}')
    return raw


def _rate(raw: Any, index: int, default_currency: str | None) -> Rate:
    where = f"rates[{index}]"
    if not isinstance(raw, Mapping):
        raise RateCardError(f"{where} must be a mapping")
    unknown = set(raw) - {
        "task_brief_id",
        "device_tier",
        "currency",
        "rate_per_approved_minute",
        "quality_bonus",
    }
    if unknown:
        raise RateCardError(f"{where} has unknown fields: {', '.join(sorted(unknown))}")
    task = raw.get("task_brief_id", ANY)
    if not isinstance(task, str) or not task.strip():
        raise RateCardError(f'{where}.task_brief_id must be a task brief id or "*"')
    currency = raw.get("currency", default_currency)
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise RateCardError(f"{where}.currency must be a 3-letter code like USD, got {currency!r}")
    return Rate(
        task_brief_id=task.strip(),
        device_tier=_tier(raw.get("device_tier", ANY), where),
        currency=currency,
        rate_per_approved_minute=money(raw.get("rate_per_approved_minute"), f"{where}.rate"),
        bonus=_bonus(raw.get("quality_bonus"), where),
    )


def parse_rate_card(data: bytes, source: str = "rate card") -> RateCard:
    """A validated rate card, or a RateCardError naming the source and what is wrong."""
    try:
        doc = yaml.safe_load(data)  # JSON is YAML: one parser reads both
    except yaml.YAMLError as error:
        raise RateCardError(f"{source}: not YAML or JSON: {error}") from None
    try:
        if not isinstance(doc, Mapping):
            raise RateCardError("must be a mapping with 'version' and 'rates'")
        version = doc.get("version")
        if not isinstance(version, str | int) or not str(version).strip():
            raise RateCardError("'version' is required (a name for this card)")
        currency = doc.get("currency")
        rates = doc.get("rates")
        if not isinstance(rates, list) or not rates:
            raise RateCardError("'rates' must be a non-empty list")
        parsed = tuple(_rate(raw, i, currency) for i, raw in enumerate(rates))
        seen: set[str] = set()
        for rate in parsed:
            if rate.key in seen:
                raise RateCardError(f"two entries for task {rate.key} (task brief/tier)")
            seen.add(rate.key)
    except RateCardError as error:
        raise RateCardError(f"{source}: {error}") from None
    return RateCard(str(version).strip(), hashlib.sha256(data).hexdigest(), parsed)


def load_rate_card(path: str | Path | None = None) -> RateCard:
    """The rate card at `path` (default: the shipped example)."""
    path = Path(path) if path else EXAMPLE
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RateCardError(f"rate card {path}: cannot read: {error.strerror}") from None
    return parse_rate_card(data, f"rate card {path}")


def describe(card: RateCard) -> str:
    """The card as one JSON line, for run metadata and the CLI (no secrets in a rate card)."""
    return json.dumps(
        {
            "version": card.version,
            "sha256": card.digest[:16],
            "rates": {r.key: f"{r.rate_per_approved_minute} {r.currency}" for r in card.rates},
        },
        sort_keys=True,
    )
