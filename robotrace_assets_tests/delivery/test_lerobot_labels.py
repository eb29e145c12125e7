"""LeRobot export fidelity: per-frame task from the label track, image/video quantile stats
(checked against numpy.quantile on the same sampled frames), and the validator on them.
Tiny media (2 s, 64x48, 10 fps) through the real ffmpeg."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.delivery.lerobot.export import export_lerobot
from robotrace_assets.delivery.lerobot.model import EpisodeSource, LeRobotExport
from robotrace_assets.delivery.lerobot.stats import QUANTILES
from robotrace_assets.delivery.lerobot.validate import validate_lerobot
from robotrace_assets.derivatives.labels import LabelInputs, LabelThresholds, build_label_track
from robotrace_assets.media.ffmpeg import ffmpeg_exe

FPS, WIDTH, HEIGHT, SECONDS = 10, 64, 48, 2.0
VIDEO_KEY = "observation.images.main"
STEPS = [
    {"label": "reach", "start_s": 0.0, "end_s": 0.6},
    {"label": "grasp", "start_s": 0.6, "end_s": 1.2},
    {"label": "lift", "start_s": 1.3, "end_s": 2.0},  # 1.2..1.3: no step, the clip task
]
ORDER = ("min", "q01", "q10", "q50", "q90", "q99", "max")


@dataclasses.dataclass(frozen=True)
class Fixture:
    video: Path
    export: LeRobotExport


def _labels(trajectory: pa.Table) -> pa.Table:
    inputs = LabelInputs(
        frames=round(SECONDS * FPS),
        fps=FPS,
        timestamp_gaps=[],
        task_steps=STEPS,
        task_brief="tidy",
        blur_enforced=True,
        clip_tags=[],
        trajectory=trajectory,
    )
    return build_label_track(inputs, LabelThresholds(0.01, 10.0)).table


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    base = tmp_path_factory.mktemp("lerobot-labels")
    video = base / "a.mp4"
    encode_synthetic_video(
        video, VideoSpec(seconds=SECONDS, fps=FPS, width=WIDTH, height=HEIGHT, seed=4)
    )
    trajectory = synthesize_trajectory(TrajectorySpec(seconds=SECONDS, hz=100.0, seed=4))
    labels = _labels(trajectory)
    episodes = [
        EpisodeSource("clip-0", "clip task", video, 0.0, 1.0, trajectory, labels=labels),
        EpisodeSource("clip-1", "clip task", video, 1.0, 2.0, trajectory, labels=labels),
    ]
    export = export_lerobot(episodes, base / "dataset", fps=FPS, episodes_per_file=1)
    return Fixture(video, export)


def _data(root: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet")))


def test_per_frame_task_comes_from_the_label_track(fx: Fixture) -> None:
    root = fx.export.root
    tasks = pq.read_table(root / "meta/tasks.parquet").to_pandas()["task_index"].to_dict()
    assert tasks == {"reach": 0, "grasp": 1, "clip task": 2, "lift": 3}
    texts = {i: t for t, i in tasks.items()}
    per_frame = [texts[i] for i in _data(root).column("task_index").to_pylist()]
    assert per_frame == ["reach"] * 6 + ["grasp"] * 6 + ["clip task"] + ["lift"] * 7
    meta = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [ep["tasks"] for ep in meta] == [["reach", "grasp"], ["grasp", "clip task", "lift"]]
    assert json.loads((root / "meta/info.json").read_text())["total_tasks"] == 4
    assert validate_lerobot(root) == []


def _decode(path: Path) -> np.ndarray:
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)


def _sampled_pixels(root: Path, chunk_file: str) -> np.ndarray:
    """The frames LeRobot's rule samples from a 10-frame episode (all of them: at most 100)."""
    frames = _decode(root / f"videos/{VIDEO_KEY}/{chunk_file}.mp4")
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, min(100, len(frames)))))
    return frames[picks.astype(int)].reshape(-1, 3).astype(np.float64) / 255.0


def test_image_stats_carry_exact_quantiles_per_episode_and_overall(fx: Fixture) -> None:
    root = fx.export.root
    pixels = [_sampled_pixels(root, f"chunk-000/file-00{i}") for i in (0, 1)]
    meta = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    stats = json.loads((root / "meta/stats.json").read_text())
    cases = [(meta[0], pixels[0], "stats/"), (meta[1], pixels[1], "stats/")]
    for episode, sample, prefix in cases:
        for name, q in QUANTILES.items():
            stored = np.asarray(episode[f"{prefix}{VIDEO_KEY}/{name}"]).reshape(3)
            assert np.allclose(stored, np.quantile(sample, q, axis=0), atol=1e-12, rtol=0)
    pooled = np.concatenate(pixels)
    for name, q in QUANTILES.items():
        stored = np.asarray(stats[VIDEO_KEY][name])
        assert stored.shape == (3, 1, 1)
        assert np.allclose(stored.reshape(3), np.quantile(pooled, q, axis=0), atol=1e-12, rtol=0)
    # Every feature, numeric or image: min <= q01 <= ... <= q99 <= max.
    for feature, values in stats.items():
        ordered = [np.asarray(values[k], dtype=np.float64) for k in ORDER]
        for low, high in itertools.pairwise(ordered):
            assert np.all(low <= high + 1e-12), feature


def test_validator_reports_missing_or_disordered_quantiles(fx: Fixture, tmp_path: Path) -> None:
    root = Path(shutil.copytree(fx.export.root, tmp_path / "copy"))
    path = root / "meta/stats.json"
    stats = json.loads(path.read_text())
    stats[VIDEO_KEY]["q01"], stats[VIDEO_KEY]["q99"] = (
        stats[VIDEO_KEY]["q99"],
        stats[VIDEO_KEY]["q01"],
    )
    del stats["observation.state"]["q50"]
    path.write_text(json.dumps(stats))
    problems = validate_lerobot(root, decode=False)
    assert any(f"{VIDEO_KEY}: quantiles are not ordered" in p for p in problems)
    assert any("observation.state lacks ['q50']" in p for p in problems)
