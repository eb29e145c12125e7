"""Episode operations behind the ingest routes: open, regenerate URLs, finalize, read.

Finalize never reads artifact bytes: it HEADs each requested artifact (robotrace_assets.ingest.
verify), and when the checks pass and there is a video, writes the media session and segment
envelopes and their inbox entries (robotrace_assets.intake.handoff), so the Dagster graph
discovers the episode exactly as it discovers any capture; the full-byte proof runs there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from random import SystemRandom
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from robotrace_assets import catalog, ids
from robotrace_assets.api.db.models import Artifact, Episode, Tenant
from robotrace_assets.api.errors import ApiError, not_found
from robotrace_assets.api.storage import Bucket, iso_ms
from robotrace_assets.ingest import episodes as model
from robotrace_assets.ingest.sensors_probe import trajectory_hz
from robotrace_assets.ingest.verify import Observed, verify_artifacts
from robotrace_assets.ingest.wire import CONTENT_TYPES, EpisodeCreate, EpisodeFinalize
from robotrace_assets.intake.handoff import hand_off_segment, hand_off_session

_rng = SystemRandom()
HANDED_OFF = ("pending", "verified")


def now() -> datetime:
    return datetime.now(UTC)


def aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def tenant_defaults(tenant: Tenant) -> model.TenantDefaults:
    return model.TenantDefaults(
        tenant_id=tenant.id,
        operator_id=tenant.operator_id,
        task_brief_id=tenant.task_brief_id,
        device_model=tenant.device_model,
        device_tier=tenant.device_tier,
        device_has_lidar=tenant.device_has_lidar,
        safety_rules_version=tenant.safety_rules_version,
        consent=tenant.default_consent,
        license=tenant.default_license,
    )


def check_terms(db: Session, tenant_id: str, metadata: dict[str, Any]) -> None:
    """400 now rather than a failed hand-off later when metadata.consent/license are malformed."""
    if "consent" in metadata or "license" in metadata:
        try:
            model.terms(metadata, tenant_defaults(db.get(Tenant, tenant_id)))  # type: ignore[arg-type]
        except model.TermsError as error:
            raise ApiError(400, f"Invalid request: {error}") from None


def load(db: Session, tenant_id: str, episode_id: str, *, lock: bool = False) -> Episode:
    """The tenant's episode; 404 for an unknown id, a malformed id or another tenant's episode."""
    try:
        canonical = str(uuid.UUID(episode_id))
    except ValueError:
        raise not_found() from None
    where = (Episode.id == canonical, Episode.tenant_id == tenant_id)
    query = select(Episode).where(*where)
    if lock:
        # A no-op UPDATE first: it takes SQLite's write lock (SELECT ... FOR UPDATE is a no-op
        # there) and PostgreSQL's row lock, so concurrent finalizes of one episode run one after
        # the other and no metadata merge is lost.
        db.execute(update(Episode).where(*where).values(status=Episode.status))
        query = query.with_for_update().execution_options(populate_existing=True)
    episode = db.scalars(query).first()
    if episode is None:
        raise not_found()
    return episode


def open_episode(
    db: Session, bucket: Bucket | None, tenant_id: str, body: EpisodeCreate
) -> dict[str, Any]:
    check_terms(db, tenant_id, body.metadata)
    at = now()
    episode = Episode(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        status="recording",
        storage="r2" if bucket else "unconfigured",
        name=body.name,
        source=body.source,
        robot=body.robot,
        policy_version=body.policy_version,
        env_version=body.env_version,
        git_sha=body.git_sha,
        seed=body.seed,
        fps=body.fps,
        metadata_=body.metadata,
        extra=dict(body.model_extra or {}),
        request_uploads=list(body.request_uploads),
        media_session_id=ids.new_id("msess", at, _rng),
        segment_id=ids.new_id("seg", at, _rng),
        created_at=at,
        updated_at=at,
    )
    db.add(episode)
    db.flush()  # the episode row first: artifacts reference it
    urls = []
    for kind in body.request_uploads:
        key = model.object_key(tenant_id, episode.media_session_id, episode.segment_id, kind)
        db.add(
            Artifact(
                episode_id=episode.id, kind=kind, object_key=key, content_type=CONTENT_TYPES[kind]
            )
        )
        if bucket:
            urls.append(bucket.upload_url(kind, key, CONTENT_TYPES[kind], at))
    return {
        "episode_id": episode.id,
        "status": "recording",
        "storage": episode.storage,
        "upload_urls": urls,
    }


def regenerate_urls(
    db: Session,
    bucket: Bucket | None,
    tenant_id: str,
    episode_id: str,
    kinds: Sequence[str] | None,
) -> dict[str, Any]:
    """Fresh 30-minute PUT URLs for the same episode and object keys (RoboTrace's known gap)."""
    episode = load(db, tenant_id, episode_id)
    if episode.status == "archived":
        raise ApiError(409, "Episode is archived; restore it first.")
    if (episode.verification or {}).get("state") in HANDED_OFF:
        raise ApiError(409, "Episode is finalized and handed to the proof; its objects are final.")
    wanted = kinds if kinds is not None else list(episode.request_uploads)
    unknown = [k for k in wanted if k not in episode.request_uploads]
    if unknown:
        raise ApiError(400, f"Invalid request: kinds {unknown} were not requested at create.")
    at = now()
    urls = []
    if bucket and episode.storage == "r2":
        for kind in dict.fromkeys(wanted):
            key = model.object_key(tenant_id, episode.media_session_id, episode.segment_id, kind)
            urls.append(bucket.upload_url(kind, key, CONTENT_TYPES[kind], at))
    return {
        "episode_id": episode.id,
        "status": episode.status,
        "storage": episode.storage if bucket else "unconfigured",
        "upload_urls": urls,
    }


def _merge(episode: Episode, body: EpisodeFinalize) -> None:
    if body.duration_s is not None:
        episode.duration_s = body.duration_s
    if body.fps is not None:
        episode.fps = body.fps
    if body.bytes_total is not None:
        episode.bytes_total = body.bytes_total
    if body.metadata:
        episode.metadata_ = {**(episode.metadata_ or {}), **body.metadata}  # per key
    if body.model_extra:
        episode.extra = {**(episode.extra or {}), **body.model_extra}


def finalize(
    db: Session, bucket: Bucket | None, tenant_id: str, episode_id: str, body: EpisodeFinalize
) -> dict[str, Any]:
    episode = load(db, tenant_id, episode_id, lock=True)
    if episode.status == "archived":
        raise ApiError(409, "Episode is archived; restore it first.")
    check_terms(db, tenant_id, {**(episode.metadata_ or {}), **(body.metadata or {})})
    # The episode is locked (see load): finalizes of one episode are serialized, so the merge
    # and the decision to hand off see the latest state. Nothing else is flushed before commit.
    before = _snapshot(episode)
    with db.no_autoflush:
        _merge(episode, body)
        state = (episode.verification or {}).get("state")
        if episode.status == "ready" and (state in HANDED_OFF or body.status == "failed"):
            pass  # idempotent: a ready run does not roll back, and a handed-off one is final
        elif body.status == "failed":
            episode.status = "failed"
            episode.verification = _not_applicable("the run was finalized as failed")
        else:
            episode.status = "ready"
            episode.verification = _verify_and_hand_off(db, bucket, episode)
        if _snapshot(episode) != before:  # an idempotent re-finalize answers the same payload
            episode.updated_at = now()
    return {
        "episode_id": episode.id,
        "status": episode.status,
        "updated_at": iso_ms(aware(episode.updated_at)),
        "verification": verification_body(episode, None),
    }


def _snapshot(episode: Episode) -> tuple[Any, ...]:
    fields = ("status", "duration_s", "fps", "bytes_total", "metadata_", "extra", "verification")
    return tuple(repr(getattr(episode, f)) for f in fields)


def _not_applicable(reason: str) -> dict[str, Any]:
    return {
        "state": "not_applicable",
        "checks": [{"name": "provable", "passed": True, "reason": reason}],
    }


def _verify_and_hand_off(db: Session, bucket: Bucket | None, episode: Episode) -> dict[str, Any]:
    if bucket is None or episode.storage != "r2":
        return _not_applicable("storage is unconfigured: a metadata-only run")
    if not episode.request_uploads:
        return _not_applicable("no artifacts were requested: a metadata-only run")
    artifacts = {
        a.kind: a for a in db.scalars(select(Artifact).where(Artifact.episode_id == episode.id))
    }
    observed: dict[str, Observed | None] = {}
    for kind in episode.request_uploads:
        seen = bucket.head(artifacts[kind].object_key)
        observed[kind] = seen
        artifacts[kind].observed_size = seen.size if seen else None
        artifacts[kind].observed_etag = seen.etag if seen else None
    outcome = verify_artifacts(
        episode.request_uploads, observed, CONTENT_TYPES, episode.bytes_total
    )
    checks = [c.as_dict() for c in outcome.checks]
    if not outcome.passed:
        return {"state": "failed", "checks": checks}
    if not outcome.provable:
        return {
            "state": "not_applicable",
            "checks": checks
            + _not_applicable("no video was requested: nothing to prove")["checks"],
        }
    facts = _facts(episode)
    tenant = tenant_defaults(db.get(Tenant, episode.tenant_id))  # type: ignore[arg-type]
    present = {k: seen for k in outcome.present if (seen := observed[k]) is not None}
    sensors_hz = _sensors_hz(bucket, artifacts.get("sensors"), present.get("sensors"))
    hand_off_session(bucket.client, bucket.name, model.session_envelope(facts, tenant))
    hand_off_segment(
        bucket.client,
        bucket.name,
        model.segment_envelope(facts, present, CONTENT_TYPES, sensors_hz),
    )
    episode.handed_off_at = now()
    return {"state": "pending", "checks": checks}


def _sensors_hz(bucket: Bucket, artifact: Artifact | None, seen: Observed | None) -> float | None:
    """The rate of an uploaded sensors file in our Parquet trajectory schema (footer only)."""
    if artifact is None or seen is None:
        return None
    key, etag = artifact.object_key, seen.etag

    def read_range(offset: int, length: int) -> bytes:
        return bucket.read_range(key, offset, length, etag)

    try:
        return trajectory_hz(seen.size, read_range)
    except bucket.client.exceptions.ClientError:
        return None  # replaced since the HEAD: the proof will say so; keep it a declared object


def _facts(episode: Episode) -> model.EpisodeFacts:
    return model.EpisodeFacts(
        episode_id=episode.id,
        tenant_id=episode.tenant_id,
        media_session_id=episode.media_session_id,
        segment_id=episode.segment_id,
        source=episode.source,
        created_at=aware(episode.created_at),
        finalized_at=now(),
        duration_s=episode.duration_s,
        fields={f: getattr(episode, f) for f in model.PROVENANCE_FIELDS},
        metadata=episode.metadata_ or {},
    )


def verification_body(episode: Episode, bucket: Bucket | None) -> dict[str, Any]:
    """The episode's verification; with a bucket, the proof record decides pending/verified."""
    stored = dict(episode.verification or {"state": "not_applicable", "checks": []})
    if bucket is not None and stored.get("state") in HANDED_OFF:
        rows = bucket.record(catalog.PROOFS, episode.segment_id)
        if rows:
            proof = rows[0]
            failed = list(proof.get("failed_checks") or [])
            if proof.get("integrity_status") == "verified" and not failed:
                stored["state"] = "verified"
            else:
                stored["state"] = "failed"
                stored["checks"] = list(stored.get("checks", [])) + [
                    {"name": name, "passed": False, "reason": "failed in the provider proof"}
                    for name in failed or ["integrity_status"]
                ]
    handed_off = episode.handed_off_at is not None
    return {
        "state": stored["state"],
        "checks": stored.get("checks", []),
        "sha256_declared_by_client": False,
        "media_session_id": episode.media_session_id if handed_off else None,
        "segment_id": episode.segment_id if handed_off else None,
    }


def episode_body(db: Session, bucket: Bucket | None, episode: Episode) -> dict[str, Any]:
    artifacts = db.scalars(select(Artifact).where(Artifact.episode_id == episode.id)).all()
    return {
        "episode_id": episode.id,
        "status": episode.status,
        "storage": episode.storage,
        "name": episode.name,
        "source": episode.source,
        "robot": episode.robot,
        "policy_version": episode.policy_version,
        "env_version": episode.env_version,
        "git_sha": episode.git_sha,
        "seed": episode.seed,
        "fps": episode.fps,
        "duration_s": episode.duration_s,
        "bytes_total": episode.bytes_total,
        "metadata": episode.metadata_ or {},
        "request_uploads": list(episode.request_uploads),
        "artifacts": [
            {"kind": a.kind, "content_type": a.content_type, "size_bytes": a.observed_size}
            for a in artifacts
        ],
        "created_at": iso_ms(aware(episode.created_at)),
        "updated_at": iso_ms(aware(episode.updated_at)),
        "verification": verification_body(episode, bucket),
    }
