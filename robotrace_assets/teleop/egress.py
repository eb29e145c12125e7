"""Recording the operator, and only the operator: a LiveKit participant egress to the bucket.

When the operator joins, the service asks LiveKit Egress to record that one participant
(camera and microphone, never the coach or an observer) as an MP4 written straight into the
capture bucket under the session's raw prefix:

    robotics/raw/<tenant>/<media_session>/egress/operator-{time}.mp4

Egress runs on LiveKit's side, so it needs its own credentials for the bucket: use an R2 API
token limited to object writes on the capture bucket (ROBOTRACE_LIVEKIT_EGRESS_S3_*), not the
pipeline's. The request carries that secret to LiveKit, so it is never logged or audited.
Starting egress is off unless ROBOTRACE_LIVEKIT_START_EGRESS=1 (no LiveKit server locally).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from livekit import api
from livekit.protocol import egress as egress_pb

from robotrace_assets.settings import Settings
from robotrace_assets.teleop.config import LiveKitConfig
from robotrace_assets.teleop.planner import egress_prefix

OPERATOR_FILE = "operator-{time}.mp4"  # LiveKit fills {time}: digits, '-' and 'T' only


@dataclass(frozen=True)
class EgressStorage:
    endpoint: str
    bucket: str
    region: str
    access_key: str
    secret: str = field(repr=False)

    @classmethod
    def from_env(
        cls, settings: Settings | None = None, env: Mapping[str, str] | None = None
    ) -> EgressStorage:
        env = os.environ if env is None else env
        settings = settings or Settings.from_env(env)

        def get(name: str) -> str | None:
            value = env.get(f"ROBOTRACE_LIVEKIT_EGRESS_S3_{name}", "").strip()
            return value or None

        return cls(
            endpoint=get("ENDPOINT_URL") or settings.endpoint_url,
            bucket=settings.bucket,
            region=get("REGION") or settings.region,
            access_key=get("ACCESS_KEY_ID") or settings.access_key_id,
            secret=get("SECRET_ACCESS_KEY") or settings.secret_access_key,
        )


def start_egress_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("ROBOTRACE_LIVEKIT_START_EGRESS", "").strip() in ("1", "true", "on")


def operator_egress_request(
    room_name: str,
    operator_identity: str,
    tenant_id: str,
    media_session_id: str,
    storage: EgressStorage,
) -> egress_pb.ParticipantEgressRequest:
    """Record one participant (the operator) into the session's raw prefix, as MP4."""
    output = egress_pb.EncodedFileOutput(
        file_type=egress_pb.EncodedFileType.MP4,
        filepath=egress_prefix(tenant_id, media_session_id) + OPERATOR_FILE,
        disable_manifest=True,
        s3=egress_pb.S3Upload(
            access_key=storage.access_key,
            secret=storage.secret,
            region=storage.region,
            endpoint=storage.endpoint,
            bucket=storage.bucket,
            force_path_style=True,
        ),
    )
    return egress_pb.ParticipantEgressRequest(
        room_name=room_name,
        identity=operator_identity,
        screen_share=False,
        preset=egress_pb.EncodingOptionsPreset.H264_720P_30,
        file_outputs=[output],
    )


async def _start(config: LiveKitConfig, request: egress_pb.ParticipantEgressRequest) -> str:
    url = config.url.replace("wss://", "https://").replace("ws://", "http://")
    async with api.LiveKitAPI(url, config.api_key, config.api_secret) as client:
        info = await client.egress.start_participant_egress(request)
    return info.egress_id


def start_operator_egress(
    config: LiveKitConfig, request: egress_pb.ParticipantEgressRequest
) -> str:
    """Ask LiveKit to start the recording; its egress id. Raises on any LiveKit error."""
    return asyncio.run(_start(config, request))
