"""The derivative refresh reads only what is new since its cursor, and every active segment only
after a profile change. Proofs, check results and proxies are recorded in a real Dagster
instance as runless events (no media needed to test what a tick reads)."""

from dagster import AssetCheckEvaluation, AssetMaterialization, AssetRecordsFilter, DagsterInstance
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.sensors import RefreshReader, refresh_tick
from robotrace_assets.derivatives.staleness import MAX_PENDING, RefreshCursor, Staleness, remember
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.proof.guard import PROOF_CHECK_KEYS

CURRENT, OLDER = "fp-current", "fp-older"
A, B, C, D, E = (f"seg_01KT9WNH80{c * 16}" for c in "ABCDE")


def _prove(instance: DagsterInstance, segment: str, passed: bool = True) -> None:
    instance.add_dynamic_partitions("segment", [segment])
    instance.report_runless_asset_event(
        AssetMaterialization(asset_key=PROVIDER_PROOF, partition=segment)
    )
    record = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=PROVIDER_PROOF, asset_partitions=[segment]), limit=1
    ).records[0]
    target = AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )
    for key in PROOF_CHECK_KEYS:
        instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=key.asset_key,
                check_name=key.name,
                passed=passed,
                partition=segment,
                target_materialization_data=target,
            )
        )


def _proxy(instance: DagsterInstance, segment: str, fingerprint: str) -> None:
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key=PROXY, partition=segment, metadata={"profile_fingerprint": fingerprint}
        )
    )


def _tick(instance: DagsterInstance, cursor: RefreshCursor, fingerprint: str = CURRENT):
    reader = RefreshReader(instance)
    stale = refresh_tick(reader, cursor, fingerprint)
    return stale, reader.segment_reads


def test_ticks_read_only_what_is_new_and_a_profile_change_reads_everything(instance) -> None:
    for segment in (A, B, C):
        _prove(instance, segment)
    _proxy(instance, A, CURRENT)
    _proxy(instance, B, OLDER)
    cursor = RefreshCursor()  # no cursor yet: the first tick is a full pass
    stale, _reads = _tick(instance, cursor)
    assert (stale.missing, stale.outdated) == ([C], [B])
    assert cursor.fingerprint == CURRENT and not cursor.full_pass

    stale, reads = _tick(instance, cursor)  # nothing new: nothing read, the pending kept
    assert reads == 0 and stale.targets == [B, C]

    _proxy(instance, B, CURRENT)  # the backfill made B and C
    _proxy(instance, C, CURRENT)
    _prove(instance, D)  # a new proven segment, no derivatives yet
    _prove(instance, E, passed=False)  # a failed proof: never a target
    stale, reads = _tick(instance, cursor)
    assert (stale.missing, stale.outdated) == ([D], [])
    # Only D and E are looked up: B and C got proxies of the current profile, A nothing new.
    assert reads <= 3 * 2
    assert cursor.pending == {D: "missing"}

    instance.delete_dynamic_partition("segment", D)  # archived: not an active partition
    stale, reads = _tick(instance, cursor, "fp-new")  # a profile change: one full pass
    assert (stale.missing, stale.outdated) == ([], [A, B, C])
    assert reads >= 4 and cursor.fingerprint == "fp-new"
    stale, reads = _tick(instance, cursor, "fp-new")
    assert reads == 0 and stale.targets == [A, B, C]


def test_pending_is_bounded_and_an_overflow_asks_for_a_full_pass() -> None:
    cursor = RefreshCursor(fingerprint=CURRENT, full_pass=False)
    many = [f"seg_{n:026d}" for n in range(MAX_PENDING + 5)]
    remember(cursor, Staleness(missing=many, outdated=[]), [])
    assert len(cursor.pending) == MAX_PENDING and cursor.full_pass
    assert RefreshCursor.from_json(cursor.to_json()) == cursor
    assert RefreshCursor.from_json("not json").full_pass  # unreadable: a full pass, no loss
