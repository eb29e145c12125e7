"""Large media through the service: the simulator's API mode, resume, and refused completion."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from robotrace_assets import catalog
from robotrace_assets.capture.simulator import SimulationConfig
from robotrace_assets.capture.via_api import ApiCaptureSimulator, ApiClient
from robotrace_assets.derivatives.assets import PROXY
from robotrace_assets.proof import rules
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.api.conftest import Service
from robotrace_assets_tests.helpers import (
    MULTIPART_BITRATE_KBPS,
    failure_messages,
    run_assets,
    store_for,
)

MIB = 1024 * 1024


def _b64sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _declare(data: bytes, index: int = 0, part_size: int = 5 * MIB) -> dict:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    return {
        "segment_index": index,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "part_size_bytes": part_size,
        "part_sha256": [_b64sha(p) for p in parts],
        "started_at": "2026-11-29T10:00:00Z",
        "ended_at": "2026-11-29T10:00:04Z",
    }


@pytest.mark.slow
def test_simulator_api_mode_is_proven_by_the_graph(sqlite_service: Service, instance) -> None:
    tenant = sqlite_service.tenant()
    api = ApiClient(sqlite_service.url, sqlite_service.key(tenant))
    config = SimulationConfig(
        sessions=1, segments=1, seed=7, codec="h264", video_bitrate_kbps=MULTIPART_BITRATE_KBPS
    )
    try:
        uploaded = ApiCaptureSimulator(api, config).upload_all()
        segment = uploaded[0]
        result = run_assets(
            instance,
            sqlite_service.bucket,
            [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF, PROXY],
            segment.segment_id,
        )
        assert result.success, failure_messages(result)
        store = store_for(sqlite_service.bucket)
        record = store.read_record(catalog.PROOFS, segment.segment_id)[0]
        assert record["integrity_status"] == rules.VERIFIED
        assert record["sha256"] == segment.sha256
        view = api.call("GET", f"/api/media/segments/{segment.segment_id}")
        assert view["verification"]["state"] == "verified"
        assert view["verification"]["sha256_declared_by_client"] is True
        raw = api.http.get(f"/api/segments/{segment.segment_id}/artifact/raw")
        assert raw.status_code == 302
        assert hashlib.sha256(httpx.get(raw.headers["location"]).content).hexdigest() == (
            segment.sha256
        )
        _check_derivative_reads(sqlite_service, api, segment.segment_id, store)
    finally:
        api.close()


def test_resume_and_refused_completion(service: Service) -> None:
    tenant = service.tenant()
    client = service.client(service.key(tenant))
    data = bytes(range(256)) * (11 * MIB // 256) + b"tail"  # three parts
    session = client.post("/api/media/sessions", json={"task_name": "resume"}).json()
    opened = client.post(
        f"/api/media/sessions/{session['media_session_id']}/segments", json=_declare(data)
    )
    assert opened.status_code == 201, opened.text
    body = opened.json()
    parts = body["parts"]
    assert [p["part_number"] for p in parts] == [1, 2, 3]
    # A part whose bytes differ from the SHA-256 it was signed for is refused by the store.
    first = parts[0]
    wrong = httpx.put(
        first["url"],
        content=b"x" * first["size_bytes"],
        headers={"x-amz-checksum-sha256": first["sha256"]},
    )
    assert wrong.status_code >= 400
    for part in parts[:2]:
        chunk = data[part["offset"] : part["offset"] + part["size_bytes"]]
        ok = httpx.put(
            part["url"], content=chunk, headers={"x-amz-checksum-sha256": part["sha256"]}
        )
        assert ok.status_code == 200, ok.text
    segment_id = body["segment_id"]
    refused = client.post(f"/api/media/segments/{segment_id}/complete")
    assert refused.status_code == 409
    assert "part 3 is missing" in refused.json()["error"]
    listed = client.get(f"/api/media/segments/{segment_id}/parts").json()
    assert listed["uploaded"] == [1, 2]
    assert [p["part_number"] for p in listed["parts"]] == [3]
    last = listed["parts"][0]
    chunk = data[last["offset"] :]
    ok = httpx.put(last["url"], content=chunk, headers={"x-amz-checksum-sha256": last["sha256"]})
    assert ok.status_code == 200
    done = client.post(f"/api/media/segments/{segment_id}/complete")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    stored = service.s3.get_object(Bucket=service.bucket, Key=body["object_key"])["Body"].read()
    assert stored == data
    again = client.post(f"/api/media/segments/{segment_id}/complete")
    assert again.status_code == 200  # idempotent
    other = service.client(service.key(service.tenant("other")))
    assert other.get(f"/api/media/segments/{segment_id}/parts").status_code == 404
    assert other.post(f"/api/media/segments/{segment_id}/complete").status_code == 404


def test_bad_declarations_are_refused(service: Service) -> None:
    client = service.client(service.key(service.tenant()))
    session = client.post("/api/media/sessions", json={}).json()["media_session_id"]
    path = f"/api/media/sessions/{session}/segments"
    good = _declare(b"a" * 100)
    for change in (
        {"part_sha256": []},
        {"part_sha256": [_b64sha(b"x"), _b64sha(b"y")]},  # 100 bytes make one part
        {"part_sha256": ["not base64 at all, but forty-four chars long!"]},
        {"part_size_bytes": 1024},
        {"ended_at": "2026-11-29T09:00:00Z"},
        {"started_at": "2026-11-29T10:00:00"},  # no timezone
        {"sha256": "ABC"},
        {"size_bytes": 0},
    ):
        response = client.post(path, json={**good, **change})
        assert response.status_code == 400, (change, response.text)
        assert "error" in response.json()
    assert client.post(path, json=good).status_code == 201
    assert client.post(path, json=good).status_code == 409  # same segment_index
    bad_terms = {"consent": {"receipt_id": "nope"}}
    assert client.post("/api/media/sessions", json=bad_terms).status_code == 400


def _check_derivative_reads(service: Service, api: ApiClient, segment_id: str, store) -> None:
    rows = store.read_record(catalog.DERIVATIVES, segment_id)
    for kind, index in (("proxy", 0), ("contact_sheet", 0), ("thumbnail", 1)):
        row = [r for r in rows if r["kind"] == kind][index]
        response = api.http.get(f"/api/segments/{segment_id}/derivatives/{kind}?index={index}")
        assert response.status_code == 302
        body = httpx.get(response.headers["location"]).content
        assert hashlib.sha256(body).hexdigest() == row["sha256"]
    assert (
        api.http.get(f"/api/segments/{segment_id}/derivatives/thumbnail?index=99").status_code
        == 404
    )
    assert api.http.get(f"/api/segments/{segment_id}/derivatives/proxy?index=-1").status_code == 400
    sensors = api.http.get(f"/api/segments/{segment_id}/artifact/sensors")
    assert sensors.status_code == 302
    rival = service.client(service.key(service.tenant("rival")))
    assert rival.get(f"/api/segments/{segment_id}/derivatives/proxy").status_code == 404
    assert rival.get(f"/api/segments/{segment_id}/artifact/raw").status_code == 404
