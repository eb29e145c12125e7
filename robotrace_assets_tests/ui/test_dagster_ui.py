"""The Dagster UI a data engineer opens, checked on the real thing: `dagster-webserver` on a test
instance after a small batch (one clean segment, one corrupted after upload), queried through
its GraphQL API, then photographed by headless Chromium (into data/screenshots/, or
$ROBOTRACE_SCREENSHOTS_DIR: `make screenshots` refreshes docs/screenshots/).

Regenerate the screenshots with:
    .venv/bin/python -m pytest robotrace_assets_tests/ui -q
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance

from robotrace_assets import layout
from robotrace_assets.capture.simulator import SimulatedSegment
from robotrace_assets.columns import CATALOG_COLUMNS
from robotrace_assets.proof import rules
from robotrace_assets.proof.metadata import FAILED, PASSED, PROOF_STATE_TAG
from robotrace_assets.settings import PROJECT_ROOT
from robotrace_assets_tests.conftest import drop_bucket
from robotrace_assets_tests.helpers import check_outcomes, run_segment_pipeline, simulate
from robotrace_assets_tests.ui import queries
from robotrace_assets_tests.ui.browser import chromium_page, find_chromium
from robotrace_assets_tests.ui.webserver import Webserver, dagster_webserver

pytestmark = pytest.mark.slow

# A test run writes them under data/ (ignored by git) so the tree stays clean; `make
# screenshots` points this at docs/screenshots/, the committed copies the README shows.
SCREENSHOTS = Path(
    os.environ.get("ROBOTRACE_SCREENSHOTS_DIR") or PROJECT_ROOT / "data" / "screenshots"
)
CHROMIUM = find_chromium()
GROUPS = ",".join(
    f"global@global:{group}"  # how the global lineage view names a group it should expand
    for group in ("segments", "proof", "derivatives", "sessions", "clips", "review", "delivery")
)
NO_CHROMIUM = "chromium is not installed: apt-get install chromium (.ci/run does)"
PARQUET_ASSETS = {
    "sessions/media_session",
    "segments/segment",
    "segments/segment_parts",
    "segments/media_probe",
    "proof/provider_proof",
    "derivatives/proxy",
    "derivatives/thumbnails",
    "derivatives/contact_sheet",
    "clips/clip",
    "review/clip_review",
    "review/review_complete",
    "review/regression_bank",
    "delivery/buyer_delivery",
    "payouts/segment_payout",
}


@dataclass(frozen=True)
class Batch:
    web: Webserver
    bucket: str
    clean: SimulatedSegment
    corrupt: SimulatedSegment
    written: dict[str, list[tuple[str, str]]]  # catalog table -> (column, type) as written


@pytest.fixture(scope="module")
def batch(local_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Two segments through the intake sensor's run, recorded in a DAGSTER_HOME that the
    webserver then serves."""
    tmp = tmp_path_factory.mktemp("ui")
    home = tmp / "dagster_home"
    home.mkdir()
    config = {"telemetry": {"enabled": False}, "nux": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    s3, bucket = local_store.client(), f"ui-{tmp.name[-8:].lower().replace('_', '-')}"
    s3.create_bucket(Bucket=bucket)
    instance = DagsterInstance.from_config(str(home))
    try:
        # Segment 0 proves but one of its clips jerks; segment 1 is corrupted after upload.
        session = simulate(s3, bucket, "jerk_spike@0.0", "corrupt_after_upload@0.1", segments=2)[0]
        clean, corrupt = session.segments
        assert run_segment_pipeline(instance, bucket, clean.segment_id).success
        assert not run_segment_pipeline(instance, bucket, corrupt.segment_id).success
        assert check_outcomes(instance, corrupt.segment_id)[rules.SHA256] is False
        assert {run.job_name for run in instance.get_runs()} == {"segment_pipeline_job"}
        env = {**os.environ, "DAGSTER_HOME": str(home), "ROBOTRACE_BUCKET": bucket}
        workspace = PROJECT_ROOT / "workspace.yaml"
        with dagster_webserver(workspace, env, tmp / "webserver.log") as web:
            yield Batch(web, bucket, clean, corrupt, written_columns(s3, bucket))
    finally:
        instance.dispose()
        drop_bucket(s3, bucket)


def test_graphql_shows_owners_descriptions_schemas_and_code(batch: Batch) -> None:
    nodes = {
        "/".join(n["assetKey"]["path"]): n
        for n in batch.web.graphql(queries.ASSET_NODES)["assetNodes"]
    }
    assert set(nodes) >= PARQUET_ASSETS | {"raw/segment_video"}
    for name, node in nodes.items():
        assert node["description"], name
        assert {"team": "robotics-data"} in node["owners"], name
        assert node["kinds"], name
        entries = {e["label"]: e for e in node["metadataEntries"]}
        references = entries["dagster/code_references"]["codeReferences"]
        assert any(Path(r["filePath"]).is_file() for r in references), name
        if name in PARQUET_ASSETS:
            columns = entries["dagster/column_schema"]["schema"]["columns"]
            assert columns and all(c["name"] and c["type"] for c in columns), name
    assert nodes["derivatives/proxy"]["opVersion"]  # the derivative profile's version
    clip_columns = {c["name"] for c in _schema(nodes["clips/clip"])}
    assert {"clip_id", "start_s", "end_s", "machine_status", "signal_jerk_peak"} <= clip_columns


def test_declared_column_schemas_match_the_parquet_written(batch: Batch) -> None:
    for table, written in batch.written.items():
        declared = {c.name: c.type for c in CATALOG_COLUMNS[table]}
        assert [name for name, _ in written] == list(declared), table
        for name, arrow_type in written:
            if "null" not in arrow_type:  # an all-empty column is written as null
                assert arrow_type == declared[name], (table, name)


def test_sensors_and_jobs_are_described(batch: Batch) -> None:
    (repository,) = batch.web.graphql(queries.REPOSITORY)["repositoriesOrError"]["nodes"]
    for sensor in repository["sensors"]:
        if sensor["name"] != "default_automation_condition_sensor":  # Dagster's own
            assert sensor["description"], sensor["name"]
    jobs = {j["name"]: j for j in repository["jobs"]}
    assert jobs["buyer_delivery_job"]["description"]
    for name, job in jobs.items():
        if not name.startswith("__"):
            assert job["description"], name


def test_failed_proof_partition_says_so_where_it_is_shown(batch: Batch) -> None:
    failed = _materialization(batch, ["proof", "provider_proof"], batch.corrupt.segment_id)
    assert {"key": PROOF_STATE_TAG, "value": FAILED} in failed["tags"]
    entries = {e["label"]: e for e in failed["metadataEntries"]}
    assert failed["metadataEntries"][0]["label"] == "proof_state"  # first in the partition view
    assert entries["proof_state"]["text"].startswith("FAILED")
    assert rules.SHA256 in entries["proof_state"]["text"]
    assert "Re-upload" in entries["what_to_do_next"]["mdStr"]
    assert len(entries["what_to_do_next"]["mdStr"]) < 1000  # rendered inline, not behind a link
    checks = [_record(r)["check"] for r in entries["failed_check_details"]["table"]["records"]]
    assert checks == [rules.SHA256]
    passed = _materialization(batch, ["proof", "provider_proof"], batch.clean.segment_id)
    assert {"key": PROOF_STATE_TAG, "value": PASSED} in passed["tags"]


def test_clip_table_names_every_clip(batch: Batch) -> None:
    clip = _materialization(batch, ["clips", "clip"], batch.clean.segment_id)
    entries = {e["label"]: e for e in clip["metadataEntries"]}
    table = entries["clip_table"]["table"]
    assert [c["name"] for c in table["schema"]["columns"]][:4] == [
        "clip_id",
        "start_s",
        "end_s",
        "status",
    ]
    records = [_record(r) for r in table["records"]]
    assert len(records) == entries["clips"]["intValue"]
    assert all(r["clip_id"].startswith("clip_") and r["end_s"] > r["start_s"] for r in records)
    assert {r["status"] for r in records} <= {"approved", "needs_review", "rejected"}
    assert any(r["status"] == "rejected" and r["reasons"] for r in records)  # the jerk spike
    sparkline = entries["jerk_sparkline"]["mdStr"]
    assert sparkline.startswith("![jerk per clip](data:image/svg+xml,") and len(sparkline) < 1000


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_screenshots(batch: Batch) -> None:
    assert CHROMIUM is not None
    url, corrupt, clean = batch.web.url, batch.corrupt.segment_id, batch.clean.segment_id
    first_clip = _first_clip_id(batch)
    with chromium_page(CHROMIUM, scale=1.5) as page:
        page.open(f"{url}/overview", wait_for=["Overview"])
        page.click_icon("panel_show_right")  # fold the navigation away (kept for the session)
        page.open(f"{url}/asset-groups?expanded={GROUPS}", wait_for=["provider_proof", "clip"])
        page.wait(3)  # node colours (partition health) arrive after the graph is drawn
        page.screenshot(SCREENSHOTS / "asset_graph.png")
        page.open(
            f"{url}/assets/proof/provider_proof?view=partitions&partition={corrupt}",
            wait_for=["what_to_do_next", "Re-upload", rules.SHA256],
        )
        page.screenshot(SCREENSHOTS / "failed_proof_partition.png")
        page.open(
            f"{url}/assets/clips/clip?view=partitions&partition={clean}",
            wait_for=["clip_table", first_clip],
        )
        page.scroll_to_text("Metadata")
        page.screenshot(SCREENSHOTS / "clip_table.png")
        page.open(f"{url}/assets/clips/clip", wait_for=["robotics-data", "Columns", "clip_id"])
        page.screenshot(SCREENSHOTS / "asset_overview.png")
    for name in ("asset_graph", "failed_proof_partition", "clip_table", "asset_overview"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000, name


def written_columns(s3: Any, bucket: str) -> dict[str, list[tuple[str, str]]]:
    """(column, Arrow type) of one Parquet file of every catalog table in the bucket."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{layout.CATALOG}/").get("Contents", [])
    found: dict[str, list[tuple[str, str]]] = {}
    tables = sorted(CATALOG_COLUMNS, key=len, reverse=True)  # "payouts/events" before "payouts"
    for key in (item["Key"] for item in listed if item["Key"].endswith(".parquet")):
        rest = key.split("/", 2)[2]  # after robotics/catalog/
        table = next((t for t in tables if rest.startswith(f"{t}/")), rest.split("/")[0])
        if table not in found:
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            schema = pq.read_schema(io.BytesIO(data))
            found[table] = [(f.name, str(f.type).replace("<element: ", "<")) for f in schema]
    return found


def _materialization(batch: Batch, path: list[str], partition: str) -> dict[str, Any]:
    data = batch.web.graphql(queries.MATERIALIZATION, path=path, partition=partition)
    (latest,) = data["assetOrError"]["assetMaterializations"]
    return latest


def _schema(node: dict[str, Any]) -> list[dict[str, Any]]:
    entries = {e["label"]: e for e in node["metadataEntries"]}
    return entries["dagster/column_schema"]["schema"]["columns"]


def _record(text: str) -> dict[str, Any]:
    return json.loads(text)


def _first_clip_id(batch: Batch) -> str:
    clip = _materialization(batch, ["clips", "clip"], batch.clean.segment_id)
    entries = {e["label"]: e for e in clip["metadataEntries"]}
    return _record(entries["clip_table"]["table"]["records"][0])["clip_id"]
