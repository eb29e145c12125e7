"""Reading a proof check's execution history after a cursor (alert sensor, derivative refresh)."""

from dagster import AssetCheckKey, DagsterInstance

from robotrace_assets.dagster_compat import AssetCheckExecutionRecord

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
