"""The partition lifecycle end to end, on real SeaweedFS and a real Dagster instance.

One world for the module (pipeline runs are the expensive part), built once:
  session S1 (blur enforced): segment A, proven, derived, every clip approved -> closed
  session S2: B (clips need review), C (proof stale: raw replaced after its proof),
              D (corrupt upload: proof failed with a reason -> closed)
then one tick of partition_archival_sensor with archive age 0. The tests run in file order:
the last one reopens A and runs its pipeline again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, SensorResult, build_sensor_context, materialize

from robotrace_assets import catalog
from robotrace_assets.capture.simulator import SimulatedSession
from robotrace_assets.delivery.assets import buyer_delivery
from robotrace_assets.delivery.buyers import delivery_partition
from robotrace_assets.ids import id_day
from robotrace_assets.intake.jobs import SEGMENT_RUN_ASSETS
from robotrace_assets.lifecycle import policy
from robotrace_assets.lifecycle.archive import (
    ARCHIVED,
    REOPENED,
    archived_on_day,
    history,
    is_archived,
    record_reopened,
)
from robotrace_assets.lifecycle.sensors import partition_archival_sensor
from robotrace_assets.lifecycle.settings import LifecycleResource
from robotrace_assets.objectstore.local import LocalObjectStore
from robotrace_assets.proof.guard import proof_gate
from robotrace_assets.review.sets import review_sets
from robotrace_assets_tests.conftest import drop_bucket
from robotrace_assets_tests.helpers import (
    TEST_STORE,
    alerts_for,
    check_outcomes,
    failure_messages,
    resources_for,
    run_segment_pipeline,
    simulate,
    store_for,
)

pytestmark = pytest.mark.slow


@dataclass
class World:
    bucket: str
    home: Path
    instance: DagsterInstance
    closed_session: SimulatedSession
    held_session: SimulatedSession
    result: SensorResult
    history_before: dict[str, int]

    @property
    def a(self) -> str:
        return self.closed_session.segments[0].segment_id

    def seg(self, index: int) -> str:
        return self.held_session.segments[index].segment_id


def _history(instance: DagsterInstance, segment_id: str) -> dict[str, int]:
    """How many materializations each pipeline asset has for the segment."""
    from dagster import AssetRecordsFilter

    return {
        key.to_user_string(): len(
            instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, asset_partitions=[segment_id]), limit=100
            ).records
        )
        for key in SEGMENT_RUN_ASSETS
    }


def tick(instance: DagsterInstance, bucket: str, cursor: str | None = None) -> SensorResult:
    """One sensor tick, its partition requests applied as the sensor daemon applies them."""
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "object_store": store_for(bucket),
            "lifecycle": LifecycleResource(archive_after_days=0),
        },
    )
    result = partition_archival_sensor(context)
    assert isinstance(result, SensorResult)
    for request in result.dynamic_partitions_requests or []:
        for key in request.partition_keys or []:
            instance.delete_dynamic_partition(request.partitions_def_name or "", key)
    return result


def _set_blur(s3, bucket: str, session: SimulatedSession, enforced: bool) -> None:
    """The demo rules approve clips only when the capture enforced privacy blur; without it
    every clip that is not rejected needs a person's review."""
    doc = json.loads(s3.get_object(Bucket=bucket, Key=session.envelope_key)["Body"].read())
    doc["environment"]["blur_enforced"] = enforced
    s3.put_object(Bucket=bucket, Key=session.envelope_key, Body=json.dumps(doc).encode())


@pytest.fixture(scope="module")
def world(
    local_store: LocalObjectStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    s3 = local_store.client()
    bucket = f"t-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    root = tmp_path_factory.mktemp("lifecycle")
    TEST_STORE.data_dir = root / "data"
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    try:
        with DagsterInstance.local_temp(str(home)) as instance:
            closed = simulate(s3, bucket, sessions=1, segments=1, seed=11)[0]
            _set_blur(s3, bucket, closed, enforced=True)
            held = simulate(s3, bucket, "corrupt_after_upload@0.2", segments=3, seed=12)[0]
            _set_blur(s3, bucket, held, enforced=False)
            instance.add_dynamic_partitions(
                "media_session", [closed.media_session_id, held.media_session_id]
            )
            for segment in closed.segments + held.segments:
                run_segment_pipeline(instance, bucket, segment.segment_id)
            # C's raw video is replaced after its proof: the gate marks the proof stale.
            stale = held.segments[1]
            s3.put_object(Bucket=bucket, Key=stale.raw_key, Body=b"replaced after the proof")
            gate = proof_gate(instance, store_for(bucket), alerts_for(), stale.segment_id)
            assert not gate.passed
            a = closed.segments[0].segment_id
            before = _history(instance, a)
            result = tick(instance, bucket)
            yield World(bucket, home, instance, closed, held, result, before)
    finally:
        drop_bucket(s3, bucket)


def test_sensor_archives_closed_partitions_and_keeps_their_history(world: World) -> None:
    instance, store = world.instance, store_for(world.bucket)
    a, b, c, d = world.a, world.seg(0), world.seg(1), world.seg(2)
    active = set(instance.get_dynamic_partitions("segment"))
    assert a not in active and d not in active, "closed segments leave the dynamic set"
    assert {b, c} <= active, "a clip needing review and a stale proof keep theirs"
    sessions = set(instance.get_dynamic_partitions("media_session"))
    assert world.closed_session.media_session_id not in sessions
    assert world.held_session.media_session_id in sessions  # B and C are still active
    # Archive records, readable without Dagster.
    assert is_archived(store, a) and is_archived(store, d) and not is_archived(store, b)
    assert is_archived(store, world.closed_session.media_session_id)
    assert {a} <= archived_on_day(store, "segment", id_day(a))
    [event] = history(store, a)
    assert event.action == ARCHIVED and event.by == "partition_archival_sensor"
    assert event.media_session_id == world.closed_session.media_session_id
    assert "verified, derivatives current" in event.reason
    assert "proof mismatch" in history(store, d)[0].reason
    # The event log still answers for the deleted partition: materializations, checks, gate.
    assert _history(instance, a) == world.history_before
    assert all(v >= 1 for v in world.history_before.values()), world.history_before
    assert all(check_outcomes(instance, a).values())
    assert proof_gate(instance, store, alerts_for(), a).passed
    # Catalog records are never deleted.
    for table in (catalog.PROOFS, catalog.DERIVATIVES, catalog.CLIPS, catalog.CLIP_REVIEWS):
        assert store.read_record(table, a), table
    # The next tick finds nothing new to archive and says why the rest stays.
    again = tick(instance, world.bucket, world.result.cursor)
    assert not again.dynamic_partitions_requests
    assert again.skip_reason is not None
    reason = again.skip_reason.skip_message or ""
    assert f"{policy.NEEDS_REVIEW} 1" in reason and f"{policy.PROOF_STALE} 1" in reason
    assert f"{policy.SEGMENTS_ACTIVE} 1" in reason


def test_a_delivery_of_an_archived_segment_is_delivered(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archived is never skipped: the delivery reads the records and the proof gate reads the
    event log, both still there for a deleted partition."""
    instance, bucket, a = world.instance, world.bucket, world.a
    buyers = tmp_path / "buyers.json"
    entry = {
        "buyer_id": "acme",
        "uses": ["robotics_training"],
        "proof_policy": "strict",
        "format": "raw",
        "method": "copy",
        "licensed_tenants": ["*"],
    }
    buyers.write_text(json.dumps({"buyers": [entry]}))
    monkeypatch.setenv("ROBOTRACE_BUYERS_FILE", str(buyers))
    day = id_day(a)
    resources = {"object_store": store_for(bucket)}
    sets = materialize([review_sets], partition_key=day, instance=instance, resources=resources)
    assert sets.success, failure_messages(sets)
    partition = delivery_partition("acme", "archived1")
    instance.add_dynamic_partitions("delivery", [partition])
    result = materialize(
        [buyer_delivery],
        partition_key=partition,
        instance=instance,
        resources=resources_for(bucket),
        raise_on_error=False,
        run_config={"ops": {"delivery__buyer_delivery": {"config": {"from_day": day}}}},
    )
    assert result.success, failure_messages(result)
    metadata = result.asset_materializations_for_node("delivery__buyer_delivery")[0].metadata
    assert int(str(metadata["clips"].value)) >= 1 and metadata["excluded_for_proof"].value == 0
    manifest = json.loads(
        store_for(bucket).get_bytes("robotics/deliveries/acme/archived1/manifest.json")
    )
    assert a in json.dumps(manifest)
    assert not instance.has_dynamic_partition("segment", a)  # delivered while archived


def robotrace(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(world.home),
        "ROBOTRACE_BUCKET": world.bucket,
        "ROBOTRACE_ARCHIVE_AFTER_DAYS": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", "robotrace_assets.cli", "segments", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_status_and_dry_run(world: World) -> None:
    unknown = "seg_01KT9WNH80AAAAAAAAAAAAAAAA"
    status = robotrace(world, "status", world.a, world.seg(0), unknown, "--json")
    assert status.returncode == 0, status.stderr
    lines = {d["entity_id"]: d for d in map(json.loads, status.stdout.splitlines())}
    assert lines[world.a]["state"] == "archived" and lines[world.a]["at"]
    assert lines[world.a]["by"] == "partition_archival_sensor"
    assert lines[world.seg(0)]["state"] == "active" and lines[unknown]["state"] == "unknown"
    dry = robotrace(world, "archive", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "archiving 0 segments" in dry.stderr and f"{policy.NEEDS_REVIEW} 1" in dry.stderr
    assert world.seg(0) in world.instance.get_dynamic_partitions("segment")


def test_reopen_refuses_hostile_input_and_changes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process (the same main() the command runs), to spare a Python start per case."""
    from robotrace_assets.cli import main

    store = store_for(world.bucket)
    monkeypatch.setenv("DAGSTER_HOME", str(world.home))
    monkeypatch.setenv("ROBOTRACE_BUCKET", world.bucket)
    unknown = "seg_01KT9WNH80AAAAAAAAAAAAAAAA"
    cases = (["../../etc/passwd"], ["seg_1,seg_2"], ["clip_" + "0" * 26], [unknown])
    for ids in (*cases, [world.a, unknown], [world.a, "msess_x"]):
        assert main(["segments", "reopen", *ids, "--reason", "hostile"]) == 2, ids
        err = capsys.readouterr().err
        assert err.startswith("refused:") and "Traceback" not in err, err
    assert main(["segments", "reopen", world.a, "--reason", "  "]) == 2
    assert "reason is required" in capsys.readouterr().err
    assert not world.instance.has_dynamic_partition("segment", world.a)
    assert [e.action for e in history(store, world.a)] == [ARCHIVED]


def test_reopen_brings_partitions_back_and_the_pipeline_reruns(world: World) -> None:
    instance, store, a = world.instance, store_for(world.bucket), world.a
    done = robotrace(world, "reopen", a, "--reason", "re-derive with profile d2", "--by", "ops")
    assert done.returncode == 0, done.stderr
    assert f"{a}  reopened" in done.stdout
    assert instance.has_dynamic_partition("segment", a)
    # Its session comes back with it: an archived session never has an active segment.
    assert instance.has_dynamic_partition("media_session", world.closed_session.media_session_id)
    last = history(store, a)[-1]
    assert (last.action, last.by, last.reason) == (REOPENED, "ops", "re-derive with profile d2")
    assert not is_archived(store, a)
    # Reopening what is active is a no-op, not an error.
    again = robotrace(world, "reopen", a)
    assert again.returncode == 0 and "already active" in again.stdout
    result = run_segment_pipeline(instance, world.bucket, a)
    assert result.success, failure_messages(result)
    assert _history(instance, a)[AssetKey(["proof", "provider_proof"]).to_user_string()] == 2
    # Still closed: the next tick archives it (and its session) again.
    tick(instance, world.bucket)
    assert not instance.has_dynamic_partition("segment", a)
    assert [e.action for e in history(store, a)] == [ARCHIVED, REOPENED, ARCHIVED]


def test_a_sensor_that_re_adds_partitions_records_the_reopen(world: World) -> None:
    """What review_decision_sensor (a decision on an archived segment's clip) would call beside
    its add request: only archived ids get a reopen record."""
    store, d, b = store_for(world.bucket), world.seg(2), world.seg(0)
    assert record_reopened(store, [d, b, d], by="review_decision_sensor", reason="decision") == [d]
    assert not is_archived(store, d) and history(store, d)[-1].by == "review_decision_sensor"
    assert history(store, b) == []


def test_a_decision_on_an_archived_segment_reopens_it(world: World) -> None:
    """Runs after the reopen test has archived segment A again."""
    from dagster import build_sensor_context

    from robotrace_assets import catalog
    from robotrace_assets.review.filing import submit
    from robotrace_assets.review.sensors import review_decision_sensor

    instance, store, a = world.instance, store_for(world.bucket), world.a
    assert not instance.has_dynamic_partition("segment", a)
    clip_id = (store.read_record(catalog.CLIPS, a) or [])[0]["clip_id"]
    submit(
        store.client(),
        world.bucket,
        clip_id=clip_id,
        reviewer_id="rev_1",
        action="approve",
        rationale="looked again",
    )
    context = build_sensor_context(instance=instance, resources=resources_for(world.bucket))
    result = review_decision_sensor(context)
    assert [r.partition_key for r in result.run_requests] == [a]
    (added,) = result.dynamic_partitions_requests
    assert added.partitions_def_name == "segment" and list(added.partition_keys) == [a]
    last = history(store, a)[-1]
    assert (last.action, last.by) == (REOPENED, "review_decision_sensor")
