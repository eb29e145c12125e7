"""`robotrace api serve`, `robotrace tenants ...`, `robotrace keys ...`, `robotrace episodes ...`.

Registered from robotrace_assets/cli.py with `register(commands)`; `run(args)` dispatches.
Keys are printed once, on create and rotate; `keys list` shows ids, scopes and state only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from robotrace_assets.api import admin
from robotrace_assets.api.config import ApiConfig
from robotrace_assets.api.db.session import make_engine, make_sessionmaker, migrate
from robotrace_assets.ingest import keys

COMMANDS = ("api", "tenants", "keys", "episodes")


def register(commands: argparse._SubParsersAction) -> None:
    api = commands.add_parser("api", help="the ingest service (RoboTrace ingest API)")
    api_actions = api.add_subparsers(dest="action", required=True)
    serve = api_actions.add_parser("serve", help="serve it with uvicorn")
    serve.add_argument("--host", help="default ROBOTRACE_API_HOST or 127.0.0.1")
    serve.add_argument("--port", type=int, help="default ROBOTRACE_API_PORT or 8780")
    serve.add_argument("--workers", type=int, default=1)
    api_actions.add_parser("migrate", help="upgrade the database to the latest revision")

    tenants = commands.add_parser("tenants", help="tenants (RoboTrace clients)")
    t_actions = tenants.add_subparsers(dest="action", required=True)
    create = t_actions.add_parser("create", help="create a tenant with provenance defaults")
    create.add_argument("name")
    create.add_argument("--operator-id")
    create.add_argument("--task-brief-id")
    create.add_argument("--device-model", default="robotrace-client")
    create.add_argument("--safety-rules-version", default=admin.DEFAULT_SAFETY_RULES)
    create.add_argument("--consent-receipt-id", help="default consent for its episodes")
    create.add_argument("--license-scope-id", help="default license for its episodes")
    create.add_argument("--allowed-use", action="append", default=[])
    t_actions.add_parser("list")

    key_cmd = commands.add_parser("keys", help="API keys rt_<id>_<secret>")
    k_actions = key_cmd.add_subparsers(dest="action", required=True)
    k_create = k_actions.add_parser("create", help="mint a key (printed once)")
    k_create.add_argument("tenant_id")
    k_create.add_argument("--scope", action="append", choices=keys.ALL_SCOPES)
    k_create.add_argument("--label")
    k_list = k_actions.add_parser("list")
    k_list.add_argument("--tenant-id")
    for name in ("revoke", "rotate"):
        k_actions.add_parser(name).add_argument("key_id", help="the id (or the whole key)")

    ep = commands.add_parser("episodes", help="archive or restore episodes")
    e_actions = ep.add_subparsers(dest="action", required=True)
    for name in ("archive", "restore"):
        e_actions.add_parser(name).add_argument("episode_id")


@contextmanager
def session(config: ApiConfig) -> Iterator[Session]:
    migrate(config.database_url)
    engine = make_engine(config.database_url)
    try:
        with make_sessionmaker(engine)() as db, db.begin():
            yield db
    finally:
        engine.dispose()


def serve(args: argparse.Namespace, config: ApiConfig) -> int:
    import uvicorn

    if config.auto_migrate:
        migrate(config.database_url)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        # At DEBUG these libraries log request signatures and presigned URLs.
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uvicorn.run(
        "robotrace_assets.api.app:create_app",
        factory=True,
        host=args.host or config.host,
        port=args.port or config.port,
        workers=args.workers,
        access_log=False,  # our own access line has no query string and no headers
        proxy_headers=False,
        server_header=False,
    )
    return 0


def _tenants(args: argparse.Namespace, db: Session) -> int:
    if args.action == "list":
        from sqlalchemy import select

        from robotrace_assets.api.db.models import Tenant

        for tenant in db.scalars(select(Tenant).order_by(Tenant.created_at)):
            print(f"{tenant.id}  {tenant.name}")
        return 0
    terms = admin.TenantTerms(
        operator_id=args.operator_id,
        task_brief_id=args.task_brief_id,
        device_model=args.device_model,
        safety_rules_version=args.safety_rules_version,
        consent_receipt_id=args.consent_receipt_id,
        license_scope_id=args.license_scope_id,
        allowed_use=tuple(args.allowed_use),
    )
    print(admin.create_tenant(db, args.name, terms).id)
    return 0


def _keys(args: argparse.Namespace, db: Session) -> int:
    if args.action == "create":
        row, token = admin.create_key(
            db, args.tenant_id, tuple(args.scope or keys.DEFAULT_SCOPES), args.label
        )
        print(f"key {row.id} for {row.tenant_id}, scopes {' '.join(row.scopes)}")
        print(f"{token}\n(shown once: store it now; only its hash is kept)")
    elif args.action == "list":
        for row in admin.list_keys(db, args.tenant_id):
            state = "revoked" if row.revoked_at else "active"
            print(
                f"{row.id}  {row.tenant_id}  {state:7}  {' '.join(row.scopes)}  {row.label or ''}"
            )
    elif args.action == "revoke":
        print(f"revoked {admin.revoke_key(db, args.key_id).id}")
    else:
        row, token = admin.rotate_key(db, args.key_id)
        print(f"key {row.id} replaces {args.key_id} (now revoked)\n{token}\n(shown once)")
    return 0


def _episodes(args: argparse.Namespace, db: Session) -> int:
    change = admin.archive_episode if args.action == "archive" else admin.restore_episode
    episode = change(db, args.episode_id)
    print(f"{episode.id}  {episode.status}")
    return 0


def run(args: argparse.Namespace) -> int:
    config = ApiConfig.from_env()
    if args.command == "api" and args.action == "serve":
        return serve(args, config)
    handlers: dict[str, Callable[[argparse.Namespace, Session], int]] = {
        "tenants": _tenants,
        "keys": _keys,
        "episodes": _episodes,
    }
    if args.command == "api":  # migrate
        migrate(config.database_url)
        print("database at the latest revision")
        return 0
    try:
        with session(config) as db:
            return handlers[args.command](args, db)
    except admin.AdminError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2


def simulate_via_api(args: argparse.Namespace) -> int:
    """`robotrace simulate --via-api URL`: the simulator's media through the large-media API."""
    import os

    from robotrace_assets.capture.via_api import ApiCaptureSimulator, ApiClient
    from robotrace_assets.cli import simulation_config

    key = args.api_key or os.environ.get("ROBOTRACE_API_KEY")
    if not key:
        print("refused: pass --api-key or set ROBOTRACE_API_KEY", file=sys.stderr)
        return 2
    api = ApiClient(args.via_api, key)
    try:
        for done in ApiCaptureSimulator(api, simulation_config(args)).upload_all():
            print(f"{done.media_session_id}  {done.segment_id}  {done.size_bytes:>10} B  via API")
    finally:
        api.close()
    return 0


def start_demo_service(data_dir: Path, port: int = 8780) -> tuple[str, str]:
    """Start the service on loopback beside Dagster (a child process: Ctrl+C stops it too),
    create a demo tenant with consent and license defaults and a key; (url, key)."""
    import os
    import subprocess
    import time
    from datetime import UTC, datetime
    from random import SystemRandom

    import httpx

    from robotrace_assets import ids

    config = ApiConfig.from_env()
    rng, at = SystemRandom(), datetime.now(UTC)
    terms = admin.TenantTerms(
        consent_receipt_id=ids.new_id("consent", at, rng),
        license_scope_id=ids.new_id("lic", at, rng),
        allowed_use=("robotics_training", "internal_eval"),
    )
    with session(config) as db:
        tenant = admin.create_tenant(db, "demo", terms)
        _row, token = admin.create_key(db, tenant.id, keys.ALL_SCOPES, "demo")
    log_path = data_dir / "ingest-api.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "robotrace_assets.cli", "api", "serve", "--port", str(port)]
    with open(log_path, "ab") as log_file:
        subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return url, token
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the ingest service did not start; see {log_path}")


def demo_service(args: argparse.Namespace, data_dir: Path) -> None:
    """The demo's ingest part: service up, key and curl printed, a batch simulated through it."""
    from dataclasses import replace

    from robotrace_assets.capture.via_api import ApiCaptureSimulator, ApiClient
    from robotrace_assets.cli import simulation_config

    url, token = start_demo_service(data_dir, ApiConfig.from_env().port)
    print(f"ingest API on {url} (OpenAPI: {url}/api/docs); demo API key (shown once):\n  {token}")
    print(
        f"  curl -s -X POST {url}/api/ingest/episode -H 'Authorization: Bearer {token}' "
        '-H \'Content-Type: application/json\' -d \'{"name": "curl demo", "request_uploads": []}\''
    )
    print(f"  or: ROBOTRACE_BASE_URL={url} ROBOTRACE_API_KEY=<key> python your_sdk_script.py")
    if args.skip_upload:
        return
    config = replace(
        simulation_config(args), sessions=1, segments=2, seed=args.seed + 1, defects=()
    )
    api = ApiClient(url, token)
    try:
        for done in ApiCaptureSimulator(api, config).upload_all():
            print(f"{done.media_session_id}  {done.segment_id}  {done.size_bytes:>10} B  via API")
    finally:
        api.close()
