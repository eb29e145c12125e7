"""Buyer deliveries end to end against the real store and Dagster: eligibility, proof policy,
both delivery methods, signed manifests, idempotency, tenant isolation, LeRobot export."""

import io
import json
import time

import pyarrow.parquet as pq
import requests
from dagster import materialize

from robotrace_assets import catalog, layout
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.delivery.assets import buyer_delivery
from robotrace_assets.delivery.buyers import delivery_partition
from robotrace_assets.delivery.manifest.model import Manifest
from robotrace_assets.delivery.manifest.read import read_manifest_json
from robotrace_assets.delivery.manifest.rows import table_from_rows
from robotrace_assets.delivery.manifest.verify import verify_manifest
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.ids import id_day
from robotrace_assets.objectstore.client import presign_get
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.resources import LOCAL_DEV_KEY
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.sets import review_sets
from robotrace_assets.review.shards import day_prefix
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    resources_for,
    run_assets,
    simulate,
    store_for,
)

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]


def _buyers(tmp_path, monkeypatch, **overrides) -> None:
    entry = {
        "buyer_id": "acme",
        "uses": ["robotics_training"],
        "proof_policy": "strict",
        "format": "raw",
        "method": "copy",
        "licensed_tenants": ["*"],
    }
    entry.update(overrides)
    path = tmp_path / "buyers.json"
    path.write_text(json.dumps({"buyers": [entry]}))
    monkeypatch.setenv("ROBOTRACE_BUYERS_FILE", str(path))


def _prepare(s3, bucket, instance, *defects, segments=2, **config):
    """Prove, derive, clip and review a session; everything approved by the machine."""
    session = simulate(s3, bucket, *defects, segments=segments, **config)[0]
    # Make the capture unambiguous for the demo rules: blur enforced.
    doc = json.loads(s3.get_object(Bucket=bucket, Key=session.envelope_key)["Body"].read())
    doc["environment"]["blur_enforced"] = True
    s3.put_object(Bucket=bucket, Key=session.envelope_key, Body=json.dumps(doc).encode())
    for segment in session.segments:
        run_assets(instance, bucket, FULL, segment.segment_id)
    store = store_for(bucket)
    for day in sorted({id_day(segment.segment_id) for segment in session.segments}):
        assert materialize(
            [review_sets], partition_key=day, instance=instance, resources={"object_store": store}
        ).success
    return session, store


# The capture days of the simulator's sessions (its clock starts 2026-06-04 18:00 UTC).
WINDOW = {"from_day": "2026-06-04", "to_day": "2026-06-05"}


def _deliver(instance, bucket, delivery_id="d1", buyer="acme", window=WINDOW):
    partition = delivery_partition(buyer, delivery_id)
    instance.add_dynamic_partitions("delivery", [partition])
    return materialize(
        [buyer_delivery],
        partition_key=partition,
        instance=instance,
        resources=resources_for(bucket),
        raise_on_error=False,
        run_config={"ops": {"delivery__buyer_delivery": {"config": window or {}}}},
    )


def _manifest(store, buyer="acme", delivery_id="d1"):
    data = store.get_bytes(f"{layout.delivery_prefix(buyer, delivery_id)}manifest.json")
    return read_manifest_json(data)


def test_copy_delivery_is_verified_signed_and_idempotent(
    s3, bucket, instance, tmp_path, monkeypatch
) -> None:
    _buyers(tmp_path, monkeypatch)
    _session, store = _prepare(s3, bucket, instance)
    result = _deliver(instance, bucket)
    assert result.success, failure_messages(result)
    manifest = _manifest(store)
    assert verify_manifest(manifest, hmac_key=LOCAL_DEV_KEY) == []
    kinds = {row["kind"] for row in manifest.table.to_pylist()}
    assert {"raw_video", "sensor_log", "proxy", "thumbnail", "contact_sheet"} <= kinds
    for row in manifest.table.to_pylist():
        assert row["artifact_key"].startswith(layout.delivery_prefix("acme", "d1"))
        body = s3.get_object(Bucket=bucket, Key=row["artifact_key"])["Body"].read()
        import hashlib

        assert hashlib.sha256(body).hexdigest() == row["sha256"]
        assert row["consent_receipt_id"] and row["license_scope_id"]
        assert row["review_status"] == "approved"
    # Tampering with the manifest is detected.
    tampered = manifest.table.to_pylist()
    tampered[0]["sha256"] = "0" * 64
    forged = Manifest(manifest.header, table_from_rows(tampered))
    assert verify_manifest(forged, hmac_key=LOCAL_DEV_KEY)
    # Again: same artifacts, no new copies, the same manifest.
    again = _deliver(instance, bucket)
    assert again.success
    metadata = again.asset_materializations_for_node("delivery__buyer_delivery")[0].metadata
    assert metadata["manifest_unchanged"].value is True and metadata["copied"].value == 0
    assert _manifest(store).header == manifest.header


def test_strict_policy_blocks_and_lenient_excludes(s3, bucket, instance, tmp_path, monkeypatch):
    _buyers(tmp_path, monkeypatch)
    session, store = _prepare(s3, bucket, instance)
    bad = session.segments[1]
    # The derivative of a delivered segment rots after review.
    rows = store.read_record(catalog.DERIVATIVES, bad.segment_id)
    s3.put_object(Bucket=bucket, Key=rows[0]["key"], Body=b"rotten")
    strict = _deliver(instance, bucket, "strict1")
    assert not strict.success
    assert "strict proof policy" in failure_messages(strict)
    assert (
        s3.list_objects_v2(Bucket=bucket, Prefix=layout.delivery_prefix("acme", "strict1"))[
            "KeyCount"
        ]
        == 0
    )
    _buyers(tmp_path, monkeypatch, proof_policy="lenient")
    lenient = _deliver(instance, bucket, "lenient1")
    assert lenient.success, failure_messages(lenient)
    manifest = _manifest(store, delivery_id="lenient1")
    assert {r["segment_id"] for r in manifest.table.to_pylist()} == {session.segments[0].segment_id}
    exclusions = json.loads(
        store.get_bytes(f"{layout.delivery_prefix('acme', 'lenient1')}exclusions.json")
    )
    assert {e["segment_id"] for e in exclusions["excluded_for_proof"]} == {bad.segment_id}


def test_license_and_tenant_rules_hold(s3, bucket, instance, tmp_path, monkeypatch) -> None:
    _session, _store = _prepare(s3, bucket, instance, segments=1)
    _buyers(tmp_path, monkeypatch, uses=["resale"])
    result = _deliver(instance, bucket, "lic1")
    assert "nothing eligible" in failure_messages(result)
    _buyers(tmp_path, monkeypatch, licensed_tenants=["ten_01KT9WNH80R84P57VFQVC2R1YZ"])
    result = _deliver(instance, bucket, "ten1")
    assert "nothing eligible" in failure_messages(result)


def test_presigned_links_work_then_expire(s3, bucket, instance, tmp_path, monkeypatch) -> None:
    _buyers(tmp_path, monkeypatch, method="presigned_url")
    _session, store = _prepare(s3, bucket, instance, segments=1)
    result = _deliver(instance, bucket, "links1")
    assert result.success, failure_messages(result)
    links = json.loads(store.get_bytes(f"{layout.delivery_prefix('acme', 'links1')}links.json"))
    assert links["expires_in_s"] == 3600 and links["links"]
    key, url = next(iter(links["links"].items()))
    # Links are pinned to the proven bytes: the buyer sends the If-Match header links.json names.
    headers = links["required_headers"][key]
    assert requests.get(url, headers=headers, timeout=30).status_code == 200
    assert requests.get(url, timeout=30).status_code == 403  # unpinned GET: signature mismatch
    short = presign_get(s3, bucket, key, ttl_s=1)
    assert requests.get(short, timeout=30).status_code == 200
    time.sleep(2.5)
    assert requests.get(short, timeout=30).status_code == 403
    # The links never reach the run's logs or metadata.
    logs = "\n".join(str(e.message) for e in result.all_events)
    assert "X-Amz-Signature" not in logs


def test_lerobot_delivery_validates(s3, bucket, instance, tmp_path, monkeypatch) -> None:
    from robotrace_assets.delivery.lerobot.validate import validate_lerobot

    _buyers(tmp_path, monkeypatch, format="lerobot")
    session, store = _prepare(s3, bucket, instance, segments=1)
    result = _deliver(instance, bucket, "lr1")
    assert result.success, failure_messages(result)
    prefix = f"{layout.delivery_prefix('acme', 'lr1')}lerobot/"
    local = tmp_path / "download"
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        path = local / item["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    assert validate_lerobot(local) == []
    info = json.loads((local / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == len(
        store.read_record(catalog.CLIPS, session.segments[0].segment_id)
    )
    # Per-frame task from the label track: the envelope's task steps.
    tasks = set(pq.read_table(local / "meta" / "tasks.parquet").column("task").to_pylist())
    assert tasks == {s["label"] for s in session.segments[0].envelope["task_steps"]}
    episodes = pq.read_table(local / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    assert "reviewer_tags" in episodes.column_names


def _download(s3, bucket, prefix, local):
    for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]:
        path = local / item["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


def test_lerobot_delivery_carries_depth_when_the_buyer_asks(
    s3, bucket, instance, tmp_path, monkeypatch
) -> None:
    """A LiDAR session with dropped depth frames, delivered with include_depth: the maps of the
    dropped frames are zero and marked invalid, the dataset validates, a second run keeps it."""
    from robotrace_assets.delivery.lerobot.validate import validate_lerobot

    _buyers(tmp_path, monkeypatch, format="lerobot", include_depth=True)
    session, _ = _prepare(s3, bucket, instance, "dropped_depth_frames@0.0", segments=1, depth=True)
    assert session.envelope["device"]["has_lidar"], "seed 0's session has a LiDAR device"
    result = _deliver(instance, bucket, "lrd")
    assert result.success, failure_messages(result)
    local = tmp_path / "download"
    _download(s3, bucket, f"{layout.delivery_prefix('acme', 'lrd')}lerobot/", local)
    assert validate_lerobot(local) == []
    features = json.loads((local / "meta" / "info.json").read_text())["features"]
    assert features["observation.depth"]["dtype"] == "uint16"
    data = pq.read_table(local / "data" / "chunk-000" / "file-000.parquet")
    valid = data.column("observation.depth_valid").to_pylist()
    assert False in valid and True in valid  # the defect's stretch has no depth
    first = _manifest(store_for(bucket), delivery_id="lrd")
    assert _deliver(instance, bucket, "lrd").success
    assert _manifest(store_for(bucket), delivery_id="lrd") == first


def test_cli_delivers_and_refuses_unknown_buyers(
    s3, bucket, instance, tmp_path, monkeypatch, data_dir
) -> None:
    from robotrace_assets.cli import main as cli

    _buyers(tmp_path, monkeypatch)
    _prepare(s3, bucket, instance, segments=1)
    # The CLI records its run in the instance at DAGSTER_HOME; the proof checks live there too.
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    assert cli(["deliver", "nobody"]) == 2
    assert cli(["deliver", "acme", "--delivery-id", "../escape"]) == 2
    days = ["--from", WINDOW["from_day"], "--to", WINDOW["to_day"]]
    assert cli(["deliver", "acme", "--delivery-id", "cli1", *days]) == 0
    # The UI names the run's job (not __ephemeral_asset_job__).
    assert instance.get_runs(limit=1)[0].job_name == "buyer_delivery_job"
    manifest = _manifest(store_for(bucket), delivery_id="cli1")
    assert verify_manifest(manifest, hmac_key=LOCAL_DEV_KEY) == []


def test_mcap_delivery_carries_telemetry_beside_the_proxies(
    s3, bucket, instance, tmp_path, monkeypatch
) -> None:
    from mcap.reader import make_reader

    _buyers(tmp_path, monkeypatch, format="mcap")
    session, store = _prepare(s3, bucket, instance, segments=1)
    result = _deliver(instance, bucket, "mc1")
    assert result.success, failure_messages(result)
    prefix = layout.delivery_prefix("acme", "mc1")
    manifest = json.loads(store.get_bytes(f"{prefix}manifest.json"))
    kinds = sorted(row["kind"] for row in manifest["artifacts"])
    assert kinds == ["proxy", "telemetry_mcap"]
    data = store.get_bytes(f"{prefix}mcap/{session.media_session_id}.mcap")
    summary = make_reader(io.BytesIO(data)).get_summary()
    topics = {channel.topic for channel in summary.channels.values()}
    assert {"/robotrace/ee_pose", "/robotrace/clips", "/robotrace/machine_scores"} <= topics


def test_delivery_reads_only_its_window_and_keeps_it(
    s3, bucket, instance, tmp_path, monkeypatch
) -> None:
    _buyers(tmp_path, monkeypatch)
    _session, store = _prepare(s3, bucket, instance, segments=1)
    # A damaged shard on a day outside the window: a delivery that read it would fail.
    outside = (
        f"{day_prefix(catalog.REVIEW_COMPLETE, '2026-06-03')}seg_01KT9WNH80AAAAAAAAAAAAAAAA.parquet"
    )
    s3.put_object(Bucket=bucket, Key=outside, Body=b"not parquet")
    result = _deliver(instance, bucket, "w1")
    assert result.success, failure_messages(result)
    metadata = result.asset_materializations_for_node("delivery__buyer_delivery")[0].metadata
    assert metadata["window"].value == "2026-06-04..2026-06-05"
    assert store.read_record("delivery_windows", "acme--w1") == [WINDOW]
    # Again without a window: the stored one, the same manifest.
    again = _deliver(instance, bucket, "w1", window=None)
    assert again.success, failure_messages(again)
    metadata = again.asset_materializations_for_node("delivery__buyer_delivery")[0].metadata
    assert metadata["manifest_unchanged"].value is True
    # Another window for the same delivery is refused; a window with no clips delivers nothing.
    other = {"from_day": "2026-06-01", "to_day": "2026-06-02"}
    refused = _deliver(instance, bucket, "w1", window=other)
    assert not refused.success and "use a new delivery id" in failure_messages(refused)
    empty = _deliver(instance, bucket, "w2", window=other)
    assert not empty.success and "nothing eligible" in failure_messages(empty)
