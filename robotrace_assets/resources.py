"""Dagster resources, in one place: the capture bucket, alerts and manifest signing.

Secrets are `EnvVar` fields: Dagster resolves them when a run starts and the UI shows the
variable's name, never its value. `definitions.py` builds each resource from the environment once
(`*_from_env` below); tests build them directly with the values they need.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from dagster_slack import SlackResource
from pydantic import PrivateAttr

from robotrace_assets import catalog, layout
from robotrace_assets.alerts.notify import Alert, Delivery, deliver
from robotrace_assets.delivery.manifest.signing import Ed25519Signer, HmacSigner, Signer
from robotrace_assets.lifecycle.settings import lifecycle_from_env
from robotrace_assets.objectstore.client import (
    GET_URL_TTL_S,
    NOT_FOUND_CODES,
    ObjectNotFound,
    S3Client,
    error_code,
    head_object,
    make_client,
    presign_get,
)
from robotrace_assets.payouts.settings import payouts_from_env
from robotrace_assets.settings import Settings

# The development signing key: manifests signed with it say so (key id "local-dev").
LOCAL_DEV_KEY = b"robotrace-local-dev-manifest-key"


class ObjectStoreResource(ConfigurableResource):
    """The capture bucket (SeaweedFS locally, R2 in production) and the catalog inside it."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"
    # None: accept any well-formed tenant id.
    known_tenants: list[str] | None = None
    # A declared raw object still missing this long after its envelope fails its proof.
    upload_window_s: int = 4 * 3600
    # Derivatives are regenerable: a lifecycle rule (or tag) expires them.
    derivative_expiry_days: int = 90

    _client: S3Client | None = PrivateAttr(default=None)

    @property
    def bucket_name(self) -> str:
        return self.bucket

    @property
    def is_r2(self) -> bool:
        return self.endpoint_url.endswith(".r2.cloudflarestorage.com")

    @property
    def provider(self) -> str:
        return "cloudflare-r2" if self.is_r2 else "s3-compatible"

    def client(self) -> S3Client:
        if self._client is None:
            self._client = make_client(self)
        return self._client

    def head(self, key: str, *, part_number: int | None = None) -> dict[str, Any] | None:
        """HEAD with ChecksumMode=ENABLED; None when the object does not exist."""
        return head_object(self.client(), self.bucket, key, part_number=part_number)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client().exceptions.ClientError as error:
            if error_code(error) in NOT_FOUND_CODES:
                raise ObjectNotFound(f"s3://{self.bucket}/{key} does not exist") from None
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str) -> dict[str, Any]:
        # An explicit SHA-256: the store refuses the PUT if the bytes arrive altered.
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        return dict(
            self.client().put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ChecksumSHA256=checksum,
            )
        )

    def write_record(self, table: str, partition: str, rows: Sequence[dict[str, Any]]) -> str:
        key = layout.catalog_key(table, partition)
        self.put_bytes(key, catalog.to_parquet(rows), layout.PARQUET_CONTENT_TYPE)
        return key

    def read_record(self, table: str, partition: str) -> list[dict[str, Any]] | None:
        try:
            return catalog.from_parquet(self.get_bytes(layout.catalog_key(table, partition)))
        except ObjectNotFound:
            return None

    def presigned_get(
        self, key: str, ttl_s: int = GET_URL_TTL_S, if_match: str | None = None
    ) -> str:
        """A short-lived GET URL, pinned to an ETag when given. A credential: never log it."""
        return presign_get(self.client(), self.bucket, key, ttl_s, if_match)


class AlertsResource(ConfigurableResource):
    """Where alerts go: always the log and a JSON-lines file; a webhook and Slack when set."""

    alerts_file: str
    webhook_url: str | None = None
    slack_token: str | None = None
    slack_channel: str | None = None

    def send(self, alert: Alert) -> Delivery:
        return deliver(alert, Path(self.alerts_file), self.webhook_url, self._slack_post())

    def _slack_post(self) -> Callable[[str], None] | None:
        if not (self.slack_token and self.slack_channel):
            return None
        # dagster-slack's client; built per alert, as alerts are rare.
        client = SlackResource(token=self.slack_token).get_client()
        channel = self.slack_channel

        def post(text: str) -> None:
            client.chat_postMessage(channel=channel, text=text)

        return post


class ManifestSigningResource(ConfigurableResource):
    """The key that signs delivery manifests: Ed25519 (a PEM file) or HMAC-SHA256.

    With neither configured, manifests are signed with the development key and say so in their
    key id, "local-dev"; a buyer must never accept that key."""

    hmac_key: str | None = None
    ed25519_key_file: str | None = None
    key_id: str = "local-dev"

    def signer(self) -> Signer:
        if self.ed25519_key_file:
            return Ed25519Signer(Path(self.ed25519_key_file).read_bytes(), self.key_id)
        if self.hmac_key:
            return HmacSigner(self.hmac_key.encode(), self.key_id)
        return HmacSigner(LOCAL_DEV_KEY, "local-dev")


def _env_or(env: Mapping[str, str], name: str, fallback: str | None) -> Any:
    """An EnvVar when the variable is set (the UI shows its name), else the resolved fallback."""
    return EnvVar(name) if env.get(name, "").strip() else fallback


def object_store_from_env(
    env: Mapping[str, str] = os.environ, settings: Settings | None = None
) -> ObjectStoreResource:
    # Settings resolves what the variables alone do not say: the R2 endpoint from the account
    # id, and the embedded store's loopback endpoint and credentials when nothing is set.
    settings = settings or Settings.from_env(env)
    return ObjectStoreResource(
        endpoint_url=settings.endpoint_url,
        bucket=_env_or(env, "ROBOTRACE_BUCKET", settings.bucket),
        access_key_id=_env_or(env, "ROBOTRACE_S3_ACCESS_KEY_ID", settings.access_key_id),
        secret_access_key=_env_or(
            env, "ROBOTRACE_S3_SECRET_ACCESS_KEY", settings.secret_access_key
        ),
        region=settings.region,
        known_tenants=sorted(settings.known_tenants) if settings.known_tenants else None,
        upload_window_s=settings.upload_window_s,
        derivative_expiry_days=settings.derivative_expiry_days,
    )


def open_object_store(env: Mapping[str, str] = os.environ) -> ObjectStoreResource:
    """The object store for code outside a Dagster run (the CLI): EnvVars resolved now."""
    return object_store_from_env(env).process_config_and_initialize()


def resources_from_env(env: Mapping[str, str] = os.environ) -> dict[str, ConfigurableResource]:
    """Every resource the code location binds, by the key its assets and sensors ask for; the
    environment is read once, when the code location loads."""
    settings = Settings.from_env(env)
    return {
        "object_store": object_store_from_env(env, settings),
        "alerts": AlertsResource(
            alerts_file=str(settings.alerts_file),
            webhook_url=_env_or(env, "ROBOTRACE_ALERT_WEBHOOK_URL", None),
            slack_token=_env_or(env, "ROBOTRACE_SLACK_TOKEN", None),
            slack_channel=settings.slack_channel,
        ),
        "manifest_signing": ManifestSigningResource(
            hmac_key=_env_or(env, "ROBOTRACE_MANIFEST_SIGNING_KEY", None),
            ed25519_key_file=settings.manifest_ed25519_key,
            key_id=settings.manifest_key_id,
        ),
        "lifecycle": lifecycle_from_env(env),  # archive age and per-tick cap
        "payouts": payouts_from_env(env),  # the rate card (ROBOTRACE_PAYOUT_RATE_CARD)
    }
