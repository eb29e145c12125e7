"""A scored and reviewed session exported as MCAP, read back with the mcap reader: channels,
Foxglove schemas, and messages that match the catalog and the trajectory log."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from jsonschema import Draft202012Validator
from mcap.reader import make_reader

from robotrace_assets import catalog
from robotrace_assets.cli import main as cli
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.resources import ObjectStoreResource
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.filing import file_decision, submit
from robotrace_assets.robotlogs.writers import default_topic_map, write_mcap
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.telemetry.channels import TOPICS
from robotrace_assets.telemetry.collect import TelemetryError, collect_session
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]
SCHEMAS = {
    "pose": ("foxglove.PoseInFrame", "protobuf"),
    "joints": ("foxglove.JointStates", "protobuf"),
    "clips": ("foxglove.Event", "protobuf"),
    "log": ("foxglove.Log", "protobuf"),
    "wrench": ("robotrace.Wrench", "jsonschema"),
    "signals": ("robotrace.ClipSignals", "jsonschema"),
    "scores": ("robotrace.MachineScore", "jsonschema"),
    "review": ("robotrace.ReviewDecision", "jsonschema"),
}


def _protobuf_class(name: str, data: bytes) -> Any:
    pool = descriptor_pool.DescriptorPool()
    files = list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
    while files:  # dependencies first
        ready = [f for f in files if all(_has_file(pool, d) for d in f.dependency)]
        for proto in ready:
            pool.Add(proto)
        files = [f for f in files if f not in ready]
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))


def _has_file(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindFileByName(name)
    except KeyError:
        return False
    return True


def _read_back(path: Path) -> tuple[dict[str, list[tuple[int, Any]]], dict[str, dict], Any]:
    """Messages per topic (log time, decoded), metadata records by name, and the summary."""
    reader = make_reader(io.BytesIO(path.read_bytes()))
    summary = reader.get_summary()
    assert summary is not None
    decoders: dict[int, Any] = {}
    validators: dict[int, Draft202012Validator] = {}
    messages: dict[str, list[tuple[int, Any]]] = {}
    for schema, channel, message in reader.iter_messages():
        assert schema is not None
        if schema.encoding == "protobuf":
            cls = decoders.setdefault(schema.id, _protobuf_class(schema.name, schema.data))
            decoded = cls.FromString(message.data)
        else:
            doc = json.loads(schema.data)
            validator = validators.setdefault(schema.id, Draft202012Validator(doc))
            decoded = json.loads(message.data)
            validator.validate(decoded)  # every JSON message satisfies its channel's schema
        messages.setdefault(channel.topic, []).append((message.log_time, decoded))
    metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
    return messages, metadata, summary


def _reviewed_session(s3, bucket: str, instance) -> tuple[Any, str]:
    """One spiky segment through the pipeline, one clip approved by a reviewer."""
    session = simulate(s3, bucket, "jerk_spike@0.0")[0]
    segment_id = session.segments[0].segment_id
    result = run_assets(instance, bucket, FULL, segment_id)
    assert result.success, failure_messages(result)
    store = ObjectStoreResource(bucket=bucket)
    clips = store.read_record(catalog.CLIPS, segment_id) or []
    approved = next(c for c in clips if c["machine_status"] != "rejected")
    _, key = submit(
        s3,
        bucket,
        clip_id=approved["clip_id"],
        reviewer_id="rev_carol",
        action="approve",
        rationale="clean on the proxy",
    )
    file_decision(s3, bucket, s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert run_assets(instance, bucket, [CLIP_REVIEW], segment_id).success
    return session, approved["clip_id"]


def test_reviewed_session_exports_as_foxglove_mcap(
    s3, bucket, instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, approved_id = _reviewed_session(s3, bucket, instance)
    msess = session.media_session_id
    segment_id = session.segments[0].segment_id
    store = ObjectStoreResource(bucket=bucket)
    clips = store.read_record(catalog.CLIPS, segment_id) or []
    reviews = store.read_record(catalog.CLIP_REVIEWS, segment_id) or []
    trajectory = pq.read_table(io.BytesIO(store.get_bytes(session.segments[0].sensors_key)))

    out = tmp_path / "export" / "session.mcap"
    assert cli(["export", "mcap", msess, "--out", str(out), "--with-video"]) == 0
    messages, metadata, summary = _read_back(out)

    # Channels and schemas: Foxglove's own where they exist, ours as JSON Schema otherwise.
    by_topic = {c.topic: c for c in summary.channels.values()}
    for role, (name, encoding) in SCHEMAS.items():
        channel = by_topic[TOPICS[role]]
        schema = summary.schemas[channel.schema_id]
        assert (schema.name, schema.encoding) == (name, encoding), role
        assert channel.message_encoding == ("protobuf" if encoding == "protobuf" else "json")

    # Trajectory: one pose, joints and wrench message per sample, on the host/video clock.
    host = trajectory["host_time_ns"].to_pylist()
    poses = messages[TOPICS["pose"]]
    assert [t for t, _ in poses] == host
    first = poses[0][1]
    assert first.pose.position.x == trajectory["ee_x"][0].as_py()
    assert first.timestamp.seconds * 10**9 + first.timestamp.nanos == host[0]
    joints = messages[TOPICS["joints"]][10][1]
    assert [j.position for j in joints.joints] == [
        trajectory[f"joint_{k}"][10].as_py() for k in range(len(joints.joints))
    ]
    wrench = messages[TOPICS["wrench"]][5][1]
    assert wrench["force"]["z"] == trajectory["force_z"][5].as_py()

    # Clips: boundaries as foxglove.Event, signals, scores and decisions per clip.
    events = messages[TOPICS["clips"]]
    assert len(events) == len(clips) == len(messages[TOPICS["signals"]])
    assert len(messages[TOPICS["review"]]) == len(reviews)
    by_id = {c["clip_id"]: c for c in clips}
    for log_time, event in events:
        meta = {kv.key: kv.value for kv in event.metadata}
        clip = by_id[meta["clip_id"]]
        start = event.start_time.seconds * 10**9 + event.start_time.nanos
        end = event.end_time.seconds * 10**9 + event.end_time.nanos
        assert start == log_time == host[0] + round(clip["start_s"] * 1e9)
        assert end == host[0] + round(clip["end_s"] * 1e9)
    for _, signals in messages[TOPICS["signals"]]:
        assert signals["jerk_peak"] == by_id[signals["clip_id"]]["signal_jerk_peak"]
    rejected = [s for _, s in messages[TOPICS["scores"]] if s["status"] == "rejected"]
    assert rejected and any("jerk" in r for r in rejected[0]["reasons"])
    decisions = {d["clip_id"]: d for _, d in messages[TOPICS["review"]]}
    assert decisions[approved_id]["final_status"] == "approved"
    assert decisions[approved_id]["decided_by"] == "rev_carol"
    levels = {
        line.message.split(":")[-1].split(" (")[0].strip() for _, line in messages[TOPICS["log"]]
    }
    assert "approved" in levels and "rejected" in levels

    # Provenance and the proxy video beside the file.
    assert metadata["robotrace.session"]["operator_id"] == session.envelope["operator_id"]
    seg_meta = metadata[f"robotrace.segment.{segment_id}"]
    proxy = next(
        d for d in store.read_record(catalog.DERIVATIVES, segment_id) or [] if d["kind"] == "proxy"
    )
    assert seg_meta["proxy_key"] == proxy["key"] and seg_meta["trajectory"] == "ok"
    video = out.parent / seg_meta["proxy_file"]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == proxy["sha256"]

    # One clip only (what a delivery may carry): its records and its window of trajectory.
    only = tmp_path / "only.mcap"
    assert cli(["export", "mcap", msess, "--out", str(only), "--clip", approved_id]) == 0
    only_messages, _, _ = _read_back(only)
    chosen = by_id[approved_id]
    rel = [(t - host[0]) / 1e9 for t in host]
    inside = [t for t, r in zip(host, rel, strict=True) if chosen["start_s"] <= r < chosen["end_s"]]
    assert [t for t, _ in only_messages[TOPICS["pose"]]] == inside
    assert [d["clip_id"] for _, d in only_messages[TOPICS["review"]]] == [approved_id]
    assert len(only_messages[TOPICS["clips"]]) == 1
    assert cli(["export", "mcap", msess, "--out", str(only), "--clip", "clip_nope"]) == 2

    # The same segment with its log as MCAP (read through the topic map) exports the same
    # trajectory; a log whose bytes no longer match the envelope exports without it, saying why.
    row = store.read_record(catalog.SEGMENTS, segment_id)[0]
    mcap_log = write_mcap(trajectory, "ros2")
    store.put_bytes(row["sensors_key"], mcap_log, "application/octet-stream")
    envelope = json.loads(row["envelope"]) if isinstance(row["envelope"], str) else row["envelope"]
    envelope["sensors"]["format"] = "mcap"
    store.write_record(
        catalog.SEGMENTS,
        segment_id,
        [{**row, "envelope": envelope, "sensors_sha256": hashlib.sha256(mcap_log).hexdigest()}],
    )
    topic_map = tmp_path / "topics.json"
    topic_map.write_text(json.dumps({"version": 1, "default": default_topic_map()}))
    monkeypatch.setenv("ROBOTRACE_TOPIC_MAP_FILE", str(topic_map))
    again = tmp_path / "again.mcap"
    assert cli(["export", "mcap", msess, "--out", str(again)]) == 0
    assert [(t, m.pose.position.x) for t, m in _read_back(again)[0][TOPICS["pose"]]] == [
        (t, m.pose.position.x) for t, m in poses
    ]

    store.put_bytes(row["sensors_key"], mcap_log[:-100], "application/octet-stream")
    tampered = collect_session(store, msess)
    assert tampered.segments[0].trajectory is None
    assert "SHA-256" in (tampered.segments[0].trajectory_error or "")
    third = tmp_path / "third.mcap"
    assert cli(["export", "mcap", msess, "--out", str(third)]) == 0
    third_messages, third_meta, _ = _read_back(third)
    assert TOPICS["pose"] not in third_messages
    assert len(third_messages[TOPICS["clips"]]) == len(clips)
    assert "SHA-256" in third_meta[f"robotrace.segment.{segment_id}"]["trajectory_error"]
    assert any("no trajectory" in m.message for _, m in third_messages[TOPICS["log"]])


def test_unknown_or_malformed_session_is_refused(bucket, tmp_path: Path, capsys) -> None:
    store = ObjectStoreResource(bucket=bucket)
    with pytest.raises(TelemetryError, match="does not exist"):
        collect_session(store, "msess_01KT9WNH809PJX8W9XC34AE1HS")
    with pytest.raises(TelemetryError):
        collect_session(store, "../../etc/passwd")
    out = tmp_path / "x.mcap"
    assert cli(["export", "mcap", "msess_01KT9WNH809PJX8W9XC34AE1HS", "--out", str(out)]) == 2
    assert not out.exists() and "refused" in capsys.readouterr().err
