"""Room tokens verified with livekit-api's own TokenVerifier: grants, room, identity, TTL,
hidden and publish flags per role."""

from datetime import UTC, datetime, timedelta

import pytest
from livekit import api

from robotrace_assets.teleop.config import LiveKitConfig, TeleopConfigError
from robotrace_assets.teleop.tokens import Role, TokenError, mint_token
from robotrace_assets_tests.teleop.livekit_peer import KEY, SECRET, grants

CONFIG = LiveKitConfig(url="wss://lk.example.test", api_key=KEY, api_secret=SECRET)
ROOM = "sess_01KT9WNH80AAAAAAAAAAAAAAAA"


def claims(role: Role, subject: str = "op_01KT9WNH80AAAAAAAAAAAAAAAB"):
    token = mint_token(CONFIG, ROOM, role, subject)
    verified = api.TokenVerifier(KEY, SECRET).verify(token.jwt)
    return token, verified, grants(token.jwt)[1]


def test_operator_publishes_camera_microphone_and_data() -> None:
    token, verified, video = claims(Role.OPERATOR)
    assert verified.identity == token.identity == "operator:op_01KT9WNH80AAAAAAAAAAAAAAAB"
    assert video.room == ROOM and video.room_join
    assert video.can_publish and video.can_publish_data and video.can_subscribe
    assert sorted(video.can_publish_sources or []) == ["camera", "microphone"]
    assert not video.hidden
    assert not (video.room_admin or video.room_create or video.room_record or video.room_list)
    assert verified.attributes == {"robotrace.role": "operator"}


def test_coach_publishes_audio_only() -> None:
    _, _, video = claims(Role.COACH, "coach-7")
    assert video.can_publish_sources == ["microphone"]
    assert not video.can_publish_data and not video.hidden and video.room == ROOM


def test_observer_subscribes_only_and_is_hidden() -> None:
    _, verified, video = claims(Role.OBSERVER, "reviewer.alice")
    assert verified.identity == "observer:reviewer.alice"
    assert video.can_subscribe and video.hidden
    assert video.can_publish is False and video.can_publish_data is False
    assert not video.can_publish_sources
    assert not (video.room_admin or video.room_record)


def test_ttl_is_short_and_enforced() -> None:
    token, _, _ = claims(Role.OBSERVER, "r1")
    lifetime = token.expires_at - datetime.now(UTC)
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)
    with pytest.raises(TokenError):
        mint_token(CONFIG, ROOM, Role.OPERATOR, "op1", ttl=timedelta(hours=2))
    expired = mint_token(CONFIG, ROOM, Role.OPERATOR, "op1", ttl=timedelta(seconds=1))
    lenient = api.TokenVerifier(KEY, SECRET, leeway=timedelta(0))
    import jwt

    raw = jwt.decode(expired.jwt, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 1
    assert lenient.verify(expired.jwt).identity == "operator:op1"


def test_token_of_another_secret_or_room_does_not_verify() -> None:
    token, _, _ = claims(Role.OPERATOR)
    with pytest.raises(Exception, match="Signature"):
        api.TokenVerifier(KEY, "another-secret-" + "y" * 32).verify(token.jwt)


@pytest.mark.parametrize("subject", ["", "a/b", "x" * 65, "op:1", "../"])
def test_hostile_participant_ids_are_refused(subject: str) -> None:
    with pytest.raises(TokenError):
        mint_token(CONFIG, ROOM, Role.OBSERVER, subject)


def test_dev_secret_is_refused_off_loopback() -> None:
    with pytest.raises(TeleopConfigError):
        LiveKitConfig.from_env({"ROBOTRACE_LIVEKIT_URL": "wss://lk.example.test"})
    assert LiveKitConfig.from_env({}).is_dev
    with pytest.raises(TeleopConfigError):
        LiveKitConfig.from_env({"ROBOTRACE_LIVEKIT_API_KEY": "k"})
    with pytest.raises(TeleopConfigError, match="32"):
        LiveKitConfig(url="wss://lk.example.test", api_key="k", api_secret="short")
    assert SECRET not in repr(CONFIG)
