"""Payouts end to end on real SeaweedFS and real Dagster runs, tiny media: payable -> approved ->
paid in a signed batch; a proof that fails its recheck after approval is withheld and alerted;
not_payable reasons; never in two batches; the media session's rollup totals."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, build_sensor_context, materialize

from robotrace_assets.cli import main as cli
from robotrace_assets.clips.assets import CLIPS
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.payouts import ledger
from robotrace_assets.payouts.assets import segment_payout
from robotrace_assets.payouts.batch import read_batch
from robotrace_assets.payouts.batchfiles import verify_batch
from robotrace_assets.payouts.ratecard import EXAMPLE
from robotrace_assets.payouts.sensors import payout_withhold_sensor
from robotrace_assets.payouts.settings import PayoutsResource
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.resources import LOCAL_DEV_KEY
from robotrace_assets.review.assets import CLIP_REVIEW
from robotrace_assets.review.sensors import review_decision_sensor
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.sessions.assets import media_session
from robotrace_assets_tests.helpers import (
    failure_messages,
    resources_for,
    run_assets,
    run_checks,
    simulate,
    store_for,
)

FULL = [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY, CLIPS, CLIP_REVIEW]
TINY = {"seconds": 1.0, "width": 64, "height": 48, "fps": 10, "codec": "h264"}


def _resources(bucket: str, card: Path | str = EXAMPLE) -> dict:
    return {**resources_for(bucket), "payouts": PayoutsResource(rate_card_file=str(card))}


def _payout(instance, bucket: str, segment_id: str, card: Path | str = EXAMPLE):
    instance.add_dynamic_partitions("segment", [segment_id])
    return materialize(
        [segment_payout],
        partition_key=segment_id,
        instance=instance,
        resources=_resources(bucket, card),
        raise_on_error=False,
    )


def _state(bucket: str, segment_id: str):
    return ledger.current_state(store_for(bucket), segment_id)


def _metadata(result, key: AssetKey) -> dict:
    (event,) = result.asset_materializations_for_node("__".join(key.path))
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _cli(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()  # drop what earlier runs logged
    code = cli(["payouts", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _decide_all(instance, bucket: str, segment_id: str, action: str) -> None:
    """A reviewer decides every clip of the segment, through the CLI and the decision sensor."""
    for row in store_for(bucket).read_record("clip_reviews", segment_id) or []:
        argv = ["review", action, row["clip_id"], "--reviewer", "rita"]
        assert cli([*argv, "--rationale", f"{action}d after watching the proxy"]) == 0
    review_decision_sensor(build_sensor_context(instance=instance, resources=resources_for(bucket)))
    assert run_assets(instance, bucket, [CLIP_REVIEW], segment_id, with_checks=False).success


def test_payable_approved_paid_and_withheld_after_a_failed_recheck(
    s3, bucket, instance, data_dir, tmp_path, capsys
) -> None:
    (session,) = simulate(s3, bucket, segments=2, **TINY)
    good, later_bad = (s.segment_id for s in session.segments)
    for segment_id in (good, later_bad):
        result = run_assets(instance, bucket, FULL, segment_id)
        assert result.success, failure_messages(result)
        _decide_all(instance, bucket, segment_id, "approve")
        assert _payout(instance, bucket, segment_id).success
        state = _state(bucket, segment_id)
        assert state.state == "payable" and state.amount > 0 and state.currency == "USD"
        assert _payout(instance, bucket, segment_id).success  # unchanged: no second event
        assert len(ledger.read_events(store_for(bucket), segment_id)) == 1

    code, out = _cli(capsys, "approve", good, later_bad, "--by", "fin-ann", "--reason", "June run")
    assert code == 0, out
    assert _state(bucket, good).state == "approved" and _state(bucket, good).actor == "fin-ann"
    code, out = _cli(capsys, "approve", good, "--by", "fin-ann", "--reason", "again")
    assert code == 1 and "is approved, not payable" in out

    # After approval the raw bytes of one segment are replaced: its proof recheck fails.
    raw = session.segments[1].raw_key
    s3.put_object(Bucket=bucket, Key=raw, Body=b"not the proven video")
    assert not run_checks(instance, bucket, later_bad).success
    tick = payout_withhold_sensor(
        build_sensor_context(instance=instance, resources=resources_for(bucket))
    )
    assert tick is None  # it acted
    withheld = _state(bucket, later_bad)
    assert withheld.state == "withheld" and "failed" in withheld.reason
    alerts = [json.loads(line) for line in (data_dir / "alerts.jsonl").read_text().splitlines()]
    kinds = {(a["kind"], a["details"].get("segment_id")) for a in alerts}
    assert ("payout_withheld", later_bad) in kinds

    out_dir = tmp_path / "batch"
    code, out = _cli(
        capsys, "export", "--by", "fin-bob", "--reason", "weekly payout", "--out", str(out_dir)
    )
    assert code == 0, out  # the withheld one is no longer approved: not a candidate
    assert later_bad not in out
    batch_id = next(w for w in out.split() if w.startswith("pay_")).rstrip(":")
    paid = _state(bucket, good)
    assert paid.state == "paid" and paid.batch_id == batch_id

    header, parquet, csv = read_batch(store_for(bucket), batch_id)
    assert verify_batch(header, parquet, csv, hmac_key=LOCAL_DEV_KEY) == []
    assert verify_batch(header, parquet + b"x", csv, hmac_key=LOCAL_DEV_KEY)  # tampered
    assert verify_batch({**header, "reason": "more"}, parquet, csv, hmac_key=LOCAL_DEV_KEY)
    rows = pq.read_table(out_dir / "payouts.parquet").to_pylist()
    assert [r["segment_id"] for r in rows] == [good]
    assert rows[0]["amount"] == paid.amount and rows[0]["approved_by"] == "fin-ann"
    csv_rows = pacsv.read_csv(out_dir / "payouts.csv").to_pylist()
    assert Decimal(str(csv_rows[0]["amount"])) == paid.amount
    assert json.loads(header["currency_totals"]) == {"USD": str(paid.amount)}

    # Never twice, never unproven: explicit export of both is refused with reasons.
    code, out = _cli(capsys, "export", good, later_bad, "--by", "fin-bob", "--reason", "retry")
    assert code == 1 and "no payout batch written" in out
    assert f"{good}  not paid: paid" in out and f"{later_bad}  not paid: withheld" in out
    assert _state(bucket, good).batch_id == batch_id

    instance.add_dynamic_partitions("media_session", [session.media_session_id])
    rolled = materialize(
        [media_session],
        partition_key=session.media_session_id,
        instance=instance,
        resources=resources_for(bucket),
    )
    meta = _metadata(rolled, AssetKey(["sessions", "media_session"]))
    totals = meta["payout_totals"]
    assert totals["paid"] == {"segments": 1, "amount": {"USD": str(paid.amount)}}
    assert totals["withheld"]["segments"] == 1
    assert meta["review_outcomes"]["approved"] >= 2 and meta["review_outcomes"]["needs_review"] == 0
    assert meta["buyer_readiness"]["segments_deliverable"] == 1


def test_not_payable_reasons_and_a_bad_rate_card(
    s3, bucket, instance, data_dir, tmp_path, capsys, monkeypatch
) -> None:
    unconsented, corrupt = simulate(
        s3, bucket, "missing_consent@0.0", "corrupt_after_upload@1.0", sessions=2, **TINY
    )
    rejected = simulate(s3, bucket, seed=7, **TINY)[0]
    no_consent = unconsented.segments[0].segment_id
    all_rejected = rejected.segments[0].segment_id
    for segment_id in (no_consent, all_rejected):
        assert run_assets(instance, bucket, FULL, segment_id).success
    _decide_all(instance, bucket, all_rejected, "reject")
    bad_proof = corrupt.segments[0].segment_id
    assert not run_assets(instance, bucket, FULL, bad_proof).success  # stops at the proof

    for segment_id, reason in (
        (no_consent, "no consent receipt"),
        (all_rejected, "every clip rejected"),
        (bad_proof, "failed proof"),
    ):
        result = _payout(instance, bucket, segment_id)
        assert result.success, failure_messages(result)
        state = _state(bucket, segment_id)
        assert state.state == "not_payable" and reason in state.reason, state
        code, out = _cli(capsys, "approve", segment_id, "--by", "fin", "--reason", "try")
        assert code == 1 and "not payable" in out

    code, out = _cli(capsys, "export", bad_proof, "--by", "fin", "--reason", "try")
    assert code == 1 and f"{bad_proof}  not paid: not_payable" in out

    card = tmp_path / "card.yaml"
    card.write_text("version: x\nrates: [{rate_per_approved_minute: 1.5, currency: USD}]\n")
    result = _payout(instance, bucket, no_consent, card)
    assert not result.success and "rate card" in failure_messages(result)
    monkeypatch.setenv("ROBOTRACE_PAYOUT_RATE_CARD", str(card))
    code, out = _cli(capsys, "status", no_consent)
    assert code == 2 and "refused: rate card" in out and "string" in out
    code, out = _cli(capsys, "status", "seg_../../etc")
    assert code == 2 or "error" in out


@pytest.mark.parametrize("bad", ["", "two\nlines"])
def test_export_refuses_unsigned_who_or_why(s3, bucket, bad: str, capsys) -> None:
    code, out = _cli(capsys, "export", "--by", bad or " ", "--reason", "x")
    assert code == 2 and "one non-empty line" in out
