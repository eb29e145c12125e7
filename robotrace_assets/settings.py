"""The one configuration surface: environment variables, read in one place.

Everything that differs between the embedded SeaweedFS store and Cloudflare R2 is here, so that
moving to R2 is a change of environment, never of code. Secrets are read from the environment
when a client is built and are never part of Dagster run config (which the UI displays).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Local-only defaults: the embedded store is bound to 127.0.0.1 and holds synthetic data.
LOCAL_ACCESS_KEY_ID = "robotrace-local"
LOCAL_SECRET_ACCESS_KEY = "robotrace-local-secret-change-me"
LOCAL_S3_PORT = 8333
DEFAULT_BUCKET = "robotrace-captures"


def sensor_interval_s() -> int:
    """Seconds between sensor ticks (Dagster's default minimum is 30; tests go faster)."""
    value = os.environ.get("ROBOTRACE_SENSOR_INTERVAL_S", "").strip()
    return max(1, int(value)) if value.isdigit() else 30


def intake_batch_size() -> int:
    """Most segments per intake run under a burst (1 turns batching off)."""
    value = os.environ.get("ROBOTRACE_INTAKE_BATCH_SIZE", "").strip()
    return max(1, int(value)) if value.isdigit() else 25


def transcript_engine() -> tuple[str, Path | None]:
    """The transcript's ASR engine (pocketsphinx, faster-whisper) and the model directory."""
    engine = os.environ.get("ROBOTRACE_TRANSCRIPT_ENGINE", "").strip() or "pocketsphinx"
    model_dir = os.environ.get("ROBOTRACE_TRANSCRIPT_MODEL_DIR", "").strip()
    return engine, Path(model_dir) if model_dir else None


class SettingsError(ValueError):
    """The environment does not describe a usable object store."""


def r2_endpoint(account_id: str) -> str:
    account_id = account_id.strip()
    if not account_id.isalnum():
        raise SettingsError(f"ROBOTRACE_R2_ACCOUNT_ID must be alphanumeric, got {account_id!r}")
    return f"https://{account_id}.r2.cloudflarestorage.com"


@dataclass(frozen=True)
class Settings:
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str
    data_dir: Path
    local_s3_port: int
    alert_webhook_url: str | None = field(default=None, repr=False)
    slack_token: str | None = field(default=None, repr=False)
    slack_channel: str | None = None
    known_tenants: frozenset[str] | None = None  # None: accept any well-formed tenant id
    derivative_expiry_days: int = 90  # derivatives are regenerable: a lifecycle rule expires them
    manifest_hmac_key: str | None = field(default=None, repr=False)
    manifest_ed25519_key: str | None = field(default=None, repr=False)  # PEM file path
    manifest_key_id: str = "local-dev"
    upload_window_s: int = 4 * 3600  # a declared raw object missing this long fails its proof

    @property
    def is_r2(self) -> bool:
        return self.endpoint_url.endswith(".r2.cloudflarestorage.com")

    @property
    def provider(self) -> str:
        return "cloudflare-r2" if self.is_r2 else "s3-compatible"

    @property
    def alerts_file(self) -> Path:
        return self.data_dir / "alerts.jsonl"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        account = get("ROBOTRACE_R2_ACCOUNT_ID")
        explicit_endpoint = get("ROBOTRACE_S3_ENDPOINT_URL")
        port = int(get("ROBOTRACE_LOCAL_S3_PORT") or LOCAL_S3_PORT)
        if account and explicit_endpoint:
            raise SettingsError(
                "set either ROBOTRACE_R2_ACCOUNT_ID or ROBOTRACE_S3_ENDPOINT_URL, not both"
            )
        if account:
            endpoint = r2_endpoint(account)
        else:
            endpoint = explicit_endpoint or f"http://127.0.0.1:{port}"
        is_local = endpoint.startswith(("http://127.0.0.1", "http://localhost"))

        access_key = get("ROBOTRACE_S3_ACCESS_KEY_ID")
        secret = get("ROBOTRACE_S3_SECRET_ACCESS_KEY")
        if not (access_key and secret):
            if not is_local:
                raise SettingsError(
                    "ROBOTRACE_S3_ACCESS_KEY_ID and ROBOTRACE_S3_SECRET_ACCESS_KEY are required "
                    f"for the non-local endpoint {endpoint}"
                )
            access_key, secret = LOCAL_ACCESS_KEY_ID, LOCAL_SECRET_ACCESS_KEY

        region = get("ROBOTRACE_S3_REGION") or ("auto" if account else "us-east-1")
        data_dir = Path(get("ROBOTRACE_DATA_DIR") or PROJECT_ROOT / "data").resolve()
        return cls(
            endpoint_url=endpoint,
            bucket=get("ROBOTRACE_BUCKET") or DEFAULT_BUCKET,
            access_key_id=access_key,
            secret_access_key=secret,
            region=region,
            data_dir=data_dir,
            local_s3_port=port,
            alert_webhook_url=get("ROBOTRACE_ALERT_WEBHOOK_URL"),
            slack_token=get("ROBOTRACE_SLACK_TOKEN"),
            slack_channel=get("ROBOTRACE_SLACK_CHANNEL"),
            derivative_expiry_days=int(get("ROBOTRACE_DERIVATIVE_EXPIRY_DAYS") or 90),
            manifest_hmac_key=get("ROBOTRACE_MANIFEST_SIGNING_KEY"),
            manifest_ed25519_key=get("ROBOTRACE_MANIFEST_ED25519_KEY_FILE"),
            manifest_key_id=get("ROBOTRACE_MANIFEST_KEY_ID") or "local-dev",
            upload_window_s=int(get("ROBOTRACE_UPLOAD_WINDOW_S") or 4 * 3600),
            known_tenants=(
                frozenset(t.strip() for t in tenants.split(",") if t.strip())
                if (tenants := get("ROBOTRACE_TENANTS"))
                else None
            ),
        )
