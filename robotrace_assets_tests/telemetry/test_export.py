"""A scored and reviewed session exported as MCAP, read back with the mcap reader: channels,
Foxglove schemas, and messages that match the catalog and the trajectory log."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
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
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.filing import file_decision, submit
from robotrace_assets.robotlogs.writers import default_topic_map, write_mcap
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.telemetry.channels import TOPICS
from robotrace_assets.telemetry.collect import TelemetryError, collect_session
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate, store_for

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


def _swap_to_mcap(s3, bucket: str, segment) -> None:
    """The segment's robot writes MCAP: upload that instead, and declare its format."""
    parquet = s3.get_object(Bucket=bucket, Key=segment.sensors_key)["Body"].read()
    data = write_mcap(pq.read_table(io.BytesIO(parquet)), "ros2")
    s3.put_object(Bucket=bucket, Key=segment.sensors_key, Body=data)
    doc = dict(segment.envelope)
    doc["sensors"] = {
        **doc["sensors"],
        "format": "mcap",
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    s3.put_object(Bucket=bucket, Key=segment.envelope_key, Body=json.dumps(doc).encode())


def _reviewed_session(s3, bucket: str, instance) -> tuple[Any, dict[str, pa.Table], str]:
    """Two segments through the pipeline, the first (spiky) with our Parquet log, the second
    with an MCAP log read through the topic map; one clip approved by a reviewer. Returns the
    session, each segment's trajectory as the simulator wrote it, and the approved clip id."""
    session = simulate(s3, bucket, "jerk_spike@0.0", segments=2)[0]
    store = store_for(bucket)
    tables = {
        seg.segment_id: pq.read_table(io.BytesIO(store.get_bytes(seg.sensors_key)))
        for seg in session.segments
    }
    _swap_to_mcap(s3, bucket, session.segments[1])
    for seg in session.segments:
        result = run_assets(instance, bucket, FULL, seg.segment_id)
        assert result.success, failure_messages(result)
    first = session.segments[0].segment_id
    clips = store.read_record(catalog.CLIPS, first) or []
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
    assert run_assets(instance, bucket, [CLIP_REVIEW], first).success
    return session, tables, approved["clip_id"]


@pytest.fixture
def topic_map(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "topics.json"
    path.write_text(json.dumps({"version": 1, "default": default_topic_map()}))
    monkeypatch.setenv("ROBOTRACE_TOPIC_MAP_FILE", str(path))
    return path


def test_reviewed_session_exports_as_foxglove_mcap(
    s3, bucket, instance, tmp_path: Path, topic_map: Path
) -> None:
    session, tables, approved_id = _reviewed_session(s3, bucket, instance)
    msess = session.media_session_id
    first, second = (seg.segment_id for seg in session.segments)
    store = store_for(bucket)
    clips = {sid: store.read_record(catalog.CLIPS, sid) or [] for sid in (first, second)}
    reviews = {sid: store.read_record(catalog.CLIP_REVIEWS, sid) or [] for sid in (first, second)}

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

    # Trajectory of both segments (Parquet and MCAP logs alike): one pose, joints and wrench
    # message per sample, logged and stamped on the host/video clock.
    host = {sid: tables[sid]["host_time_ns"].to_pylist() for sid in (first, second)}
    poses = messages[TOPICS["pose"]]
    assert [t for t, _ in poses] == sorted(host[first] + host[second])
    pose_at = {t: m for t, m in poses}
    for sid in (first, second):
        sample = pose_at[host[sid][7]]
        assert sample.pose.position.x == tables[sid]["ee_x"][7].as_py()
        assert sample.timestamp.seconds * 10**9 + sample.timestamp.nanos == host[sid][7]
    joints = dict(messages[TOPICS["joints"]])[host[first][10]]
    assert [j.position for j in joints.joints] == [
        tables[first][f"joint_{k}"][10].as_py() for k in range(len(joints.joints))
    ]
    wrench = dict(messages[TOPICS["wrench"]])[host[second][5]]
    assert wrench["force"]["z"] == tables[second]["force_z"][5].as_py()

    # Clips: boundaries as foxglove.Event, signals, scores and decisions per clip.
    all_clips = {c["clip_id"]: c for sid in (first, second) for c in clips[sid]}
    events = messages[TOPICS["clips"]]
    assert len(events) == len(all_clips) == len(messages[TOPICS["signals"]])
    assert len(messages[TOPICS["review"]]) == len(reviews[first]) + len(reviews[second])
    for log_time, event in events:
        meta = {kv.key: kv.value for kv in event.metadata}
        clip = all_clips[meta["clip_id"]]
        origin = host[clip["segment_id"]][0]
        start = event.start_time.seconds * 10**9 + event.start_time.nanos
        end = event.end_time.seconds * 10**9 + event.end_time.nanos
        assert start == log_time == origin + round(clip["start_s"] * 1e9)
        assert end == origin + round(clip["end_s"] * 1e9)
    for _, signals in messages[TOPICS["signals"]]:
        assert signals["jerk_peak"] == all_clips[signals["clip_id"]]["signal_jerk_peak"]
    rejected = [s for _, s in messages[TOPICS["scores"]] if s["status"] == "rejected"]
    assert rejected and any("jerk" in r for r in rejected[0]["reasons"])
    decisions = {d["clip_id"]: d for _, d in messages[TOPICS["review"]]}
    assert decisions[approved_id]["final_status"] == "approved"
    assert decisions[approved_id]["decided_by"] == "rev_carol"
    lines = [line.message for _, line in messages[TOPICS["log"]]]
    assert any(": approved" in m for m in lines) and any(": rejected" in m for m in lines)

    # Provenance and the proxy videos beside the file.
    assert metadata["robotrace.session"]["operator_id"] == session.envelope["operator_id"]
    for sid, fmt in ((first, "parquet"), (second, "mcap")):
        seg_meta = metadata[f"robotrace.segment.{sid}"]
        derivatives = store.read_record(catalog.DERIVATIVES, sid) or []
        proxy = next(d for d in derivatives if d["kind"] == "proxy")
        assert seg_meta["proxy_key"] == proxy["key"] and seg_meta["trajectory"] == "ok"
        assert seg_meta["sensors_format"] == fmt
        video = out.parent / seg_meta["proxy_file"]
        assert hashlib.sha256(video.read_bytes()).hexdigest() == proxy["sha256"]

    # One clip only (what a delivery may carry): its records and its window of trajectory.
    only = tmp_path / "only.mcap"
    assert cli(["export", "mcap", msess, "--out", str(only), "--clip", approved_id]) == 0
    only_messages, only_meta, _ = _read_back(only)
    chosen = all_clips[approved_id]
    inside = [
        t for t in host[first] if chosen["start_s"] <= (t - host[first][0]) / 1e9 < chosen["end_s"]
    ]
    assert [t for t, _ in only_messages[TOPICS["pose"]]] == inside
    assert [d["clip_id"] for _, d in only_messages[TOPICS["review"]]] == [approved_id]
    assert len(only_messages[TOPICS["clips"]]) == 1
    assert f"robotrace.segment.{second}" not in only_meta
    assert cli(["export", "mcap", msess, "--out", str(only), "--clip", "clip_nope"]) == 2

    # A log whose bytes are no longer the proven ones is exported without its trajectory,
    # saying why; the segment's clips, scores and decisions are still there.
    second_key = session.segments[1].sensors_key
    store.put_bytes(second_key, b"\x89MCAP0\r\n tampered", "application/octet-stream")
    tampered = collect_session(store, msess)
    assert tampered.segments[0].trajectory is not None
    assert tampered.segments[1].trajectory is None
    assert "differs from the proven one" in (tampered.segments[1].trajectory_error or "")
    third = tmp_path / "third.mcap"
    assert cli(["export", "mcap", msess, "--out", str(third)]) == 0
    third_messages, third_meta, _ = _read_back(third)
    assert [t for t, _ in third_messages[TOPICS["pose"]]] == host[first]
    assert len(third_messages[TOPICS["clips"]]) == len(all_clips)
    assert "proven" in third_meta[f"robotrace.segment.{second}"]["trajectory_error"]
    assert any(
        f"segment {second}: no trajectory" in m.message for _, m in third_messages[TOPICS["log"]]
    )


def test_unknown_or_malformed_session_is_refused(bucket, tmp_path: Path, capsys) -> None:
    store = store_for(bucket)
    with pytest.raises(TelemetryError, match="does not exist"):
        collect_session(store, "msess_01KT9WNH809PJX8W9XC34AE1HS")
    with pytest.raises(TelemetryError):
        collect_session(store, "../../etc/passwd")
    out = tmp_path / "x.mcap"
    assert cli(["export", "mcap", "msess_01KT9WNH809PJX8W9XC34AE1HS", "--out", str(out)]) == 2
    assert not out.exists() and "refused" in capsys.readouterr().err
