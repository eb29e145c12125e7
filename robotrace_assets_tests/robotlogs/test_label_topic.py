"""The label track on an MCAP topic (/robotrace/labels, JSON): written by robotlogs.writers, and
carried by the session telemetry export after a real pipeline run; read back with mcap."""

from __future__ import annotations

import io
import json

from jsonschema import Draft202012Validator
from mcap.reader import make_reader
from mcap.writer import Writer

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.derivatives.labels import (
    LabelInputs,
    LabelThresholds,
    build_label_track,
    label_runs,
)
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.robotlogs.writers import (
    LABEL_MESSAGE_SCHEMA,
    LABELS_TOPIC,
    register_label_channel,
    write_labels,
)
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.telemetry.collect import collect_session
from robotrace_assets.telemetry.export import write_session_mcap
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate, store_for

ORIGIN_NS = 1_780_000_000_000_000_000


def _track():
    inputs = LabelInputs(
        frames=20,
        fps=10.0,
        timestamp_gaps=[],
        task_steps=[{"label": "reach", "start_s": 0.0, "end_s": 1.0}],
        task_brief="tidy",
        blur_enforced=None,
        clip_tags=[],
        trajectory=synthesize_trajectory(TrajectorySpec(seconds=2.0, seed=5)),
    )
    return build_label_track(inputs, LabelThresholds(0.01, 10.0)).table


def _label_messages(data: bytes) -> list[tuple[int, dict, str]]:
    reader = make_reader(io.BytesIO(data))
    return [
        (message.log_time, json.loads(message.data), schema.encoding)
        for schema, _, message in reader.iter_messages(topics=[LABELS_TOPIC])
    ]


def test_label_runs_become_json_messages_on_their_topic() -> None:
    table = _track()
    stream = io.BytesIO()
    writer = Writer(stream)
    writer.start()
    channel = register_label_channel(writer)
    count = write_labels(writer, channel, table, ORIGIN_NS, "seg_x")
    writer.finish()
    messages = _label_messages(stream.getvalue())
    runs = label_runs(table)
    assert count == len(messages) == len(runs) >= 2
    validator = Draft202012Validator(LABEL_MESSAGE_SCHEMA)
    for (log_time, doc, encoding), run in zip(messages, runs, strict=True):
        assert encoding == "jsonschema" and not list(validator.iter_errors(doc))
        assert log_time == ORIGIN_NS + round(run.start_s * 1e9)
        assert doc["first_frame"] == run.first_frame and doc["segment_id"] == "seg_x"
    assert messages[0][1]["task_step"] == "reach" and messages[-1][1]["task_step"] is None
    assert messages[-1][1]["last_frame"] == 19


def test_session_telemetry_mcap_carries_the_label_track(s3, bucket, instance) -> None:
    session = simulate(s3, bucket, segments=1, seconds=2.0, fps=10, width=64, height=48)[0]
    segment = session.segments[0]
    keys = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY]
    result = run_assets(instance, bucket, keys, segment.segment_id)
    assert result.success, failure_messages(result)
    stream = io.BytesIO()
    summary = write_session_mcap(
        collect_session(store_for(bucket), session.media_session_id), stream
    )
    messages = _label_messages(stream.getvalue())
    assert messages and summary.messages[LABELS_TOPIC] == len(messages)
    assert messages[0][1]["first_frame"] == 0
    assert messages[-1][1]["last_frame"] == segment.video.frames - 1
    assert {m[1]["motion_phase"] for m in messages} >= {"idle", "moving"}
