"""Many segments per run, each with its own outcome.

A run costs seconds to start; a small segment's work costs less. So under a burst the intake
sensor asks for ranged runs (several segment partitions in one run), like the derivative backfill.
Every segment asset computes its result per segment through `materialize_each`:

- one segment (the ordinary run): the result is yielded as it is, tags included;
- several, all succeeding: one output per asset, with each segment's own metadata attached to
  its own partition (`add_asset_metadata`), so the materializations read exactly as in a
  one-segment run and the next step of the same run goes on;
- several, some failing: the segments that succeeded are recorded as materialized (one event
  each), and the step fails naming the others. Dagster stops the rest of that run, so the intake
  re-runs a failed batch one segment per run (intake/sensors.py), where each segment meets its own
  verdict: the bad ones fail alone, the good ones finish.

Blocking checks gate a ranged run per segment, not per step: the proof checks record one
evaluation per segment, and every later step passes the cross-run gate `require_proven`, which
reads exactly those evaluations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    BackfillPolicy,
    BetaWarning,
    DagsterInstance,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
)

from robotrace_assets.dagster_compat import CheckTarget

# `backfill_policy` on a single @asset is "beta" in Dagster 1.13 (it is not on @multi_asset), and it
# is exactly what packs segment backfills into ranged runs.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=BetaWarning)

# Backfills of segment assets (a re-proof, a re-derivation) pack this many segments per run too.
SEGMENTS_PER_RUN = 25
SEGMENT_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=SEGMENTS_PER_RUN)

SegmentWork = Callable[[str], MaterializeResult | Sequence[MaterializeResult]]
FAILED_SEGMENTS = "failed_segments"  # metadata of a failed batch step: segment id -> why


def _as_list(result: MaterializeResult | Sequence[MaterializeResult]) -> list[MaterializeResult]:
    return [result] if isinstance(result, MaterializeResult) else list(result)


def _why(error: Exception) -> str:
    if isinstance(error, Failure):
        return error.description or "failed"
    return f"{type(error).__name__}: {error}"[:500]


def _key(result: MaterializeResult, default: AssetKey | None) -> AssetKey:
    key = result.asset_key or default
    if key is None:
        raise ValueError("a multi-asset's per-segment results must name their asset_key")
    return AssetKey.from_coercible(key)


def materialize_each(
    context: AssetExecutionContext, work: SegmentWork
) -> Iterator[MaterializeResult]:
    """Run `work` for every segment partition of this step (see the module docstring)."""
    keys = context.partition_keys
    if len(keys) == 1:
        yield from _as_list(work(keys[0]))
        return
    single = context.assets_def.keys if len(context.assets_def.keys) == 1 else set()
    default = next(iter(single)) if single else None
    done: dict[str, list[MaterializeResult]] = {}
    failed: dict[str, str] = {}
    for segment_id in keys:
        try:
            done[segment_id] = _as_list(work(segment_id))
        except Exception as error:
            failed[segment_id] = _why(error)
            context.log.error(f"{segment_id}: {failed[segment_id]}")
    if failed:
        _record_successes(context, done, default)
        raise Failure(
            description=f"{len(failed)} of {len(keys)} segments failed in this batch: "
            + "; ".join(f"{k}: {v}" for k, v in list(failed.items())[:10]),
            metadata={FAILED_SEGMENTS: MetadataValue.json(failed)},
            allow_retries=False,
        )
    produced: list[AssetKey] = []
    for segment_id, results in done.items():
        for result in results:
            key = _key(result, default)
            context.add_asset_metadata(dict(result.metadata or {}), key, segment_id)
            if key not in produced:
                produced.append(key)
    for key in produced:
        yield MaterializeResult(asset_key=key)


def _record_successes(
    context: AssetExecutionContext,
    done: dict[str, list[MaterializeResult]],
    default: AssetKey | None,
) -> None:
    for segment_id, results in done.items():
        for result in results:
            context.log_event(
                AssetMaterialization(
                    asset_key=_key(result, default),
                    partition=segment_id,
                    metadata=dict(result.metadata or {}),
                    tags=dict(result.tags or {}),
                )
            )


def _target(instance: DagsterInstance, asset_key: AssetKey, segment_id: str) -> CheckTarget | None:
    """The materialization a check evaluated, so Dagster can tell whether it is current."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[segment_id]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return CheckTarget(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def check_each(
    context: OpExecutionContext,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    evaluate: Callable[[str], Sequence[AssetCheckResult]],
    blocking: bool = True,
) -> Iterator[AssetCheckResult]:
    """Checks of every segment partition of this step: yielded as results for one segment, and
    recorded as one evaluation per segment for several (a yielded result names no partition)."""
    if len(partition_keys) == 1:
        yield from evaluate(partition_keys[0])
        return
    for segment_id in partition_keys:
        target = _target(context.instance, asset_key, segment_id)
        for result in evaluate(segment_id):
            # log_event handles check evaluations, though its type hint leaves them out.
            context.log_event(
                AssetCheckEvaluation(  # pyright: ignore[reportArgumentType]
                    asset_key=asset_key,
                    check_name=result.check_name or "",
                    passed=result.passed,
                    metadata=dict(result.metadata or {}),
                    target_materialization_data=target,
                    severity=result.severity or AssetCheckSeverity.ERROR,
                    description=result.description,
                    blocking=blocking,
                    partition=segment_id,
                )
            )
