"""Child process for the backfill benchmark: one run of `review_derivatives_job`, fresh interpreter.

Dagster's run launcher starts every launched run in a new process, which imports the code
location, loads the definitions, opens the instance and builds the resources before the first
segment is touched. This child pays the same start-up cost and then runs the job in process,
either over a partition range (the backfill shape, argv[1] = {"start": K1, "end": K2}) or for
one partition ({"partition": K}); {"startup_only": true} stops after loading everything, and
"freeze_before_exit" calls gc.freeze() before the interpreter shuts down (a diagnostic).

The parent runs this file from a snapshot directory that also holds a copy of the package, so
every child runs the same code while the working tree changes; "package" in the report says
which copy was imported. The store and bucket come from ROBOTRACE_* variables and the instance
from DAGSTER_HOME. The package's own functions are wrapped (in this process only) to split a
segment's time into the proof guard, the ffmpeg pass and the uploads, and to time the run's S3
client creation. One JSON line on stdout reports the phases.
"""

from __future__ import annotations

import time

# Before any heavy import: the parent compares this with its own clock at launch.
LAUNCHED_AT = time.time()

import gc  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def _timed(sink: list[float], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            sink.append(time.perf_counter() - started)

    return wrapper


def main(argv: list[str]) -> int:
    request = json.loads(argv[0])
    clock = time.perf_counter()
    from dagster import DagsterInstance

    import robotrace_assets.derivatives.assets as derivatives
    import robotrace_assets.proof.guard as guard
    import robotrace_assets.resources as resources
    from robotrace_assets.definitions import defs

    imported = time.perf_counter()
    job = defs.resolve_job_def("review_derivatives_job")
    asset_count = len(defs.resolve_all_asset_keys())  # the repository is resolved by now
    loaded = time.perf_counter()
    phases: dict[str, list[float]] = {
        "segment": [],
        "guard": [],
        "ffmpeg": [],
        "publish": [],
        "proof_record": [],
        "s3_client": [],
    }
    derivatives.derive_segment = _timed(phases["segment"], derivatives.derive_segment)
    derivatives.require_proven = _timed(phases["guard"], derivatives.require_proven)
    derivatives.make_derivatives = _timed(phases["ffmpeg"], derivatives.make_derivatives)
    derivatives.publish = _timed(phases["publish"], derivatives.publish)
    # The guard's catalog read (S3 GET + Parquet); the rest of the guard is event-log queries.
    guard.load_proof = _timed(phases["proof_record"], guard.load_proof)
    # The object store resource builds its boto3 client on first use, i.e. once per run.
    resources.make_client = _timed(phases["s3_client"], resources.make_client)
    report: dict[str, Any] = {
        "launched_at": LAUNCHED_AT,
        "package": str(Path(derivatives.__file__).resolve().parent.parent),
        "assets": asset_count,
    }
    with DagsterInstance.get() as instance:
        opened = time.perf_counter()
        success = True
        pandas_before = "pandas" in sys.modules
        if not request.get("startup_only"):
            if "partition" in request:
                options: dict[str, Any] = {"partition_key": request["partition"]}
            else:
                options = {
                    "tags": {
                        "dagster/asset_partition_range_start": request["start"],
                        "dagster/asset_partition_range_end": request["end"],
                    }
                }
            result = job.execute_in_process(instance=instance, raise_on_error=False, **options)
            success = result.success
        executed = time.perf_counter()
    closed = time.perf_counter()
    report.update(
        {
            "success": success,
            "imports_s": imported - clock,
            "definitions_s": loaded - imported,
            "instance_s": opened - loaded,
            "execute_s": executed - opened,
            "close_s": closed - executed,
            "phases": phases,
            # pyarrow imports pandas on its first Parquet use: a per-process cost.
            "pandas_imported_by_run": not pandas_before and "pandas" in sys.modules,
        }
    )
    print(json.dumps(report), flush=True)
    if request.get("freeze_before_exit"):
        # Diagnostic: exclude every live object from the collections run at shutdown.
        gc.freeze()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
