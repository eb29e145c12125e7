"""The capture simulator's API mode: the same synthetic media, uploaded through the ingest
service's large-media endpoints with an API key instead of bucket credentials.

Per media session: open it; per segment: declare size, SHA-256 and every part's SHA-256, PUT each
part to its URL (the part's checksum header must match what was signed), PUT the sensor log, and
ask the service to complete. The service checks the parts and hands the segment to the graph.
Injected defects are not supported here (the service refuses the upload defects by design).
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from robotrace_assets.capture.simulator import (
    CaptureSimulator,
    SimulatedSegment,
    SimulatedSession,
    SimulationConfig,
    SimulationError,
)


@dataclass(frozen=True)
class UploadedSegment:
    media_session_id: str
    segment_id: str
    size_bytes: int
    sha256: str


class ApiClient:
    """The large-media endpoints, as a capture client calls them."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
        )
        self.uploads = httpx.Client(timeout=300.0)  # no auth header to the bucket

    def close(self) -> None:
        self.http.close()
        self.uploads.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            message = response.json().get("error") if response.content else ""
            raise SimulationError(f"{method} {path}: HTTP {response.status_code}: {message}")
        return response.json()

    def put(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        response = self.uploads.put(url, content=data, headers=headers)
        if response.status_code != 200:
            raise SimulationError(f"upload refused by the store: HTTP {response.status_code}")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _session_body(session: SimulatedSession) -> dict[str, Any]:
    envelope = session.envelope
    return {
        "task_name": envelope["task"]["name"],
        "task_steps": envelope["task"]["steps"],
        "consent": envelope["consent"],
        "license": envelope["license"],
        "provenance": {"device_model": envelope["device"]["model"], "simulated": True},
    }


def _segment_body(segment: SimulatedSegment) -> dict[str, Any]:
    envelope = segment.envelope
    raw = envelope["raw"]
    sensors = envelope["sensors"]
    return {
        "segment_index": envelope["segment_index"],
        "size_bytes": segment.digest.size,
        "sha256": segment.digest.sha256_hex,
        "content_type": raw["content_type"],
        "part_size_bytes": envelope["upload"]["part_size_bytes"],
        "part_sha256": [_b64(d) for d in segment.digest.part_sha256s],
        "started_at": envelope["started_at"],
        "ended_at": envelope["ended_at"],
        "boundary_reason": envelope["boundary_reason"],
        **{k: raw[k] for k in ("codec", "fps", "width", "height", "frames")},
        "task_steps": envelope["task_steps"],
        "sensors": {k: sensors[k] for k in ("size_bytes", "sha256", "format", "hz")},
    }


class ApiCaptureSimulator(CaptureSimulator):
    def __init__(self, api: ApiClient, config: SimulationConfig) -> None:
        if config.defects:
            raise SimulationError("defects cannot be injected through the API")
        super().__init__(None, "", config)  # type: ignore[arg-type]  # no bucket credentials
        self.api = api

    def upload_all(self) -> list[UploadedSegment]:
        temp = Path(tempfile.mkdtemp(prefix="robotrace-capture-api-", dir=self.workdir))
        done: list[UploadedSegment] = []
        try:
            for session in self._plan():
                opened = self.api.call("POST", "/api/media/sessions", _session_body(session))
                media_session_id = opened["media_session_id"]
                for index, planned_id in enumerate(session.envelope["segment_ids"]):
                    segment = self._make_segment(session, index, planned_id, temp)
                    done.append(self._upload(media_session_id, segment, temp))
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return done

    def _upload(
        self, media_session_id: str, segment: SimulatedSegment, temp: Path
    ) -> UploadedSegment:
        opened = self.api.call(
            "POST", f"/api/media/sessions/{media_session_id}/segments", _segment_body(segment)
        )
        with open(segment.video.path, "rb") as video:
            for part in opened["parts"]:
                video.seek(part["offset"])
                data = video.read(part["size_bytes"])
                self.api.put(part["url"], data, {"x-amz-checksum-sha256": part["sha256"]})
        sensors = opened["sensors_upload"]
        data = (temp / f"{segment.segment_id}.sensors.parquet").read_bytes()
        self.api.put(sensors["url"], data, {"Content-Type": sensors["content_type"]})
        done = self.api.call("POST", f"/api/media/segments/{opened['segment_id']}/complete")
        return UploadedSegment(
            media_session_id, done["segment_id"], segment.digest.size, segment.digest.sha256_hex
        )
