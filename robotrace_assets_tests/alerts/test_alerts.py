"""Alerts reach the file, the log and a real webhook server; no secret reaches any of them."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from dagster import build_sensor_context

from robotrace_assets.alerts.notify import Alert
from robotrace_assets.alerts.sensors import proof_check_alert_sensor
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.resources import AlertsResource
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets.settings import Settings
from robotrace_assets_tests.helpers import run_assets, simulate


class _Collector(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers["Content-Length"])
        _Collector.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.received = []
    url = f"http://127.0.0.1:{server.server_port}/hook?token=webhook-secret"
    yield url, _Collector.received
    server.shutdown()


def _alerts(data_dir: Path, webhook_url: str | None) -> AlertsResource:
    return AlertsResource(alerts_file=str(data_dir / "alerts.jsonl"), webhook_url=webhook_url)


def test_send_writes_file_and_posts_webhook(data_dir: Path, webhook, caplog) -> None:
    url, received = webhook
    delivery = _alerts(data_dir, url).send(
        Alert("proof_check_failed", "check failed", {"segment_id": "seg_1"})
    )
    assert delivery.file and delivery.webhook is True and delivery.slack is None
    lines = (data_dir / "alerts.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["details"]["segment_id"] == "seg_1"
    assert received[0]["title"] == "check failed"
    assert "webhook-secret" not in caplog.text


def test_unreachable_webhook_is_reported_without_its_address(data_dir: Path, caplog) -> None:
    alerts = _alerts(data_dir, "http://127.0.0.1:9/hook?token=s3cret")
    delivery = alerts.send(Alert("run_failed", "run failed"))
    assert delivery.webhook is False
    assert delivery.errors and "s3cret" not in " ".join(delivery.errors)
    assert "s3cret" not in caplog.text
    assert (data_dir / "alerts.jsonl").exists()  # the local alert still lands


def test_failed_proof_check_raises_one_alert_per_failure(
    s3, bucket, instance, data_dir: Path, webhook
) -> None:
    session = simulate(s3, bucket, "corrupt_after_upload@0.0", segments=2)[0]
    for segment in session.segments:
        run_assets(
            instance, bucket, [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY], segment.segment_id
        )
    url, received = webhook
    resources = {"alerts": _alerts(data_dir, url)}
    context = build_sensor_context(instance=instance, resources=resources)
    proof_check_alert_sensor(context)
    alerts = [json.loads(line) for line in (data_dir / "alerts.jsonl").read_text().splitlines()]
    assert [(a["details"]["segment_id"], a["details"]["check"]) for a in alerts] == [
        (session.segments[0].segment_id, rules.SHA256)
    ]
    assert alerts[0]["details"]["expected"] == session.segments[0].envelope["raw"]["sha256"]
    assert received and received[0]["kind"] == "proof_check_failed"
    # The cursor moved past those evaluations: the next tick alerts nothing new.
    proof_check_alert_sensor(
        build_sensor_context(instance=instance, cursor=context.cursor, resources=resources)
    )
    assert len((data_dir / "alerts.jsonl").read_text().splitlines()) == 1
    assert Settings.from_env().alerts_file == data_dir / "alerts.jsonl"
