"""LeRobot v3.0 export, end to end with the bundled ffmpeg (no mocks).

Two 3 s 320x240 HEVC sources and their 100 Hz trajectory logs (with device-clock skew and
offset) are cut into four clips, exported once per module, and read back; tamper tests work
on copies of that export.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.delivery.lerobot.export import export_lerobot
from robotrace_assets.delivery.lerobot.model import (
    EpisodeSource,
    LeRobotExport,
    LeRobotExportError,
)
from robotrace_assets.delivery.lerobot.validate import validate_lerobot
from robotrace_assets.media.ffmpeg import ffmpeg_exe
from robotrace_assets.media.probe import probe_packet_times, probe_video_stream

FPS = 30
WIDTH, HEIGHT = 320, 240
VIDEO_KEY = "observation.images.main"
# Per-source device clock: (skew ppm, offset s). Large enough to be unmistakable.
CLOCKS = {"a": (400.0, 0.25), "b": (-250.0, -1.5)}
# (clip, task, source, start_s, end_s): windows inside 3 s sources, one ending mid-frame.
WINDOWS = [
    ("clip-a0", "pick the cup", "a", 0.0, 1.5),
    ("clip-a1", "place the cup", "a", 1.5, 2.95),
    ("clip-b0", "pick the cup", "b", 0.5, 2.0),
    ("clip-b1", "place the cup", "b", 2.0, 2.9),
]
LENGTHS = [45, 44, 45, 27]  # frame instants start + k/30 inside [start, end)
EPISODES_PER_FILE = 3  # four episodes -> file-000 holds three, file-001 holds one


@dataclasses.dataclass(frozen=True)
class Fixture:
    sources: dict[str, Path]
    trajectories: dict[str, pa.Table]
    episodes: list[EpisodeSource]
    export: LeRobotExport

    @property
    def root(self) -> Path:
        return self.export.root


def _episodes(sources: dict[str, Path], trajectories: dict[str, pa.Table]) -> list[EpisodeSource]:
    return [
        EpisodeSource(
            clip_id=clip,
            task=task,
            video_path=sources[src],
            start_s=start,
            end_s=end,
            trajectory=trajectories[src],
            metadata={
                "segment_id": f"seg-{src}",
                "consent_receipt_id": f"rcpt-{src}",
                "license_scope_id": "lic-1",
                "safety_rules_version": "2025.1",
            },
        )
        for clip, task, src, start, end in WINDOWS
    ]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    base = tmp_path_factory.mktemp("lerobot")
    sources, trajectories = {}, {}
    for seed, name in enumerate(("a", "b"), start=1):
        sources[name] = base / f"{name}.mp4"
        encode_synthetic_video(
            sources[name], VideoSpec(seconds=3.0, fps=FPS, width=WIDTH, height=HEIGHT, seed=seed)
        )
        skew, offset = CLOCKS[name]
        trajectories[name] = synthesize_trajectory(
            TrajectorySpec(
                seconds=3.0, hz=100.0, seed=seed, clock_skew_ppm=skew, clock_offset_s=offset
            )
        )
    episodes = _episodes(sources, trajectories)
    out = base / "out" / "dataset"
    export = export_lerobot(episodes, out, fps=FPS, episodes_per_file=EPISODES_PER_FILE)
    return Fixture(sources, trajectories, episodes, export)


def _data(root: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet")))


def _episodes_meta(root: Path) -> list[dict]:
    return pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()


def _info(root: Path) -> dict:
    return json.loads((root / "meta/info.json").read_text())


def _copy(fx: Fixture, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fx.root, tmp_path / "copy"))


def _decode_rgb(path: Path) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3).astype(np.float32)


# --- the export -----------------------------------------------------------------------------


def test_export_validates_and_lists_its_files(fx: Fixture) -> None:
    assert validate_lerobot(fx.root) == []
    assert (fx.export.total_episodes, fx.export.total_frames, fx.export.total_tasks) == (
        4,
        sum(LENGTHS),
        2,
    )
    on_disk = sorted(p.relative_to(fx.root).as_posix() for p in fx.root.rglob("*") if p.is_file())
    assert on_disk == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4",
        f"videos/{VIDEO_KEY}/chunk-000/file-001.mp4",
    ]
    assert [f.path for f in fx.export.files] == on_disk
    for entry in fx.export.files:
        data = (fx.root / entry.path).read_bytes()
        assert entry.size_bytes == len(data)
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
    # Staging and work directories are gone; only the dataset sits in the parent.
    assert [p.name for p in fx.root.parent.iterdir()] == ["dataset"]


def test_info_json_totals_and_features(fx: Fixture) -> None:
    info = _info(fx.root)
    assert info["codebase_version"] == "v3.0"
    assert (info["fps"], info["robot_type"], info["chunks_size"]) == (FPS, "robotrace_arm", 1000)
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (
        4,
        sum(LENGTHS),
        2,
    )
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (
        info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    features = info["features"]
    names = ["ee_x", "ee_y", "ee_z", *(f"joint_{j}" for j in range(7))]
    assert features["observation.state"] == {"dtype": "float32", "shape": [10], "names": names}
    assert features["action"]["shape"] == [10]
    assert features["timestamp"]["dtype"] == "float32"
    assert features["device_time_ns"] == {"dtype": "int64", "shape": [1], "names": None}
    video = features[VIDEO_KEY]
    assert video["dtype"] == "video"
    assert video["shape"] == [HEIGHT, WIDTH, 3]
    assert video["info"]["video.codec"] == "h264"
    assert video["info"]["video.pix_fmt"] == "yuv420p"
    assert (video["info"]["video.fps"], video["info"]["video.height"]) == (FPS, HEIGHT)
    assert video["info"]["video.width"] == WIDTH


def test_timestamps_are_exactly_frame_index_over_fps(fx: Fixture) -> None:
    data = _data(fx.root)
    assert data.schema.field("timestamp").type == pa.float32()
    assert data.column("index").to_pylist() == list(range(sum(LENGTHS)))
    episode_index = data.column("episode_index").to_numpy()
    for e, length in enumerate(LENGTHS):
        rows = np.flatnonzero(episode_index == e)
        assert rows.size == length
        frame_index = data.column("frame_index").to_numpy()[rows]
        assert frame_index.tolist() == list(range(length))
        ts = data.column("timestamp").to_numpy()[rows]
        assert np.array_equal(ts, (np.arange(length) / FPS).astype(np.float32))


def test_device_clock_is_kept_beside_host_time_not_used(fx: Fixture) -> None:
    data = _data(fx.root)
    episode_index = data.column("episode_index").to_numpy()
    for e, (_, _, src, start, _) in enumerate(WINDOWS):
        rows = np.flatnonzero(episode_index == e)
        traj = fx.trajectories[src]
        host0 = traj.column("host_time_ns")[0].as_py()
        host = data.column("host_time_ns").to_numpy()[rows]
        device = data.column("device_time_ns").to_numpy()[rows]
        # Host time is the frame instant on the video clock.
        expected_host = host0 + np.rint((start + np.arange(rows.size) / FPS) * 1e9).astype(np.int64)
        assert np.array_equal(host, expected_host)
        # Device time carries the injected offset and skew, to within rounding.
        skew, offset = CLOCKS[src]
        expected_gap = offset * 1e9 + (host - host0) * skew * 1e-6
        assert np.max(np.abs((device - host) - expected_gap)) <= 2
        # ...and is not what the timestamp column was derived from.
        ts = data.column("timestamp").to_numpy()[rows].astype(np.float64)
        assert not np.allclose((device - device[0]) / 1e9, ts, atol=1e-4)


def test_state_interpolates_the_log_and_action_is_next_state(fx: Fixture) -> None:
    data = _data(fx.root)
    episode_index = data.column("episode_index").to_numpy()
    state = np.asarray(data.column("observation.state").to_pylist())
    action = np.asarray(data.column("action").to_pylist())
    for e, (_, _, src, start, _) in enumerate(WINDOWS):
        rows = np.flatnonzero(episode_index == e)
        traj = fx.trajectories[src]
        host = traj.column("host_time_ns").to_numpy()
        t = (host - host[0]) / 1e9
        frame_t = start + np.arange(rows.size) / FPS
        for col, name in enumerate(("ee_x", "ee_z", "joint_3")):
            dim = ["ee_x", "ee_y", "ee_z", *(f"joint_{j}" for j in range(7))].index(name)
            want = np.interp(frame_t, t, traj.column(name).to_numpy())
            assert np.allclose(state[rows, dim], want, atol=1e-5), (e, col, name)
        assert np.array_equal(action[rows[:-1]], state[rows[1:]])
        assert np.array_equal(action[rows[-1]], state[rows[-1]])


def test_video_has_one_frame_per_data_row_per_episode(fx: Fixture) -> None:
    meta = _episodes_meta(fx.root)
    for e, ep in enumerate(meta):
        assert ep["length"] == LENGTHS[e]
        assert ep[f"videos/{VIDEO_KEY}/file_index"] == e // EPISODES_PER_FILE
        path = fx.root / (
            f"videos/{VIDEO_KEY}/chunk-000/file-{ep[f'videos/{VIDEO_KEY}/file_index']:03d}.mp4"
        )
        assert probe_video_stream(path).codec == "h264"
        times = np.asarray(probe_packet_times(path))
        start = ep[f"videos/{VIDEO_KEY}/from_timestamp"]
        end = ep[f"videos/{VIDEO_KEY}/to_timestamp"]
        assert end - start == pytest.approx(LENGTHS[e] / FPS)
        inside = times[(times >= start - 0.5 / FPS) & (times < end - 0.5 / FPS)]
        assert inside.size == LENGTHS[e]
        assert np.allclose(inside, start + np.arange(LENGTHS[e]) / FPS, atol=1e-6)
    # Episodes sit back to back: file-000 holds the first three, file-001 the last.
    starts = [ep[f"videos/{VIDEO_KEY}/from_timestamp"] for ep in meta]
    assert starts == pytest.approx([0.0, 45 / FPS, 89 / FPS, 0.0])


def test_video_frames_are_the_source_frames_of_the_window(fx: Fixture) -> None:
    # Episode clip-b0 is b.mp4 from 0.5 s: its frame k must be source frame 15 + k.
    source = _decode_rgb(fx.sources["b"])
    exported = _decode_rgb(fx.root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4")
    episode = exported[89 : 89 + 45]
    best = [int(np.argmin(((source - f) ** 2).mean(axis=(1, 2, 3)))) for f in episode]
    assert best == list(range(15, 60))


def test_episodes_table_tasks_and_provenance(fx: Fixture) -> None:
    meta = _episodes_meta(fx.root)
    assert [ep["episode_index"] for ep in meta] == [0, 1, 2, 3]
    assert [ep["tasks"] for ep in meta] == [[w[1]] for w in WINDOWS]
    assert [ep["clip_id"] for ep in meta] == [w[0] for w in WINDOWS]
    assert [(ep["dataset_from_index"], ep["dataset_to_index"]) for ep in meta] == [
        (0, 45),
        (45, 89),
        (89, 134),
        (134, 161),
    ]
    assert [(ep["data/chunk_index"], ep["data/file_index"]) for ep in meta] == [
        (0, 0),
        (0, 0),
        (0, 0),
        (0, 1),
    ]
    assert [ep["segment_id"] for ep in meta] == ["seg-a", "seg-a", "seg-b", "seg-b"]
    assert {ep["license_scope_id"] for ep in meta} == {"lic-1"}
    assert meta[2]["consent_receipt_id"] == "rcpt-b"
    assert meta[3]["safety_rules_version"] == "2025.1"

    tasks = pq.read_table(fx.root / "meta/tasks.parquet").to_pandas()
    assert tasks["task_index"].to_dict() == {"pick the cup": 0, "place the cup": 1}
    task_index = _data(fx.root).column("task_index").to_numpy()
    assert np.unique(task_index[:45]).tolist() == [0]
    assert np.unique(task_index[45:89]).tolist() == [1]


def test_stats_cover_every_feature(fx: Fixture) -> None:
    stats = json.loads((fx.root / "meta/stats.json").read_text())
    info = _info(fx.root)
    assert set(stats) == set(info["features"])
    state = np.asarray(_data(fx.root).column("observation.state").to_pylist())
    s = stats["observation.state"]
    assert s["count"] == [sum(LENGTHS)]
    assert np.allclose(s["min"], state.min(axis=0))
    assert np.allclose(s["max"], state.max(axis=0))
    assert np.allclose(s["mean"], state.mean(axis=0), atol=1e-6)
    assert np.allclose(s["std"], state.std(axis=0), atol=1e-6)
    assert stats["timestamp"]["min"] == [0.0]
    image = stats[VIDEO_KEY]
    assert np.asarray(image["mean"]).shape == (3, 1, 1)
    assert 0.0 <= np.min(image["min"]) <= np.max(image["max"]) <= 1.0
    # Per-episode stats are stored beside each episode, as LeRobot does.
    meta = _episodes_meta(fx.root)
    assert meta[3]["stats/observation.state/count"] == [27]


# --- tampering ------------------------------------------------------------------------------


def _rewrite_data(root: Path, edit: Callable[[pa.Table], pa.Table]) -> None:
    path = root / "data/chunk-000/file-000.parquet"
    pq.write_table(edit(pq.read_table(path)), path)


def _delete_row(table: pa.Table) -> pa.Table:
    keep = np.ones(table.num_rows, dtype=bool)
    keep[10] = False
    return table.filter(pa.array(keep))


def _shift_timestamp(table: pa.Table) -> pa.Table:
    ts = table.column("timestamp").to_numpy().copy()
    ts[50] += np.float32(0.001)  # episode 1, frame 5
    i = table.schema.get_field_index("timestamp")
    return table.set_column(i, "timestamp", pa.array(ts, type=pa.float32()))


def test_deleted_data_row_is_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    _rewrite_data(root, _delete_row)
    problems = validate_lerobot(root)
    assert any("total_frames is 161, the files hold 160" in p for p in problems), problems
    assert any(p.startswith("global index is not contiguous") for p in problems), problems
    assert any("episode 0: 44 data rows, episodes table says 45" in p for p in problems)
    assert any("episode 0: timestamp step at frame 10" in p for p in problems), problems
    # Later episodes are intact.
    assert not any(p.startswith("episode 2") for p in problems), problems


def test_timestamp_off_by_one_millisecond_is_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    _rewrite_data(root, _shift_timestamp)
    problems = validate_lerobot(root)
    assert problems == [
        "episode 1: timestamp step at frame 5 is 0.034333 s, not 1/30 (tolerance 0.0001 s)"
    ]


def test_missing_video_is_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    (root / f"videos/{VIDEO_KEY}/chunk-000/file-001.mp4").unlink()
    problems = validate_lerobot(root)
    assert problems == [
        f"episode 3: video file videos/{VIDEO_KEY}/chunk-000/file-001.mp4 is missing"
    ]


def test_video_with_fewer_frames_is_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    path = root / f"videos/{VIDEO_KEY}/chunk-000/file-001.mp4"
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "20", "-c", "copy", trimmed],
        check=True,
    )
    shutil.move(trimmed, path)
    problems = validate_lerobot(root)
    assert any("episode 3: " in p and "has 20 frames in" in p for p in problems), problems


def test_missing_metadata_and_unknown_task_are_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    (root / "meta/stats.json").unlink()
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pandas().iloc[:1]
    tasks.to_parquet(root / "meta/tasks.parquet")
    problems = validate_lerobot(root)
    assert "missing stats.json" in problems
    assert "info.json total_tasks is 2, the files hold 1" in problems
    assert "data references task_index [1] absent from meta/tasks.parquet" in problems
    assert "episode 1: task 'place the cup' is not in meta/tasks.parquet" in problems


def test_malformed_episodes_table_is_reported_not_raised(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["length", f"videos/{VIDEO_KEY}/from_timestamp"]), path)
    assert validate_lerobot(root) == [
        "episodes table lacks column 'length'",
        f"episodes table lacks column 'videos/{VIDEO_KEY}/from_timestamp'",
    ]


def test_missing_info_json_is_reported(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    (root / "meta/info.json").unlink()
    assert validate_lerobot(root) == ["missing info.json"]


# --- failures leave nothing behind ----------------------------------------------------------


def _assert_nothing_left(parent: Path) -> None:
    assert not parent.exists() or list(parent.iterdir()) == []


def test_window_outside_video_raises_and_leaves_nothing(fx: Fixture, tmp_path: Path) -> None:
    episodes = [*fx.episodes[:2], dataclasses.replace(fx.episodes[2], start_s=2.0, end_s=3.5)]
    parent = tmp_path / "out"
    with pytest.raises(LeRobotExportError, match=r"clip-b0: window \[2.0, 3.5\) s is outside"):
        export_lerobot(episodes, parent / "dataset", fps=FPS)
    _assert_nothing_left(parent)


def test_empty_trajectory_window_raises(fx: Fixture, tmp_path: Path) -> None:
    # Only the first second of the log: nothing inside [1.5, 2.95).
    short = fx.trajectories["a"].slice(0, 100)
    episodes = [fx.episodes[0], dataclasses.replace(fx.episodes[1], trajectory=short)]
    parent = tmp_path / "out"
    with pytest.raises(LeRobotExportError, match="clip-a1: empty trajectory window"):
        export_lerobot(episodes, parent / "dataset", fps=FPS)
    _assert_nothing_left(parent)


def test_trajectory_not_covering_the_window_raises(fx: Fixture, tmp_path: Path) -> None:
    # Samples up to 2.0 s: the window [1.5, 2.95) starts inside but ends uncovered.
    short = fx.trajectories["a"].slice(0, 201)
    episodes = [dataclasses.replace(fx.episodes[1], trajectory=short)]
    with pytest.raises(LeRobotExportError, match=r"clip-a1: trajectory .* does not cover"):
        export_lerobot(episodes, tmp_path / "out" / "dataset", fps=FPS)
    _assert_nothing_left(tmp_path / "out")


def test_unreadable_video_raises_and_leaves_nothing(fx: Fixture, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not an mp4" * 100)
    episodes = [dataclasses.replace(fx.episodes[0], video_path=broken)]
    parent = tmp_path / "out"
    with pytest.raises(LeRobotExportError, match="cannot read source video"):
        export_lerobot(episodes, parent / "dataset", fps=FPS)
    _assert_nothing_left(parent)


def test_existing_dataset_is_kept_unless_overwrite(fx: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "keep.txt").write_text("previous delivery")
    with pytest.raises(LeRobotExportError, match="already exists"):
        export_lerobot(fx.episodes[:1], out, fps=FPS)
    assert (out / "keep.txt").read_text() == "previous delivery"

    export = export_lerobot(fx.episodes[:1], out, fps=FPS, overwrite=True)
    assert not (out / "keep.txt").exists()
    assert export.total_frames == 45
    assert validate_lerobot(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_bad_arguments_raise(fx: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    with pytest.raises(LeRobotExportError, match="no episodes"):
        export_lerobot([], out)
    with pytest.raises(LeRobotExportError, match="only codec 'h264'"):
        export_lerobot(fx.episodes, out, codec="av1")
    with pytest.raises(LeRobotExportError, match="listed twice"):
        export_lerobot([fx.episodes[0], fx.episodes[0]], out)
    clash = dataclasses.replace(fx.episodes[0], metadata={"length": 3})
    with pytest.raises(LeRobotExportError, match="clash with LeRobot columns"):
        export_lerobot([clash], out)
    assert not out.exists()
