"""The `robotrace` command: the local object store, the capture simulator and the demo.

robotrace store start|stop|status
robotrace simulate --sessions 2 --segments 3 --defect corrupt_after_upload@0.1
robotrace demo       # store + synthetic batch + Dagster UI and daemon on 127.0.0.1:3000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from robotrace_assets.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from robotrace_assets.capture.simulator import SimulationConfig


def _parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def add_simulation_args(parser: argparse.ArgumentParser) -> None:
    from robotrace_assets.capture.simulator import DEFECT_KINDS

    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--segments", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=4.0, help="segment duration")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--codec", choices=["hevc", "h264"], default="hevc")
    parser.add_argument("--video-bitrate-kbps", type=int, default=None)
    parser.add_argument("--sensor-hz", type=float, default=100.0)
    parser.add_argument(
        "--no-audio",
        action="store_true",
        help="silent captures: no spoken task narration (which needs espeak-ng)",
    )
    parser.add_argument(
        "--no-depth",
        action="store_true",
        help="no LiDAR depth stream, even for sessions whose device has LiDAR",
    )
    parser.add_argument(
        "--part-size", type=_parse_size, default="5MiB", help="multipart part size (>= 5MiB)"
    )
    parser.add_argument(
        "--captured-at",
        type=datetime.fromisoformat,
        default=None,
        metavar="ISO_TIME",
        help="when the captures were made (default: now); ids carry it, so it decides their "
        "capture day (review-set partition, delivery window) and their age (archival)",
    )
    parser.add_argument(
        "--defect",
        action="append",
        default=[],
        metavar="KIND[@S.G]",
        help=f"inject a defect into session S, segment G (0-based): {', '.join(DEFECT_KINDS)}",
    )


def narrated(args: argparse.Namespace) -> bool:
    """Narration unless --no-audio; a machine without espeak-ng (a Debian package, not a pip
    one) still runs the demo, with silent captures and a note saying how to get narration."""
    if args.no_audio:
        return False
    if shutil.which("espeak-ng") is None:
        print(
            "note: espeak-ng is not installed, so captures are silent "
            "(apt-get install espeak-ng for narrated ones; --no-audio hides this note)",
            file=sys.stderr,
        )
        return False
    return True


def simulation_config(args: argparse.Namespace) -> SimulationConfig:
    from robotrace_assets.capture.simulator import Defect, SimulationConfig

    return SimulationConfig(
        sessions=args.sessions,
        segments=args.segments,
        seed=args.seed,
        seconds=args.seconds,
        fps=args.fps,
        width=args.width,
        height=args.height,
        codec=args.codec,
        video_bitrate_kbps=args.video_bitrate_kbps,
        sensor_hz=args.sensor_hz,
        narration=narrated(args),
        depth=not args.no_depth,
        part_size=args.part_size,
        defects=tuple(Defect.parse(d) for d in args.defect),
        base_time=(args.captured_at or datetime.now(UTC)).astimezone(UTC),
    )


def simulate(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "via_api", None):  # through the ingest service, with an API key
        from robotrace_assets.api.cli import simulate_via_api

        return simulate_via_api(args)
    from robotrace_assets.capture.simulator import CaptureSimulator
    from robotrace_assets.objectstore.client import ensure_bucket, make_client

    client = make_client(settings)
    ensure_bucket(client, settings.bucket)
    sessions = CaptureSimulator(client, settings.bucket, simulation_config(args)).run(progress=True)
    for session in sessions:
        print(f"{session.media_session_id}  tenant {session.tenant_id}")
        for seg in session.segments:
            defects = f"  defects: {', '.join(sorted(seg.defects))}" if seg.defects else ""
            print(f"  {seg.segment_id}  {seg.digest.size:>10} B  {seg.raw_key}{defects}")
    return 0


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from robotrace_assets.objectstore.local import LocalObjectStore

    store = LocalObjectStore.from_settings(settings)
    status = store.start()
    print(f"object store ready at {status['endpoint_url']} (bucket {status['bucket']})")
    if not args.skip_upload:
        simulate(args, settings)
    from robotrace_assets.api.cli import demo_service

    demo_service(args, settings.data_dir)  # the ingest service beside Dagster, on loopback
    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or "dagster"
    command = [
        dagster,
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(args.port),
    ]
    print(f"Dagster UI on http://127.0.0.1:{args.port} (sensors tick every 30 s); Ctrl+C stops.")
    os.chdir(PROJECT_ROOT)
    os.execvpe(command[0], command, env)  # replaces this process: Ctrl+C reaches dagster dev


def review(args: argparse.Namespace, settings: Settings) -> int:
    from robotrace_assets.objectstore.client import make_client
    from robotrace_assets.review.decisions import DecisionError
    from robotrace_assets.review.filing import submit

    action = {"approve": "approve", "reject": "reject", "override": "override_score"}[args.action]
    try:
        decision, key = submit(
            make_client(settings),
            settings.bucket,
            clip_id=args.clip_id,
            reviewer_id=args.reviewer,
            action=action,
            rationale=args.rationale or "",
            score=getattr(args, "score", None),
            value=getattr(args, "value", None),
        )
    except DecisionError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    print(f"recorded {decision.decision_id} ({decision.action} {decision.clip_id}) at {key}")
    return 0


def deliver(args: argparse.Namespace, settings: Settings) -> int:
    """Register the delivery partition and run buyer_delivery_job for it in this process,
    recorded in the Dagster instance at DAGSTER_HOME (so it shows in the UI like any run)."""
    from dagster import DagsterInstance

    from robotrace_assets.definitions import defs
    from robotrace_assets.delivery.buyers import BuyerConfigError, delivery_partition, load_buyers
    from robotrace_assets.delivery.jobs import BUYER_DELIVERY_JOB
    from robotrace_assets.resources import resources_from_env

    delivery_id = args.delivery_id or datetime.now(UTC).strftime("d%Y%m%dt%H%M%S")
    window = {"from_day": args.from_day, "to_day": args.to_day}  # None: the 7 days to today
    try:
        if args.buyer not in load_buyers():
            print(f"unknown buyer {args.buyer}", file=sys.stderr)
            return 2
        partition = delivery_partition(args.buyer, delivery_id)
    except BuyerConfigError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("DAGSTER_HOME", str(settings.data_dir / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("delivery", [partition])
        result = defs.resolve_job_def(BUYER_DELIVERY_JOB).execute_in_process(
            partition_key=partition,
            instance=instance,
            resources=resources_from_env(),
            raise_on_error=False,
            # The capture-day window, stored with the delivery on its first run.
            run_config={"ops": {"delivery__buyer_delivery": {"config": window}}},
        )
    if not result.success:
        print(
            f"delivery {partition} failed; see the run {result.run_id} in the UI", file=sys.stderr
        )
        return 1
    print(
        f"delivered {partition}: s3://{settings.bucket}/robotics/deliveries/{args.buyer}/"
        f"{delivery_id}/manifest.json"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="robotrace", description=(__doc__ or "").split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    store = commands.add_parser("store", help="run the embedded SeaweedFS object store")
    store.add_argument("action", choices=["start", "stop", "status"])
    sim = commands.add_parser("simulate", help="upload synthetic captures like a capture client")
    add_simulation_args(sim)
    sim.add_argument("--via-api", metavar="URL", help="upload through the ingest service")
    sim.add_argument("--api-key", help="its API key (default: $ROBOTRACE_API_KEY)")
    run_demo = commands.add_parser("demo", help="store + synthetic captures + Dagster UI/daemon")
    add_simulation_args(run_demo)
    run_demo.add_argument("--port", type=int, default=3000)
    run_demo.add_argument("--skip-upload", action="store_true")
    run_demo.set_defaults(defect=None)
    decide = commands.add_parser("review", help="record a reviewer decision on a clip")
    actions = decide.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("approve", "approve a clip"),
        ("reject", "reject a clip (it goes to the regression bank)"),
        ("override", "override one machine score; the machine score is kept beside it"),
    ):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("clip_id")
        sub.add_argument("--reviewer", required=True)
        sub.add_argument("--rationale", required=True, help="why (required, kept with it)")
        if name == "override":
            sub.add_argument("--score", required=True, choices=["safety", "smoothness", "quality"])
            sub.add_argument("--value", required=True, type=float, help="0..1")
    ship = commands.add_parser("deliver", help="materialize a buyer delivery now")
    ship.add_argument("buyer")
    ship.add_argument("--delivery-id", help="default: d<UTC timestamp>")
    ship.add_argument("--from", dest="from_day", metavar="DAY", help="first capture day")
    ship.add_argument("--to", dest="to_day", metavar="DAY", help="last capture day (default today)")
    from robotrace_assets.api import cli as api_cli
    from robotrace_assets.clips import cli as clips_cli
    from robotrace_assets.delivery import cli as delivery_cli
    from robotrace_assets.lifecycle import cli as lifecycle_cli
    from robotrace_assets.payouts import cli as payouts_cli

    api_cli.register(commands)
    clips_cli.register(commands)
    delivery_cli.register(commands)
    lifecycle_cli.register(commands)
    payouts_cli.register(commands)
    from robotrace_assets.robotlogs import cli as robotlogs_cli
    from robotrace_assets.telemetry import cli as telemetry_cli
    from robotrace_assets.topology import cli as topology_cli

    telemetry_cli.register(commands)
    robotlogs_cli.register(commands)
    topology_cli.register(commands)
    args = parser.parse_args(argv)
    if args.command in topology_cli.COMMANDS:
        return topology_cli.run(args)
    if args.command in api_cli.COMMANDS:
        return api_cli.run(args)
    if args.command in clips_cli.COMMANDS:
        return clips_cli.run(args)
    if args.command in delivery_cli.COMMANDS:
        return delivery_cli.run(args)
    if args.command in lifecycle_cli.COMMANDS:
        return lifecycle_cli.run(args)
    if args.command in payouts_cli.COMMANDS:
        return payouts_cli.run(args)
    if args.command in telemetry_cli.COMMANDS:
        return telemetry_cli.run(args)
    if args.command in robotlogs_cli.COMMANDS:
        return robotlogs_cli.run(args)
    settings = Settings.from_env()
    if args.command == "deliver":
        return deliver(args, settings)
    if args.command == "review":
        return review(args, settings)
    if args.command == "store":
        from robotrace_assets.objectstore.local import main as store_main

        return store_main([args.action])
    if args.command == "simulate":
        return simulate(args, settings)
    if args.defect is None:  # the demo shows one blocked segment unless told otherwise
        args.defect = ["corrupt_after_upload@0.1"]
    return demo(args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
