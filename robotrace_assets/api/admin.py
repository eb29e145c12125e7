"""Tenants, API keys and archiving: the operations behind `robotrace tenants|keys|episodes`.

A key's full token is returned once, by `create_key` / `rotate_key`, and never stored: the
table keeps its id and the SHA-256 of its secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from random import SystemRandom
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from robotrace_assets import ids
from robotrace_assets.api.db.models import ApiKey, Episode, Tenant
from robotrace_assets.ingest import keys

_rng = SystemRandom()
DEFAULT_SAFETY_RULES = "v4.2"


class AdminError(ValueError):
    pass


@dataclass(frozen=True)
class TenantTerms:
    """Provenance defaults of a tenant: what a RoboTrace client never sends."""

    operator_id: str | None = None
    task_brief_id: str | None = None
    device_model: str = "robotrace-client"
    device_tier: int = 0
    device_has_lidar: bool = False
    safety_rules_version: str = DEFAULT_SAFETY_RULES
    consent_receipt_id: str | None = None  # default consent for its episodes, if any
    license_scope_id: str | None = None  # default license for its episodes, if any
    allowed_use: tuple[str, ...] = ()


def create_tenant(db: Session, name: str, terms: TenantTerms | None = None) -> Tenant:
    terms = terms or TenantTerms()
    at = datetime.now(UTC)
    for kind, value in (
        ("op", terms.operator_id),
        ("tb", terms.task_brief_id),
        ("consent", terms.consent_receipt_id),
        ("lic", terms.license_scope_id),
    ):
        if value is not None and not ids.is_id(kind, value):
            raise AdminError(f"{value!r} is not a {kind}_<ULID> id")
    consent = (
        {
            "receipt_id": terms.consent_receipt_id,
            "brief_accepted_at": at.isoformat().replace("+00:00", "Z"),
            "co_resident_required": False,
        }
        if terms.consent_receipt_id
        else None
    )
    license_: dict[str, Any] | None = (
        {"scope_id": terms.license_scope_id, "allowed_use": list(dict.fromkeys(terms.allowed_use))}
        if terms.license_scope_id
        else None
    )
    tenant = Tenant(
        id=ids.new_id("ten", at, _rng),
        name=name,
        created_at=at,
        operator_id=terms.operator_id or ids.new_id("op", at, _rng),
        task_brief_id=terms.task_brief_id or ids.new_id("tb", at, _rng),
        device_model=terms.device_model,
        device_tier=terms.device_tier,
        device_has_lidar=terms.device_has_lidar,
        safety_rules_version=terms.safety_rules_version,
        default_consent=consent,
        default_license=license_,
    )
    db.add(tenant)
    db.flush()
    return tenant


def _tenant(db: Session, tenant_id: str) -> Tenant:
    tenant = db.get(Tenant, tenant_id)
    if tenant is None:
        raise AdminError(f"no tenant {tenant_id}")
    return tenant


def create_key(
    db: Session,
    tenant_id: str,
    scopes: tuple[str, ...] = keys.DEFAULT_SCOPES,
    label: str | None = None,
) -> tuple[ApiKey, str]:
    """A new key row and its token (shown once)."""
    _tenant(db, tenant_id)
    try:
        checked = keys.check_scopes(scopes)
    except ValueError as error:
        raise AdminError(str(error)) from None
    minted = keys.mint()
    row = ApiKey(
        id=minted.key_id,
        tenant_id=tenant_id,
        secret_sha256=minted.secret_sha256,
        scopes=list(checked),
        label=label,
        created_at=datetime.now(UTC),
    )
    db.add(row)
    db.flush()
    return row, minted.token


def list_keys(db: Session, tenant_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if tenant_id:
        query = query.where(ApiKey.tenant_id == tenant_id)
    return list(db.scalars(query))


def _key(db: Session, key_id: str) -> ApiKey:
    key_id = key_id.split("_")[1] if key_id.startswith("rt_") else key_id
    row = db.get(ApiKey, key_id)
    if row is None:
        raise AdminError(f"no key {key_id}")
    return row


def revoke_key(db: Session, key_id: str) -> ApiKey:
    """Revoked at once: the next request with it gets the same 401 as an unknown key."""
    row = _key(db, key_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def rotate_key(db: Session, key_id: str) -> tuple[ApiKey, str]:
    """A new key with the same tenant, scopes and label; the old one is revoked."""
    old = _key(db, key_id)
    if old.revoked_at is not None:
        raise AdminError(f"key {old.id} is revoked; create a new one instead")
    new, token = create_key(db, old.tenant_id, tuple(old.scopes), old.label)
    old.revoked_at = datetime.now(UTC)
    old.replaced_by = new.id
    return new, token


def archive_episode(db: Session, episode_id: str) -> Episode:
    """Archived: finalize and new upload URLs answer 409 until it is restored."""
    episode = db.get(Episode, episode_id)
    if episode is None:
        raise AdminError(f"no episode {episode_id}")
    if episode.status != "archived":
        episode.archived_from = episode.status
        episode.status = "archived"
        episode.updated_at = datetime.now(UTC)
    return episode


def restore_episode(db: Session, episode_id: str) -> Episode:
    episode = db.get(Episode, episode_id)
    if episode is None:
        raise AdminError(f"no episode {episode_id}")
    if episode.status == "archived":
        episode.status = episode.archived_from or "recording"
        episode.archived_from = None
        episode.updated_at = datetime.now(UTC)
    return episode
