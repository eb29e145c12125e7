"""Export reviewed clips as a LeRobot v3.0 dataset: staged, self-validated, then published.

With ``include_depth`` every frame also carries its depth map (``observation.depth``) and
whether the sensor gave one (``observation.depth_valid``); see ``lerobot.depth``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from robotrace_assets.delivery.lerobot.depth import DepthStreams, depth_array
from robotrace_assets.delivery.lerobot.files import (
    inventory,
    prepare_destination,
    publish,
    staging_dir,
    write_json,
)
from robotrace_assets.delivery.lerobot.layout import (
    CODEBASE_VERSION,
    DATA_FILES_SIZE_IN_MB,
    DATA_PATH,
    DEPTH_KEY,
    EPISODES_PATH,
    INFO_PATH,
    POSITION_COLUMNS,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_FILES_SIZE_IN_MB,
    VIDEO_PATH,
    depth_stats_shape,
)
from robotrace_assets.delivery.lerobot.model import (
    EpisodeSource,
    LeRobotExport,
    LeRobotExportError,
    ResolvedEpisode,
)
from robotrace_assets.delivery.lerobot.stats import (
    PixelStats,
    Stats,
    aggregate_depth_stats,
    aggregate_image_stats,
    depth_stats,
    jsonable,
    numeric_stats,
    video_episode_stats,
)
from robotrace_assets.delivery.lerobot.tables import (
    RESERVED_EPISODE_COLUMNS,
    data_table,
    episode_columns,
    episodes_table,
    features,
    task_frame,
    with_depth_maps,
)
from robotrace_assets.delivery.lerobot.trajectory import (
    check_episode_window,
    sample_trajectory,
    state_layout,
)
from robotrace_assets.delivery.lerobot.validate import validate_lerobot
from robotrace_assets.delivery.lerobot.video import SourceVideo, encode_episodes, probe_source

__all__ = ["export_lerobot"]

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class _Plan:
    """The settings one export applies to every episode and file."""

    fps: int
    video_key: str
    episodes_per_file: int
    chunks_size: int
    width: int
    height: int
    joints: list[str]
    with_force: bool
    # (height, width) of every depth map, and the export's depth reader; None: no depth.
    depth_shape: tuple[int, int] | None = None
    depth: DepthStreams | None = None


def _check_arguments(
    episodes: Sequence[EpisodeSource],
    fps: int,
    video_key: str,
    codec: str,
    episodes_per_file: int,
    chunks_size: int,
) -> None:
    if not episodes:
        raise LeRobotExportError("no episodes to export")
    if isinstance(fps, bool) or not isinstance(fps, int) or fps <= 0:
        raise LeRobotExportError(f"fps must be a positive integer, got {fps!r}")
    if codec != "h264":
        # H.264 decodes everywhere (torchcodec, pyav, browsers); AV1 is where users get stuck.
        raise LeRobotExportError(f"only codec 'h264' is supported, got {codec!r}")
    if not video_key or "/" in video_key:
        raise LeRobotExportError(f"video_key must be non-empty without '/', got {video_key!r}")
    if episodes_per_file < 1 or chunks_size < 1:
        raise LeRobotExportError("episodes_per_file and chunks_size must be >= 1")
    seen: set[str] = set()
    for source in episodes:
        if source.clip_id in seen:
            raise LeRobotExportError(f"clip {source.clip_id} is listed twice")
        seen.add(source.clip_id)
        clash = RESERVED_EPISODE_COLUMNS.intersection(source.metadata)
        clash |= {k for k in source.metadata if k.startswith(("stats/", "videos/", "data/"))}
        if clash:
            raise LeRobotExportError(
                f"clip {source.clip_id}: metadata keys {sorted(clash)} clash with LeRobot columns"
            )


def _probe_sources(episodes: Sequence[EpisodeSource]) -> dict[Path, SourceVideo]:
    """Each distinct source video probed once; the first clip's frame size must be even."""
    sources: dict[Path, SourceVideo] = {}
    for source in episodes:
        path = Path(source.video_path)
        if path not in sources:
            if not path.is_file():
                raise LeRobotExportError(f"clip {source.clip_id}: no video at {path}")
            sources[path] = probe_source(path)
    first = sources[Path(episodes[0].video_path)]
    if first.width % 2 or first.height % 2:
        raise LeRobotExportError(
            f"frame size {first.width}x{first.height} must be even for yuv420p"
        )
    return sources


def _frame_tasks(source: EpisodeSource, length: int, fps: int) -> list[str]:
    """The task of every frame of the episode: the label track's step at ``start_s + k / fps``
    (the last label row at or before that instant), else the episode's own task."""
    if source.labels is None:
        return [source.task] * length
    times = source.labels["timestamp_s"].to_numpy(zero_copy_only=False)
    steps = source.labels["task_step"].to_pylist()
    if times.size == 0:
        raise LeRobotExportError(f"clip {source.clip_id}: the label track is empty")
    instants = source.start_s + np.arange(length) / fps
    # A microsecond of slack: the track's timestamps are rounded to 1e-6 s.
    rows = np.clip(np.searchsorted(times, instants + 1e-6, side="right") - 1, 0, times.size - 1)
    return [steps[r] or source.task for r in rows.tolist()]


def _task_indices(texts: Sequence[str], tasks: list[str]) -> np.ndarray:
    """Indices of ``texts`` in ``tasks``, appending new ones in order of first appearance."""
    for text in dict.fromkeys(texts):
        if text not in tasks:
            tasks.append(text)
    lookup = {text: i for i, text in enumerate(tasks)}
    return np.array([lookup[t] for t in texts], dtype=np.int64)


def _resolve_episodes(
    episodes: Sequence[EpisodeSource], sources: dict[Path, SourceVideo], plan: _Plan
) -> tuple[list[ResolvedEpisode], list[str]]:
    """Episodes sampled on their frame grids and placed in files, and the task list."""
    tasks: list[str] = []
    resolved: list[ResolvedEpisode] = []
    total = 0
    for idx, source in enumerate(episodes):
        video = sources[Path(source.video_path)]
        if (video.width, video.height) != (plan.width, plan.height):
            raise LeRobotExportError(
                f"clip {source.clip_id}: {video.width}x{video.height} differs from the first"
                f" clip's {plan.width}x{plan.height}; one video feature needs one frame size"
            )
        length = check_episode_window(source, video, plan.fps)
        state, force, host_ns, device_ns = sample_trajectory(
            source, length, plan.fps, plan.joints, plan.with_force
        )
        if source.labels is None:
            if source.task not in tasks:
                tasks.append(source.task)
            per_frame = None
            task_index = tasks.index(source.task)
        else:
            per_frame = _task_indices(_frame_tasks(source, length, plan.fps), tasks)
            task_index = int(per_frame[0])
        ep = ResolvedEpisode(source, idx, task_index, length, state, force, host_ns, device_ns)
        if plan.depth is not None:
            ep.depth_index = plan.depth.align(source, length, plan.fps)
        ep.task_indices = per_frame
        ep.episode_tasks = (
            (task_index,) if per_frame is None else tuple(dict.fromkeys(per_frame.tolist()))
        )
        ep.file_number = idx // plan.episodes_per_file
        ep.dataset_from = total
        total += length
        resolved.append(ep)
    return resolved, tasks


def _write_file(
    staging: Path, number: int, group: Sequence[ResolvedEpisode], plan: _Plan
) -> tuple[list[Columns], list[dict[str, Stats]], list[PixelStats]]:
    """One video file and its data file; the group's data columns and per-episode stats."""
    chunk, file = divmod(number, plan.chunks_size)
    offset = 0
    for ep in group:
        ep.video_from_frame = offset
        offset += ep.length
    video_rel = VIDEO_PATH.format(video_key=plan.video_key, chunk_index=chunk, file_index=file)
    video_path = staging / video_rel
    video_path.parent.mkdir(parents=True, exist_ok=True)
    encode_episodes(group, video_path, plan.fps, plan.width, plan.height)
    pixel_stats = video_episode_stats(video_path, group, plan.width, plan.height)

    group_columns = [episode_columns(ep, plan.fps) for ep in group]
    data_path = staging / DATA_PATH.format(chunk_index=chunk, file_index=file)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    depth: list[Stats | None] = [None] * len(group)
    if plan.depth is None:
        pq.write_table(data_table(group_columns), data_path)
    else:
        depth = [*_write_depth_data(data_path, group, group_columns, plan)]
    episode_stats = []
    for columns, pixels, depth_part in zip(group_columns, pixel_stats, depth, strict=True):
        stats = {name: numeric_stats(values) for name, values in columns.items()}
        stats[plan.video_key] = pixels.stats
        if depth_part is not None:
            stats[DEPTH_KEY] = depth_part
        episode_stats.append(stats)
    return group_columns, episode_stats, pixel_stats


def _write_depth_data(
    path: Path, group: Sequence[ResolvedEpisode], group_columns: Sequence[Columns], plan: _Plan
) -> list[Stats]:
    """A data file with depth maps, one row group per episode so that only one episode's maps
    are in memory; the episodes' depth stats."""
    assert plan.depth is not None and plan.depth_shape is not None
    stats_shape = depth_stats_shape(*plan.depth_shape)
    stats: list[Stats] = []
    writer: pq.ParquetWriter | None = None
    try:
        for ep, columns in zip(group, group_columns, strict=True):
            maps = plan.depth.maps(ep, plan.depth_shape)
            table = with_depth_maps(data_table([columns]), depth_array(maps))
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            stats.append(depth_stats(maps, stats_shape))
    finally:
        if writer is not None:
            writer.close()
    return stats


def _write_files(
    staging: Path, resolved: Sequence[ResolvedEpisode], plan: _Plan
) -> tuple[list[Columns], list[dict[str, Stats]], list[PixelStats]]:
    """Every video and data file, in file order."""
    groups: dict[int, list[ResolvedEpisode]] = {}
    for ep in resolved:
        groups.setdefault(ep.file_number, []).append(ep)
    all_columns: list[Columns] = []
    episode_stats: list[dict[str, Stats]] = []
    pixels: list[PixelStats] = []
    for number, group in groups.items():
        columns, stats, group_pixels = _write_file(staging, number, group, plan)
        all_columns.extend(columns)
        episode_stats.extend(stats)
        pixels.extend(group_pixels)
    return all_columns, episode_stats, pixels


def _global_stats(
    all_columns: Sequence[Columns],
    pixels: Sequence[PixelStats],
    episode_stats: Sequence[dict[str, Stats]],
    video_key: str,
) -> dict[str, Stats]:
    stats = {
        name: numeric_stats(np.concatenate([c[name] for c in all_columns], axis=0))
        for name in all_columns[0]
    }
    stats[video_key] = aggregate_image_stats(pixels)
    if DEPTH_KEY in episode_stats[0]:
        stats[DEPTH_KEY] = aggregate_depth_stats([s[DEPTH_KEY] for s in episode_stats])
    return stats


def _info(plan: _Plan, robot_type: str, episodes: int, frames: int, tasks: int) -> dict[str, Any]:
    state_names = [*POSITION_COLUMNS, *plan.joints]
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": tasks,
        "chunks_size": plan.chunks_size,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": plan.fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features(
            state_names,
            plan.with_force,
            plan.video_key,
            plan.fps,
            plan.width,
            plan.height,
            plan.depth_shape,
        ),
    }


def _build(
    staging: Path,
    episodes: Sequence[EpisodeSource],
    sources: dict[Path, SourceVideo],
    plan: _Plan,
    robot_type: str,
) -> tuple[int, int, int]:
    """Write the whole dataset into ``staging``; (episodes, frames, tasks)."""
    resolved, tasks = _resolve_episodes(episodes, sources, plan)
    all_columns, episode_stats, pixels = _write_files(staging, resolved, plan)
    episodes_path = staging / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_path.parent.mkdir(parents=True, exist_ok=True)
    table = episodes_table(
        resolved, tasks, plan.fps, plan.chunks_size, plan.video_key, episode_stats
    )
    pq.write_table(table, episodes_path)
    task_frame(tasks).to_parquet(staging / TASKS_PATH)
    stats = _global_stats(all_columns, pixels, episode_stats, plan.video_key)
    write_json(staging / STATS_PATH, jsonable(stats))
    frames = sum(ep.length for ep in resolved)
    write_json(staging / INFO_PATH, _info(plan, robot_type, len(resolved), frames, len(tasks)))
    return len(resolved), frames, len(tasks)


def export_lerobot(
    episodes: Sequence[EpisodeSource],
    out_dir: Path,
    *,
    fps: int = 30,
    robot_type: str = "robotrace_arm",
    video_key: str = "observation.images.main",
    codec: str = "h264",
    episodes_per_file: int = 50,
    chunks_size: int = 1000,
    overwrite: bool = False,
    include_depth: bool = False,
) -> LeRobotExport:
    """Write ``episodes`` (in order: episode_index = position) as a LeRobot v3.0 dataset.

    Everything is built in a hidden sibling directory, validated with ``validate_lerobot``
    and renamed into ``out_dir`` only on success, so a failure leaves nothing behind.
    ``out_dir`` must not exist (or be empty) unless ``overwrite`` is set. With
    ``include_depth`` every episode needs a ``depth`` source of one map size; a clip without
    one is refused (LeRobotExportError naming it), never exported with made-up zeros.
    """
    _check_arguments(episodes, fps, video_key, codec, episodes_per_file, chunks_size)
    out_dir = Path(out_dir)
    prepare_destination(out_dir, overwrite)
    joints, with_force = state_layout(episodes)
    staging = staging_dir(out_dir)
    published = False
    try:
        sources = _probe_sources(episodes)
        depth = DepthStreams() if include_depth else None
        depth_shape = depth.shape(episodes) if depth is not None else None
        # One video feature, one frame size: the first clip's.
        first = sources[Path(episodes[0].video_path)]
        plan = _Plan(
            fps=fps,
            video_key=video_key,
            episodes_per_file=episodes_per_file,
            chunks_size=chunks_size,
            width=first.width,
            height=first.height,
            joints=joints,
            with_force=with_force,
            depth_shape=depth_shape,
            depth=depth,
        )
        n_episodes, n_frames, n_tasks = _build(staging, episodes, sources, plan, robot_type)
        # The export's own decode already proved every file decodes; skip a second pass.
        problems = validate_lerobot(staging, decode=False)
        if problems:
            raise LeRobotExportError("export failed its own validation:\n" + "\n".join(problems))
        files = inventory(staging)
        publish(staging, out_dir)
        published = True
    finally:
        if not published:
            shutil.rmtree(staging, ignore_errors=True)
    return LeRobotExport(
        root=out_dir,
        files=files,
        total_episodes=n_episodes,
        total_frames=n_frames,
        total_tasks=n_tasks,
        fps=fps,
        video_key=video_key,
        depth_shape=depth_shape,
    )
