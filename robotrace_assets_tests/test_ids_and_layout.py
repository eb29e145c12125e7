import random
from datetime import UTC, datetime

import pytest

from robotrace_assets import layout
from robotrace_assets.ids import InvalidId, check_id, is_id, new_id

AT = datetime(2026, 6, 4, 18, 0, tzinfo=UTC)


def test_ids_are_deterministic_for_a_seed_and_time_ordered() -> None:
    a = new_id("seg", AT, random.Random(1))
    assert a == new_id("seg", AT, random.Random(1))
    assert a != new_id("seg", AT, random.Random(2))
    later = new_id("seg", AT.replace(hour=19), random.Random(1))
    assert later > a
    assert is_id("seg", a) and not is_id("msess", a)


@pytest.mark.parametrize(
    "bad", ["seg_../x", "seg_", "seg_01J", "seg_01KT9WNH809PJX8W9XC34AE1H|", 3]
)
def test_malformed_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidId):
        check_id("seg", bad)


def test_inbox_keys_sort_by_time_and_round_trip() -> None:
    early = layout.inbox_key("segment", "seg_X", AT)
    late = layout.inbox_key("session", "msess_Y", AT.replace(minute=1))
    assert early < late
    assert layout.parse_inbox_key(early) == ("segment", "seg_X", AT)
    assert layout.inbox_floor(AT) < early
    assert layout.parse_inbox_key("robotics/inbox/readme.txt") is None


@pytest.mark.parametrize(
    "key",
    [
        "robotics/raw/ten_B/msess/seg.mp4",  # another tenant
        "robotics/raw/ten_A/../ten_B/seg.mp4",  # climbs out
        "robotics/raw/ten_A//seg.mp4",
        "robotics/raw/ten_A/./seg.mp4",
        "robotics/raw/ten_AB/seg.mp4",  # a prefix of the name is not the prefix
        "robotics/raw/ten_A/seg\\..\\x.mp4",
        "",
    ],
)
def test_keys_outside_the_tenant_prefix_are_refused(key: str) -> None:
    with pytest.raises(layout.UnsafeKey):
        layout.check_key_within(key, layout.tenant_raw_prefix("ten_A"))


def test_key_inside_the_tenant_prefix_passes() -> None:
    key = layout.raw_video_key("ten_A", "msess_1", "seg_1")
    assert layout.check_key_within(key, layout.tenant_raw_prefix("ten_A")) == key
