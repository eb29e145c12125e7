"""Reading a proof check's execution history after a cursor (alert and payout sensors,
derivative refresh)."""

from collections.abc import Iterable, Iterator

from dagster import AssetCheckKey, DagsterInstance

from robotrace_assets.dagster_compat import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

PAGE = 200


def executions_since(
    instance: DagsterInstance, key: AssetCheckKey, after: int
) -> list[AssetCheckExecutionRecord]:
    """Executions of one check with id > after, oldest first. The history API pages backwards
    from the newest, so every page down to `after` is read before any row is returned: a cap
    here would drop the oldest new rows, not defer them."""
    rows: list[AssetCheckExecutionRecord] = []
    before: int | None = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=PAGE, cursor=before
        )
        fresh = [r for r in page if r.id > after]
        rows.extend(fresh)
        if len(page) < PAGE or len(fresh) < len(page):
            return sorted(rows, key=lambda r: r.id)
        before = page[-1].id


def failed_since(
    instance: DagsterInstance, keys: Iterable[AssetCheckKey], cursor: dict[str, int]
) -> Iterator[AssetCheckExecutionRecord]:
    """Failed evaluations of `keys` after `cursor` (check name -> last execution id passed),
    oldest first per check. The cursor moves past each row once the caller has handled it, and
    stops at a planned execution whose run is still going: nothing after it is skipped."""
    for key in keys:
        for row in executions_since(instance, key, cursor.get(key.name, 0)):
            if row.status == AssetCheckExecutionRecordStatus.PLANNED:
                run = instance.get_run_by_id(row.run_id)
                if run is None or not run.is_finished:
                    break  # still running: look again next tick
                # A run that ended without evaluating it: a crash, alerted by the run sensor.
            elif row.status == AssetCheckExecutionRecordStatus.FAILED and row.event is not None:
                yield row
            cursor[key.name] = row.id
