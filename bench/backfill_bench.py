"""Benchmark: a backfill of 200 segments, runs of 25 partitions against one run per partition.

Setup (not timed): a private SeaweedFS, a temporary DAGSTER_HOME with SQLite storage, 200 small
segments (2 s, 160x120 H.264) uploaded by the capture simulator, their partitions registered and
every one proven in process (segment, segment_parts, provider_proof and the proof checks).

Timed, each run in a fresh Python subprocess (bench/backfill_child.py), as Dagster's run launcher
starts every launched run in a new process that imports the code location, loads the
definitions and opens the instance before the first segment:
  (a) the backfill shape: the segments split into runs of SEGMENTS_PER_BACKFILL_RUN consecutive
      partitions, each run one `review_derivatives_job` over a partition range;
  (b) one run per partition, for an evenly spread sample of the partitions (extrapolated
      linearly to all of them, and labelled so);
  plus start-up-only children (load everything, run nothing) as the floor of any run.
Children run one at a time and interleaved (a range run, then a few single runs, ...) so that
a noisy neighbour slows both shapes alike; one untimed start-up child warms the page cache first.
The children run a copy of the package taken when the benchmark starts, so that concurrent edits
of the working tree can neither break nor change the code being timed halfway through.
There is no pass/fail target: the report gives the per-segment times and their ratio.

    python -m bench.backfill_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize

import robotrace_assets
from bench.common import Spread, Target, log, md_table, private_store, store_env
from robotrace_assets.capture.simulator import CaptureSimulator, SimulationConfig
from robotrace_assets.derivatives.assets import PROXY, SEGMENTS_PER_BACKFILL_RUN
from robotrace_assets.derivatives.profiles import CURRENT_PROFILE
from robotrace_assets.partitions import segment_partitions
from robotrace_assets.proof.assets import provider_proof
from robotrace_assets.proof.checks import provider_proof_checks
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.segments.assets import segment, segment_parts

CLIP_SECONDS = 2.0
CLIP_FPS = 30
CLIP_WIDTH = 160
CLIP_HEIGHT = 120
CLIP_CODEC = "h264"
# Setup runs in this process: keep Dagster's DEBUG event lines off the progress log.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Others edit the package while benchmarks run: a snapshot that does not load is retaken later.
LOAD_ATTEMPTS = 20
LOAD_RETRY_S = 30.0
# Run-start latency of the daemon and run queue: Dagster users report 3-20 s from request to
# start in Dagster's GitHub issues.
DAEMON_LATENCY_S = (3.0, 20.0)


class BackfillBenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Plan:
    sessions: int
    segments_per_session: int
    run_size: int  # partitions per backfill run, as BackfillPolicy.multi_run packs them
    sample: int  # partitions run one per run
    startup_runs: int

    @property
    def segments(self) -> int:
        return self.sessions * self.segments_per_session


FULL_PLAN = Plan(
    sessions=10,
    segments_per_session=20,
    run_size=SEGMENTS_PER_BACKFILL_RUN,
    sample=20,
    startup_runs=3,
)
QUICK_PLAN = Plan(sessions=2, segments_per_session=10, run_size=10, sample=5, startup_runs=2)


@dataclass(frozen=True)
class ChildRun:
    """One subprocess: what the parent saw (wall) and the phases the child reported."""

    kind: str  # "range" (a), "single" (b), "startup" or "startup_frozen"
    partitions: int
    wall_s: float  # launch to exit, seen from the parent
    interpreter_s: float  # launch to the child's first line (interpreter start-up)
    imports_s: float
    definitions_s: float
    instance_s: float
    execute_s: float
    close_s: float
    segment_s: tuple[float, ...]  # derive_segment per segment
    guard_s: tuple[float, ...]
    ffmpeg_s: tuple[float, ...]
    publish_s: tuple[float, ...]
    proof_record_s: tuple[float, ...]  # the guard's catalog read (includes the client creation)
    s3_client_s: tuple[float, ...]  # boto3 client creation (once per run, in the first guard)
    pandas_imported: bool  # the run imported pandas (pyarrow does on its first Parquet use)
    assets: int  # asset keys in the code location the child loaded

    @property
    def work_s(self) -> float:
        """Per-segment work: the guard, the ffmpeg pass, the uploads and the catalog records."""
        return sum(self.segment_s)

    @property
    def overhead_s(self) -> float:
        """Everything in the run that is not a segment's own work."""
        return self.wall_s - self.work_s

    @property
    def dagster_s(self) -> float:
        """execute_in_process minus the segments: run and step bookkeeping, event log writes."""
        return self.execute_s - self.work_s

    @property
    def exit_s(self) -> float:
        """What the child's own phases do not cover: interpreter exit and the pipe."""
        covered = (
            self.interpreter_s
            + self.imports_s
            + self.definitions_s
            + self.instance_s
            + self.execute_s
            + self.close_s
        )
        return self.wall_s - covered


@dataclass
class BackfillBench:
    quick: bool
    plan: Plan
    clip_bytes: list[int] = field(default_factory=list)
    simulate_s: float = 0.0
    prove_s: float = 0.0
    runs: list[ChildRun] = field(default_factory=list)
    materialized: int = 0  # partitions with a proxy at the end, out of plan.segments
    assets: int = 0  # asset keys in the code location the runs loaded

    def of(self, kind: str) -> list[ChildRun]:
        return [run for run in self.runs if run.kind == kind]

    def per_segment_range_s(self) -> float:
        """(a): all backfill runs' wall time over all segments (every segment measured)."""
        ranges = self.of("range")
        return sum(run.wall_s for run in ranges) / sum(run.partitions for run in ranges)

    def per_segment_single_s(self) -> float:
        """(b): mean wall time of a one-partition run over the sample."""
        return statistics.fmean(run.wall_s for run in self.of("single"))

    def ratio(self) -> float:
        return self.per_segment_single_s() / self.per_segment_range_s()

    def fit(self) -> tuple[float, float]:
        """Least squares of run wall time on partitions per run: (fixed s per run, s per
        segment), over the (a) and (b) runs."""
        runs = self.of("range") + self.of("single")
        xs = [float(run.partitions) for run in runs]
        ys = [run.wall_s for run in runs]
        slope, intercept = statistics.linear_regression(xs, ys)
        return intercept, slope

    def markdown(self) -> str:
        return _markdown(self)

    def targets(self) -> list[Target]:
        return []  # no pass/fail target here; the ratio is reported in the section


# -- setup (not timed) --------------------------------------------------------------------------


@contextmanager
def _robotrace_environ(env: Mapping[str, str]) -> Iterator[None]:
    """Point Settings.from_env() in this process at the private store, then restore."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("ROBOTRACE_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({key: value for key, value in env.items() if key.startswith("ROBOTRACE_")})
    try:
        yield
    finally:
        for key in [key for key in os.environ if key.startswith("ROBOTRACE_")]:
            del os.environ[key]
        os.environ.update(saved)


def _prove(instance: DagsterInstance, bucket: str, partition: str) -> None:
    """segment, segment_parts and provider_proof with its blocking checks, as the sensor's run."""
    assets = [segment, segment_parts, provider_proof]
    selection: list[AssetKey] = [key for definition in assets for key in definition.keys]
    result = materialize(
        [*assets, provider_proof_checks],
        partition_key=partition,
        run_config=QUIET,
        instance=instance,
        resources={"object_store": ObjectStoreResource(bucket=bucket)},
        raise_on_error=False,
        selection=selection,
    )
    failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
    if not result.success or failed:
        raise BackfillBenchError(f"could not prove {partition}: failed checks {failed}")


def _has_proxy(instance: DagsterInstance, partitions: Sequence[str]) -> int:
    count = 0
    for partition in partitions:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=PROXY, asset_partitions=[partition]), limit=1
        ).records
        count += bool(records)
    return count


# -- timed runs ---------------------------------------------------------------------------------


def _snapshot_code(code: Path) -> Path:
    """Copy the package and the child script once: others edit the working tree while the
    benchmark runs, and every child must import the same, complete code. The child's own
    directory comes first on its sys.path, ahead of the editable install's finder."""
    package = Path(robotrace_assets.__file__).resolve().parent
    shutil.copytree(
        package, code / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    shutil.copy2(Path(__file__).with_name("backfill_child.py"), code / "backfill_child.py")
    return code


def _child(
    code: Path, kind: str, request: dict[str, Any], partitions: int, env: Mapping[str, str]
) -> ChildRun:
    launched = time.time()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(code / "backfill_child.py"), json.dumps(request)],
        cwd=code,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise BackfillBenchError(
            f"{kind} child failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    report = json.loads(lines[-1])
    if Path(report["package"]).parent != code:
        raise BackfillBenchError(f"child imported the package from {report['package']}")
    if not report["success"]:
        raise BackfillBenchError(f"{kind} run {request} failed:\n{done.stderr[-3000:]}")
    phases = report["phases"]
    if partitions and len(phases["segment"]) != partitions:
        raise BackfillBenchError(
            f"{kind} run {request} derived {len(phases['segment'])} of {partitions} segments"
        )
    return ChildRun(
        kind=kind,
        partitions=partitions,
        wall_s=wall,
        interpreter_s=max(0.0, report["launched_at"] - launched),
        imports_s=report["imports_s"],
        definitions_s=report["definitions_s"],
        instance_s=report["instance_s"],
        execute_s=report["execute_s"],
        close_s=report["close_s"],
        segment_s=tuple(phases["segment"]),
        guard_s=tuple(phases["guard"]),
        ffmpeg_s=tuple(phases["ffmpeg"]),
        publish_s=tuple(phases["publish"]),
        proof_record_s=tuple(phases["proof_record"]),
        s3_client_s=tuple(phases["s3_client"]),
        pandas_imported=bool(report["pandas_imported_by_run"]),
        assets=int(report["assets"]),
    )


def _loadable_snapshot(base: Path, env: Mapping[str, str]) -> tuple[Path, ChildRun]:
    """A snapshot of the package that a start-up child can load, retaken while the working
    tree is half-edited (an import fails); fails fast, before the slow setup, otherwise."""
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        code = _snapshot_code(base / f"code-{attempt}")
        try:
            return code, _child(code, "startup", {"startup_only": True}, 0, env)
        except BackfillBenchError as error:
            if attempt == LOAD_ATTEMPTS:
                raise
            reason = str(error).strip().splitlines()[-1]
            log(
                f"backfill: snapshot {attempt} does not load ({reason}); "
                f"another in {LOAD_RETRY_S:.0f}s"
            )
            shutil.rmtree(code, ignore_errors=True)
            time.sleep(LOAD_RETRY_S)
    raise AssertionError("unreachable")


def _schedule(plan: Plan, ids: Sequence[str]) -> list[tuple[str, dict[str, Any], int]]:
    """Interleaved order: each backfill run followed by its share of single and start-up runs."""
    chunks = [ids[i : i + plan.run_size] for i in range(0, len(ids), plan.run_size)]
    # Evenly spread sample: the middle partition of each of `sample` equal stretches.
    sample = [ids[(2 * j + 1) * len(ids) // (2 * plan.sample)] for j in range(plan.sample)]
    order: list[tuple[str, dict[str, Any], int]] = []
    for c, chunk in enumerate(chunks):
        order.append(("range", {"start": chunk[0], "end": chunk[-1]}, len(chunk)))
        share = sample[c * plan.sample // len(chunks) : (c + 1) * plan.sample // len(chunks)]
        order += [("single", {"partition": key}, 1) for key in share]
        startups = (c + 1) * plan.startup_runs // len(chunks) - c * plan.startup_runs // len(chunks)
        order += [("startup", {"startup_only": True}, 0)] * startups
        frozen = {"startup_only": True, "freeze_before_exit": True}
        order += [("startup_frozen", frozen, 0)] * startups
    return order


def run(quick: bool = False) -> BackfillBench:
    plan = QUICK_PLAN if quick else FULL_PLAN
    bench = BackfillBench(quick=quick, plan=plan)
    with private_store("backfill") as store:
        base = store.root.parent
        home = base / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**store_env(store), "DAGSTER_HOME": str(home)}
        # The instance (SQLite schema included) exists before any child process opens it.
        with DagsterInstance.from_config(str(home)) as instance, _robotrace_environ(env):
            code, check = _loadable_snapshot(base, env)
            bench.assets = check.assets
            log(f"backfill: code snapshot in {code} loads ({check.assets} assets)")
            started = time.perf_counter()
            config = SimulationConfig(
                sessions=plan.sessions,
                segments=plan.segments_per_session,
                seed=5,
                seconds=CLIP_SECONDS,
                fps=CLIP_FPS,
                width=CLIP_WIDTH,
                height=CLIP_HEIGHT,
                codec=CLIP_CODEC,
            )
            sessions = CaptureSimulator(store.client(), store.bucket, config, workdir=base).run()
            segments = [s for session in sessions for s in session.segments]
            ids = [s.segment_id for s in segments]
            bench.clip_bytes = [s.digest.size for s in segments]
            bench.simulate_s = time.perf_counter() - started
            log(f"backfill: {len(ids)} segments simulated in {bench.simulate_s:.0f}s")
            # Dynamic partitions keep insertion order: a partition range spans consecutive ids.
            instance.add_dynamic_partitions(segment_partitions.name, ids)
            started = time.perf_counter()
            for index, partition in enumerate(ids, start=1):
                _prove(instance, store.bucket, partition)
                if index % 25 == 0 or index == len(ids):
                    log(f"backfill: {index}/{len(ids)} segments proven")
            bench.prove_s = time.perf_counter() - started

        _child(code, "startup", {"startup_only": True}, 0, env)  # warm-up, not recorded
        order = _schedule(plan, ids)
        for number, (kind, request, partitions) in enumerate(order, start=1):
            child = _child(code, kind, request, partitions, env)
            bench.runs.append(child)
            log(
                f"backfill: child {number}/{len(order)} {kind} x{partitions}: "
                f"{child.wall_s:.2f}s wall, {child.work_s:.2f}s segment work"
            )
        with DagsterInstance.from_config(str(home)) as instance:
            bench.materialized = _has_proxy(instance, ids)
    return bench


# -- report -------------------------------------------------------------------------------------


def _spread(values: Sequence[float], digits: int = 2) -> str:
    return Spread.of(values).fmt(digits) if values else "-"


def _median(values: Sequence[float]) -> float:
    return Spread.of(values).median if values else float("nan")


def _phase_table(bench: BackfillBench) -> str:
    columns = [
        bench.of("range"),
        bench.of("single"),
        bench.of("startup"),
        bench.of("startup_frozen"),
    ]
    rows = []
    for label, attribute, in_runs_only in (
        ("interpreter start", "interpreter_s", False),
        ("imports (dagster, robotrace_assets)", "imports_s", False),
        ("definitions: resolve review_derivatives_job", "definitions_s", False),
        ("instance open (SQLite)", "instance_s", False),
        ("execute_in_process", "execute_s", False),
        ("- of which segment work (derive_segment, summed)", "work_s", True),
        ("- of which Dagster run bookkeeping (the rest)", "dagster_s", True),
        ("instance close", "close_s", False),
        ("interpreter exit", "exit_s", False),
        ("**wall, launch to exit**", "wall_s", False),
        ("**overhead = wall - segment work**", "overhead_s", False),
    ):
        cells = [
            "-"
            if in_runs_only and runs and not runs[0].partitions
            else _spread([getattr(run, attribute) for run in runs])
            for runs in columns
        ]
        rows.append((label, *cells))
    return md_table(
        [
            "phase (s per run)",
            f"(a) run of {bench.plan.run_size}",
            "(b) run of 1",
            "start-up only",
            "start-up only, gc.freeze() before exit",
        ],
        rows,
    )


def _segment_table(bench: BackfillBench) -> str:
    ranges, singles = bench.of("range"), bench.of("single")

    def first(runs: Sequence[ChildRun], phase: str) -> str:
        return _spread([getattr(run, phase)[0] for run in runs if getattr(run, phase)], 3)

    def later(runs: Sequence[ChildRun], phase: str) -> str:
        return _spread([value for run in runs for value in getattr(run, phase)[1:]], 3)

    rows = []
    for label, phase in (
        ("derive_segment (all of a segment's work)", "segment_s"),
        ("- proof guard (require_proven)", "guard_s"),
        ("-- of which the proof record read (S3 GET + Parquet)", "proof_record_s"),
        ("--- of which the run's S3 client creation", "s3_client_s"),
        ("- one ffmpeg pass (make_derivatives)", "ffmpeg_s"),
        ("- uploads + read-back verify (publish)", "publish_s"),
    ):
        rows.append((label, first(ranges, phase), later(ranges, phase), first(singles, phase)))
    return md_table(
        [
            "per segment (s)",
            "(a) first segment of a run",
            "(a) later segments",
            "(b) the run's one segment",
        ],
        rows,
    )


def _markdown(bench: BackfillBench) -> str:
    plan = bench.plan
    n = plan.segments
    ranges, singles = bench.of("range"), bench.of("single")
    per_a, per_b = bench.per_segment_range_s(), bench.per_segment_single_s()
    total_a = sum(run.wall_s for run in ranges)
    total_b = per_b * n
    launches_a = -(-n // plan.run_size)
    fixed, slope = bench.fit()
    low, high = DAEMON_LATENCY_S
    clip = Spread.of([size / 1e3 for size in bench.clip_bytes])
    prof = CURRENT_PROFILE
    headline = md_table(
        [
            "shape",
            "runs timed",
            "segments timed",
            "wall s per run",
            "wall s per segment",
            f"{n} segments",
        ],
        [
            (
                f"(a) backfill, {plan.run_size} partitions per run",
                len(ranges),
                sum(run.partitions for run in ranges),
                _spread([run.wall_s for run in ranges]),
                f"{per_a:.2f}",
                f"{total_a:.0f} s = {total_a / 60:.1f} min (measured, all {n})",
            ),
            (
                f"(b) one run per partition, sample of {len(singles)}",
                len(singles),
                len(singles),
                _spread([run.wall_s for run in singles]),
                f"{per_b:.2f} (mean)",
                f"{total_b:.0f} s = {total_b / 60:.1f} min (**extrapolated**: {n} x mean)",
            ),
        ],
    )
    startup_wall = _median([run.wall_s for run in bench.of("startup")])
    single_overhead = _median([run.overhead_s for run in singles])
    first_extra = _median([run.segment_s[0] for run in ranges]) - _median(
        [value for run in ranges for value in run.segment_s[1:]]
    )
    client_s = _median([value for run in ranges + singles for value in run.s3_client_s])
    pandas_runs = sum(run.pandas_imported for run in ranges + singles)
    exit_s = _median([run.exit_s for run in bench.of("startup")])
    frozen_exit_s = _median([run.exit_s for run in bench.of("startup_frozen")])
    run_exit_s = _median([run.exit_s for run in ranges + singles])
    mode = "Quick smoke run: " if bench.quick else ""
    lines = [
        f"## 4. Backfill: runs of {plan.run_size} partitions vs one run per partition",
        "",
        f"{mode}{n} proven segments ({plan.sessions} sessions x {plan.segments_per_session}; "
        f"{CLIP_SECONDS:.0f} s {CLIP_WIDTH}x{CLIP_HEIGHT} {CLIP_CODEC} {CLIP_FPS} fps clips of "
        f"{clip.median:.0f} kB median) in a private SeaweedFS and a fresh SQLite DAGSTER_HOME. "
        f"Per segment: the proof guard, one ffmpeg pass (profile `{prof.version}`: proxy, "
        f"{prof.thumbnails} thumbnails, contact sheet, probe), {prof.thumbnails + 2} uploads "
        "each read back, two catalog records. Setup, not timed: simulating the captures took "
        f"{bench.simulate_s:.0f} s, proving them in process {bench.prove_s:.0f} s.",
        "",
        "Every run is a fresh `python` subprocess that imports the code location "
        f"({bench.assets} asset keys in `defs` when measured: its start-up grows with the "
        "code location), resolves "
        "`review_derivatives_job` from `defs`, opens the instance from DAGSTER_HOME and calls "
        "`execute_in_process` (in-process executor, as `defs` sets): the start-up a launched "
        "run pays, since Dagster's run launcher starts each run in a new process. (a) passes "
        "the `dagster/asset_partition_range_start`/`_end` tags over consecutive partitions, "
        "(b) `partition_key=` for an evenly spread sample. Runs go one at a time, interleaved "
        "(a range run, then its share of the single and start-up runs), after one untimed "
        "warm-up child.",
        "",
        headline,
        "",
        f"**(b)/(a) = {bench.ratio():.1f}x** wall time per segment: one run per partition would "
        f"take {total_b - total_a:.0f} s ({(total_b - total_a) / 60:.1f} min) longer for {n} "
        f"segments (extrapolated from the sample). {bench.materialized} of {n} partitions have "
        "a proxy materialization at the end.",
        "",
        "Fixed cost per run, three ways (medians):",
        "",
        "- start-up only (interpreter, imports, definitions, instance, exit; no run): "
        f"{startup_wall:.2f} s;",
        f"- a one-partition run minus its segment's work: {single_overhead:.2f} s (start-up plus "
        "Dagster's run bookkeeping: run record, step events, event-log writes to SQLite). This "
        "understates it: the run's first segment also carries per-run cost, "
        f"{first_extra:.2f} s more than a later segment of a backfill run, nearly all in the "
        f"guard's proof record read: the run's S3 client ({client_s:.2f} s) and pyarrow's "
        f"first Parquet read, which imported pandas in {pandas_runs} of {len(ranges + singles)} "
        "runs;",
        f"- least-squares fit of run wall time on partitions per run over all (a) and (b) runs: "
        f"**{fixed:.2f} s per run + {slope:.2f} s per segment**.",
        "",
        "Where a run's time goes, median (min-max) over the runs of each kind:",
        "",
        _phase_table(bench),
        "",
        _segment_table(bench),
        "",
        f"Interpreter exit costs {run_exit_s:.2f} s per run ({exit_s:.2f} s after a start-up "
        f"only child): it is the final garbage collection over the imported module graph; with "
        f"`gc.freeze()` before exit the same child exits in {frozen_exit_s:.2f} s. A launched "
        "run pays it too.",
        "",
        "Not included: the daemon's queueing and launch latency (Dagster's GitHub issues report "
        f"3-20 s from request to start per run) comes on top of every run: {n} "
        f"launches for (b) against {launches_a} for (a), i.e. {n * low / 60:.0f}-"
        f"{n * high / 60:.0f} min against {launches_a * low / 60:.1f}-"
        f"{launches_a * high / 60:.1f} min if the runs started one after another (the run queue "
        "allows a few at once), so it only widens the gap. A production run also starts "
        "through `dagster api execute_run` on Postgres rather than `execute_in_process` on "
        "SQLite; the shape of the cost is the same: a fixed start-up per run, then per-segment "
        "work.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 segments, runs of 10, sample 5")
    args = parser.parse_args()
    print(_markdown(run(args.quick)))


if __name__ == "__main__":
    main()
