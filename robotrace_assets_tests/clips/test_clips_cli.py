"""`robotrace clips list` finds a segment's and a session's clips in the real catalog."""

import json

from robotrace_assets import catalog
from robotrace_assets.cli import main
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import failure_messages, run_assets, simulate, store_for

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]


def test_lists_clips_by_segment_session_and_status(s3, bucket, instance, capsys) -> None:
    session = simulate(s3, bucket, segments=2)[0]
    for segment in session.segments:
        result = run_assets(instance, bucket, FULL, segment.segment_id)
        assert result.success, failure_messages(result)
    store = store_for(bucket)
    reviewed = {
        s.segment_id: store.read_record(catalog.CLIP_REVIEWS, s.segment_id) or []
        for s in session.segments
    }
    first = session.segments[0].segment_id

    assert main(["clips", "list", "--segment", first, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {c["clip_id"]: c["status"] for c in listed} == {
        r["clip_id"]: r["final_status"] for r in reviewed[first]
    }

    assert main(["clips", "list", "--session", session.media_session_id]) == 0
    text = capsys.readouterr().out
    every = [r["clip_id"] for rows in reviewed.values() for r in rows]
    assert every and all(clip_id in text for clip_id in every)

    status = listed[0]["status"]
    assert main(["clips", "list", "--segment", first, "--status", status, "--json"]) == 0
    only = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert only and {c["status"] for c in only} == {status}


def test_unknown_session_is_a_clear_error(s3, bucket, capsys) -> None:
    assert main(["clips", "list", "--session", "msess_01KT9WNH80R84P57VFQVC2R1YZ"]) == 2
    assert "does not exist" in capsys.readouterr().err
