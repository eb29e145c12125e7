"""The transcript as a review derivative: made from the pass's audio in the review_derivatives
step, published and proven like the proxy, through Dagster, the real store and PocketSphinx."""

import json

from robotrace_assets.derivatives.assets import PROXY, TRANSCRIPT
from robotrace_assets.derivatives.transcript import word_error_rate
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import (
    failure_messages,
    latest_metadata,
    published_bytes,
    run_assets,
    simulate,
)

PIPELINE = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY]
WER_BOUND = 0.6  # as in transcript/test_transcribe.py: espeak-ng's voice, the bundled model


def test_narrated_segment_gets_a_proven_transcript(s3, bucket, instance) -> None:
    # Seed 9 and 7.5 s, as in transcript/test_transcribe.py: the whole narration fits.
    session = simulate(
        s3, bucket, seed=9, seconds=7.5, fps=10, width=64, height=48, codec="h264", narration=True
    )[0]
    segment = session.segments[0]
    result = run_assets(instance, bucket, PIPELINE, segment.segment_id)
    assert result.success, failure_messages(result)
    meta = latest_metadata(instance, TRANSCRIPT, segment.segment_id)
    assert meta["no_audio"] is False and meta["engine"] == "pocketsphinx"
    assert meta["source_segment_id"] == segment.segment_id
    document = json.loads(published_bytes(s3, bucket, meta["object_key"], meta["sha256"]))
    vtt = published_bytes(s3, bucket, meta["webvtt_key"], meta["webvtt_sha256"]).decode()
    assert vtt.startswith("WEBVTT") and "-->" in vtt
    assert segment.narration and word_error_rate(segment.narration, document["text"]) < WER_BOUND
    assert all(w["start_s"] <= w["end_s"] for w in document["words"])


def test_silent_segment_gets_the_no_audio_record(s3, bucket, instance) -> None:
    segment = simulate(s3, bucket, seconds=1.0, fps=10, width=64, height=48)[0].segments[0]
    result = run_assets(instance, bucket, PIPELINE, segment.segment_id)
    assert result.success, failure_messages(result)
    meta = latest_metadata(instance, TRANSCRIPT, segment.segment_id)
    assert meta["no_audio"] is True and meta["words"] == 0
    document = json.loads(published_bytes(s3, bucket, meta["object_key"], meta["sha256"]))
    assert document["no_audio"] is True and document["words"] == [] and document["reason"]
