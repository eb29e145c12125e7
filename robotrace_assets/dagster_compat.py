"""The few Dagster names this code location needs that the public `dagster` namespace lacks.

Checked against Dagster 1.13.27: none of the names below is exported by `dagster`. Every other
module imports them from here, so a Dagster upgrade that moves or publishes one is a one-file
change. Nothing else in the package may import from `dagster._*`.
"""

from collections.abc import Iterable, Mapping

from dagster import AssetsDefinition, RunRequest

# A ranged intake run records one check evaluation per segment (batching.check_each); the
# evaluation names the materialization it looked at through this record type, unexported.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as CheckTarget,
)

# A sensor asks the sensor daemon for a backfill (not a run) with
# RunRequest.for_asset_graph_subset, and that constructor takes this type, which Dagster keeps
# out of its public API. Only `backfill_request` below touches it.
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset

# Reading proof-check results per partition (proof guard, proof alerts, derivative refresh) has
# no public instance method: it goes through the instance's event-log storage, whose filter
# type, record type and status enum are not exported. The public AssetCheckEvaluation describes
# one evaluation, not its execution record or status.
from dagster._core.event_api import PartitionKeyFilter

# Listing backfills by status (the derivative refresh skips while its backfill is running):
# DagsterInstance.get_backfills takes this enum, and no public API lists backfills.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

__all__ = [
    "AssetCheckExecutionRecord",
    "AssetCheckExecutionRecordStatus",
    "BulkActionStatus",
    "CheckTarget",
    "PartitionKeyFilter",
    "backfill_request",
]


def backfill_request(
    assets: AssetsDefinition, partition_keys: Iterable[str], tags: Mapping[str, str]
) -> RunRequest:
    """A sensor run request that the sensor daemon turns into one backfill of these partitions
    of every asset in `assets` (the backfill daemon then splits it by the backfill policy)."""
    partitions_def = assets.partitions_def
    if partitions_def is None:
        raise ValueError(f"{assets.node_def.name} is not partitioned")
    subset = partitions_def.subset_with_partition_keys(partition_keys)
    target = AssetGraphSubset(partitions_subsets_by_asset_key={key: subset for key in assets.keys})
    return RunRequest.for_asset_graph_subset(target, tags=dict(tags))
