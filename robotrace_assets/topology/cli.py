"""`robotrace deploy local`: the production topology as separate local processes.

Registered from robotrace_assets/cli.py with `register(commands)`; `run(args)` dispatches.
Ctrl+C (or SIGTERM) stops every process, daemon first; a process that crashes is reported and
started again, as docker-compose's `restart: unless-stopped` would (--no-restart: only reported).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

COMMANDS = ("deploy",)


def register(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser("deploy", help="run the production topology")
    targets = deploy.add_subparsers(dest="target", required=True)
    local = targets.add_parser(
        "local",
        help="PgBouncer, object store, ingest service, gRPC code server, webserver and daemon as "
        "separate processes on PostgreSQL (DAGSTER_PG_*), from deploy/dagster.yaml",
    )
    local.add_argument("--root", type=Path, help="default $ROBOTRACE_DATA_DIR/topology")
    local.add_argument("--webserver-port", type=int, default=3000)
    local.add_argument("--code-port", type=int, help="default $ROBOTRACE_CODE_SERVER_PORT or 4000")
    local.add_argument("--api-port", type=int, help="default $ROBOTRACE_API_PORT or 8780")
    local.add_argument("--store-port", type=int, help="default $ROBOTRACE_LOCAL_S3_PORT or 8333")
    local.add_argument(
        "--pooler-port", type=int, help="PgBouncer's port; default $PGBOUNCER_PORT or 6432"
    )
    local.add_argument(
        "--no-pooler",
        action="store_true",
        help="Dagster's processes connect to PostgreSQL directly (no PgBouncer)",
    )
    local.add_argument(
        "--no-restart", action="store_true", help="report a crashed process, do not restart it"
    )


def run(args: argparse.Namespace) -> int:
    from robotrace_assets.topology.config import TopologyConfig
    from robotrace_assets.topology.process import TopologyError
    from robotrace_assets.topology.topology import Topology, interrupt_on_sigterm

    ports = {
        "webserver_port": args.webserver_port,
        "code_port": args.code_port,
        "api_port": args.api_port,
        "store_port": args.store_port,
        "pooler_port": args.pooler_port,
    }
    config = TopologyConfig.from_env(args.root, **{k: v for k, v in ports.items() if v})
    if args.no_pooler:
        config = replace(config, pooler_port=None)
    try:
        topology = Topology(config)
    except TopologyError as error:  # PgBouncer missing
        print(f"failed: {error}; or run with --no-pooler", file=sys.stderr)
        return 1
    interrupt_on_sigterm()
    pg = config.postgres
    pooled = "" if config.pooler_port is None else f" through PgBouncer :{config.pooler_port}"
    print(
        f"PostgreSQL {pg.host}:{pg.port}{pooled} database {pg.db}; logs in {config.logs}",
        flush=True,
    )
    try:
        topology.prepare()
        for name in topology.order:
            took = topology.start_component(name)
            print(f"  {name:<12} healthy in {took:5.1f} s (pid {topology.components[name].pid})")
        print(
            f"Dagster UI {config.webserver_url}; ingest API {config.api_url}; object store "
            f"{config.store_url} (bucket {config.bucket}); code server 127.0.0.1:"
            f"{config.code_port}. Ctrl+C stops everything.",
            flush=True,
        )
        for crashed in topology.supervise():
            for name in crashed:
                _report_and_restart(topology, name, restart=not args.no_restart)
    except KeyboardInterrupt:
        print("stopping: " + ", ".join(reversed(topology.order)), flush=True)
    except TopologyError as error:
        print(f"failed: {error}", file=sys.stderr)
        topology.stop()
        return 1
    topology.stop()
    return 0


def _report_and_restart(topology: object, name: str, restart: bool) -> None:
    from robotrace_assets.topology.process import TopologyError
    from robotrace_assets.topology.topology import Topology

    assert isinstance(topology, Topology)
    component = topology.components[name]
    print(
        f"CRASHED: {name} (pid {component.pid}) exited with {component.exit_code()}; "
        f"log {component.log}:\n{component.log_tail(10)}",
        file=sys.stderr,
        flush=True,
    )
    if not restart:
        return
    try:
        took = topology.start_component(name)
        print(f"  {name} started again, healthy in {took:.1f} s", file=sys.stderr, flush=True)
    except TopologyError as error:
        print(f"  {name} did not come back: {error}", file=sys.stderr, flush=True)
