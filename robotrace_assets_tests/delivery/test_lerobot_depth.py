"""Depth in the LeRobot export (opt-in): per-frame millimetre maps from the clip's depth stream,
dropped depth frames as zero maps flagged invalid, stats, the validator, and reading the depth
object exactly as its proof read it. Real ffmpeg, SeaweedFS and Dagster; tiny media."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance

from robotrace_assets import catalog
from robotrace_assets.capture.depth import depth_size
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.delivery.buyers import BuyerConfigError, load_buyers
from robotrace_assets.delivery.lerobot.export import export_lerobot
from robotrace_assets.delivery.lerobot.layout import DEPTH_KEY, DEPTH_VALID_KEY
from robotrace_assets.delivery.lerobot.model import (
    DepthSource,
    EpisodeSource,
    LeRobotExport,
    LeRobotExportError,
)
from robotrace_assets.delivery.lerobot.stats import QUANTILES
from robotrace_assets.delivery.lerobot.validate import validate_lerobot
from robotrace_assets.delivery.methods import proven_depth_source
from robotrace_assets.depth import read_depth_frames, write_depth_mkv
from robotrace_assets.objectstore.client import S3Client, get_pinned
from robotrace_assets.proof.assets import PROVIDER_PROOF
from robotrace_assets.records.proofs import ProofRecord
from robotrace_assets.segments.assets import SEGMENT, SEGMENT_PARTS
from robotrace_assets_tests.helpers import run_assets, simulate, store_for

FPS, SECONDS = 10, 2.0
DEPTH_H, DEPTH_W = 12, 16
DROPPED = (5, 6, 15)  # stored frames the sensor left out: video frames 5, 6 and 15


@dataclasses.dataclass(frozen=True)
class Fixture:
    episodes: list[EpisodeSource]
    frames: np.ndarray  # what the sensor measured at each video frame (before the drops)
    with_depth: LeRobotExport
    without_depth: LeRobotExport


def _ramp(count: int, height: int, width: int) -> np.ndarray:
    """Frame k reads 500 + 10 k mm with a no-return corner and a gradient: frames tell apart."""
    frames = np.full((count, height, width), 500, dtype=np.uint16)
    frames += (np.arange(count, dtype=np.uint16) * 10)[:, None, None]
    frames += np.arange(width, dtype=np.uint16)[None, None, :]
    frames[:, :2, :2] = 0
    return frames


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    base = tmp_path_factory.mktemp("lerobot-depth")
    video = base / "a.mp4"
    encode_synthetic_video(video, VideoSpec(seconds=SECONDS, fps=FPS, width=64, height=48, seed=3))
    trajectory = synthesize_trajectory(TrajectorySpec(seconds=SECONDS, hz=100.0, seed=3))
    frames = _ramp(round(SECONDS * FPS), DEPTH_H, DEPTH_W)
    depth = write_depth_mkv(frames, float(FPS), base / "a.depth.mkv", dropped=DROPPED)
    episodes = [
        EpisodeSource(
            "clip-0", "pick", video, 0.0, 1.0, trajectory, depth=DepthSource.local(depth)
        ),
        EpisodeSource(
            "clip-1", "place", video, 1.0, 2.0, trajectory, depth=DepthSource.local(depth)
        ),
    ]
    with_depth = export_lerobot(
        episodes, base / "depth", fps=FPS, episodes_per_file=1, include_depth=True
    )
    without_depth = export_lerobot(episodes, base / "plain", fps=FPS)
    return Fixture(episodes, frames, with_depth, without_depth)


def _data(root: Path) -> pa.Table:
    return pa.concat_tables(pq.read_table(p) for p in sorted((root / "data").glob("*/*.parquet")))


def _maps(column: pa.ChunkedArray, height: int, width: int) -> np.ndarray:
    values = column.combine_chunks().flatten().flatten()
    return values.to_numpy(zero_copy_only=False).reshape(-1, height, width)


def _json(root: Path, name: str) -> dict:
    return json.loads((root / "meta" / name).read_text())


def _episodes_meta(root: Path) -> list[dict]:
    return pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()


# --- the export -----------------------------------------------------------------------------


def test_maps_are_the_measured_frames_and_dropped_ones_are_zero_and_invalid(fx: Fixture) -> None:
    root = fx.with_depth.root
    assert fx.with_depth.depth_shape == (DEPTH_H, DEPTH_W)
    data = _data(root)
    maps = _maps(data.column(DEPTH_KEY), DEPTH_H, DEPTH_W)
    valid = np.asarray(data.column(DEPTH_VALID_KEY).to_pylist())
    assert maps.dtype == np.uint16 and maps.shape == (20, DEPTH_H, DEPTH_W)
    dropped = np.isin(np.arange(20), DROPPED)
    assert np.array_equal(valid, ~dropped)
    # Lossless: every valid map is the measured frame of its instant, bit for bit.
    assert np.array_equal(maps[~dropped], fx.frames[~dropped])
    assert not maps[dropped].any()  # never a stale neighbour
    assert validate_lerobot(root) == []


def test_info_json_declares_the_depth_features(fx: Fixture) -> None:
    features = _json(fx.with_depth.root, "info.json")["features"]
    assert features[DEPTH_KEY] == {
        "dtype": "uint16",
        "shape": [DEPTH_H, DEPTH_W],
        "names": ["height", "width"],
    }
    assert features[DEPTH_VALID_KEY] == {"dtype": "bool", "shape": [1], "names": None}


def test_data_layout_is_what_datasets_array2d_reads(fx: Fixture) -> None:
    path = fx.with_depth.root / "data/chunk-000/file-000.parquet"
    column_type = pq.read_schema(path).field(DEPTH_KEY).type
    row_type = pa.list_(pa.uint16(), DEPTH_W)
    assert column_type == pa.list_(row_type, DEPTH_H)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1  # one episode: one row group
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        # Not in this venv: the nested fixed-size lists are exactly the maps, row by row.
        first = pq.read_table(path).column(DEPTH_KEY).to_pylist()[0]
        assert np.array_equal(np.asarray(first, dtype=np.uint16), fx.frames[0])
        return
    features = datasets.Features({DEPTH_KEY: datasets.Array2D((DEPTH_H, DEPTH_W), "uint16")})
    loaded = datasets.Dataset.from_parquet(str(path), columns=[DEPTH_KEY], features=features)
    expected = fx.frames[:10].copy()
    expected[[k for k in DROPPED if k < 10]] = 0
    assert np.array_equal(np.asarray(loaded[DEPTH_KEY]), expected)


def test_depth_stats_per_pixel_per_episode_and_overall(fx: Fixture) -> None:
    root = fx.with_depth.root
    maps = _maps(_data(root).column(DEPTH_KEY), DEPTH_H, DEPTH_W).astype(np.float64)
    meta = _episodes_meta(root)
    parts = [maps[:10], maps[10:]]
    for episode, part in zip(meta, parts, strict=True):
        prefix = f"stats/{DEPTH_KEY}/"
        assert episode[prefix + "count"] == [10]
        assert np.array_equal(episode[prefix + "min"], part.min(axis=0))
        assert np.allclose(episode[prefix + "mean"], part.mean(axis=0), rtol=0, atol=1e-9)
        for name, q in QUANTILES.items():
            assert np.allclose(episode[prefix + name], np.quantile(part, q, axis=0), atol=1e-9)
    stats = _json(root, "stats.json")[DEPTH_KEY]
    assert stats["count"] == [20]
    assert np.array_equal(stats["max"], maps.max(axis=0))
    assert np.allclose(stats["mean"], maps.mean(axis=0), rtol=0, atol=1e-9)
    assert np.allclose(stats["std"], maps.std(axis=0), rtol=0, atol=1e-9)
    # Quantiles: LeRobot's aggregate_stats envelope of the episodes' exact ones.
    per_episode = {n: [np.quantile(p, q, axis=0) for p in parts] for n, q in QUANTILES.items()}
    for name, q in QUANTILES.items():
        bound = np.min if q <= 0.5 else np.max
        assert np.allclose(stats[name], bound(per_episode[name], axis=0), atol=1e-9)
    valid = _json(root, "stats.json")[DEPTH_VALID_KEY]
    assert valid["count"] == [20] and valid["mean"] == [pytest.approx(17 / 20)]


def test_large_maps_get_per_column_stats(fx: Fixture, tmp_path: Path) -> None:
    # 176x112 = 19,712 pixels: over the 160x120 per-pixel budget.
    frames = _ramp(10, 112, 176)
    depth = write_depth_mkv(frames, float(FPS), tmp_path / "big.mkv")
    episode = dataclasses.replace(fx.episodes[0], depth=DepthSource.local(depth))
    export = export_lerobot([episode], tmp_path / "ds", fps=FPS, include_depth=True)
    stats = _json(export.root, "stats.json")[DEPTH_KEY]
    columns = frames.reshape(-1, 176).astype(np.float64)
    assert np.asarray(stats["mean"]).shape == (176,)
    assert np.allclose(stats["q50"], np.quantile(columns, 0.5, axis=0), atol=1e-9)
    assert np.allclose(stats["std"], columns.std(axis=0), atol=1e-9)
    assert validate_lerobot(export.root, decode=False) == []


def test_an_export_without_the_option_has_no_depth(fx: Fixture) -> None:
    root = fx.without_depth.root
    assert fx.without_depth.depth_shape is None
    assert not {DEPTH_KEY, DEPTH_VALID_KEY} & set(_json(root, "info.json")["features"])
    assert not {DEPTH_KEY, DEPTH_VALID_KEY} & set(_json(root, "stats.json"))
    assert not {DEPTH_KEY, DEPTH_VALID_KEY} & set(_data(root).column_names)
    assert not any(DEPTH_KEY in name for name in _episodes_meta(root)[0])


def test_a_clip_without_depth_is_refused_and_nothing_is_left(fx: Fixture, tmp_path: Path) -> None:
    episodes = [fx.episodes[0], dataclasses.replace(fx.episodes[1], depth=None)]
    with pytest.raises(LeRobotExportError, match="clip clip-1: its segment has no depth stream"):
        export_lerobot(episodes, tmp_path / "out" / "ds", fps=FPS, include_depth=True)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_depth_maps_of_another_size_are_refused(fx: Fixture, tmp_path: Path) -> None:
    other = write_depth_mkv(_ramp(20, 8, 10), float(FPS), tmp_path / "small.mkv")
    episodes = [fx.episodes[0], dataclasses.replace(fx.episodes[1], depth=DepthSource.local(other))]
    with pytest.raises(LeRobotExportError, match="clip clip-1: depth maps are 10x8, the first"):
        export_lerobot(episodes, tmp_path / "ds", fps=FPS, include_depth=True)


# --- the validator --------------------------------------------------------------------------


def _copy(fx: Fixture, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fx.with_depth.root, tmp_path / "copy"))


def _edit_data(root: Path, name: str, edit: Callable[[pa.Table], pa.Table]) -> None:
    path = root / "data/chunk-000" / name
    pq.write_table(edit(pq.read_table(path)), path)


def test_validator_reports_a_map_behind_an_invalid_flag(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)

    def drop_flag(table: pa.Table) -> pa.Table:
        flags = table.column(DEPTH_VALID_KEY).to_pylist()
        flags[2] = False  # frame 2 has a measured map
        at = table.schema.get_field_index(DEPTH_VALID_KEY)
        return table.set_column(at, DEPTH_VALID_KEY, pa.array(flags))

    _edit_data(root, "file-000.parquet", drop_flag)
    problems = validate_lerobot(root, decode=False)
    assert problems == [
        f"data/chunk-000/file-000.parquet: rows [2] have {DEPTH_VALID_KEY} False but a non-zero map"
    ]


def test_validator_reports_missing_maps_and_wrong_shapes(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    _edit_data(root, "file-001.parquet", lambda t: t.drop_columns([DEPTH_KEY]))
    info = _json(root, "info.json")
    info["features"][DEPTH_KEY]["shape"] = [DEPTH_W, DEPTH_H]
    (root / "meta/info.json").write_text(json.dumps(info))
    problems = validate_lerobot(root, decode=False)
    assert (
        f"data/chunk-000/file-000.parquet: {DEPTH_KEY} is fixed_size_list<element: "
        f"fixed_size_list<element: uint16>[{DEPTH_W}]>[{DEPTH_H}], its shape is not "
        f"[{DEPTH_W}, {DEPTH_H}]" in problems
    )
    assert (
        f"data/chunk-000/file-001.parquet has no {DEPTH_KEY} column: frames without a depth map"
        in problems
    )
    assert any(p.startswith(f"stats.json {DEPTH_KEY} min has shape (12, 16)") for p in problems)


def test_validator_accepts_the_variable_list_layout_datasets_writes(
    fx: Fixture, tmp_path: Path
) -> None:
    root = _copy(fx, tmp_path)
    nested = pa.list_(pa.list_(pa.uint16()))

    def as_lists(table: pa.Table) -> pa.Table:
        at = table.schema.get_field_index(DEPTH_KEY)
        return table.set_column(at, DEPTH_KEY, table.column(DEPTH_KEY).cast(nested))

    _edit_data(root, "file-000.parquet", as_lists)
    _edit_data(root, "file-001.parquet", as_lists)
    assert validate_lerobot(root, decode=False) == []

    def short_row(table: pa.Table) -> pa.Table:
        rows = table.column(DEPTH_KEY).to_pylist()
        rows[0] = rows[0][:-1]  # a map one row short
        at = table.schema.get_field_index(DEPTH_KEY)
        return table.set_column(at, DEPTH_KEY, pa.array(rows, type=nested))

    _edit_data(root, "file-000.parquet", short_row)
    assert validate_lerobot(root, decode=False) == [
        f"data/chunk-000/file-000.parquet: {DEPTH_KEY}: a map is not {DEPTH_W}x{DEPTH_H}"
    ]


def test_validator_reports_an_undeclared_depth_column(fx: Fixture, tmp_path: Path) -> None:
    root = _copy(fx, tmp_path)
    info = _json(root, "info.json")
    del info["features"][DEPTH_KEY], info["features"][DEPTH_VALID_KEY]
    (root / "meta/info.json").write_text(json.dumps(info))
    problems = validate_lerobot(root, decode=False)
    assert (
        f"data/chunk-000/file-000.parquet has a {DEPTH_KEY} column info.json does not declare"
        in problems
    )


# --- the buyer option -----------------------------------------------------------------------


def _buyers_file(tmp_path: Path, **entry: object) -> Path:
    doc = {"buyer_id": "depthco", "uses": ["robotics_training"], "format": "lerobot", **entry}
    path = tmp_path / "buyers.json"
    path.write_text(json.dumps({"buyers": [doc]}))
    return path


def test_buyers_opt_in_to_depth_for_lerobot_only(tmp_path: Path) -> None:
    assert load_buyers(_buyers_file(tmp_path, include_depth=True))["depthco"].include_depth
    assert not load_buyers(_buyers_file(tmp_path))["depthco"].include_depth
    with pytest.raises(BuyerConfigError, match="include_depth needs format lerobot"):
        load_buyers(_buyers_file(tmp_path, include_depth=True, format="raw"))
    with pytest.raises(BuyerConfigError, match="include_depth must be true or false"):
        load_buyers(_buyers_file(tmp_path, include_depth="yes"))


# --- the proven depth object, through the real pipeline --------------------------------------

SMALL = {"seconds": 2.0, "fps": 15, "width": 96, "height": 64, "codec": "h264"}


def test_depth_is_read_from_the_proven_object_only(
    s3: S3Client, bucket: str, instance: DagsterInstance, tmp_path: Path
) -> None:
    (session,) = simulate(s3, bucket, "dropped_depth_frames", depth=True, **SMALL)
    assert session.envelope["device"]["has_lidar"]
    segment = session.segments[0]
    assert run_assets(
        instance, bucket, [SEGMENT, SEGMENT_PARTS, PROVIDER_PROOF], segment.segment_id
    ).success
    (row,) = store_for(bucket).read_record(catalog.PROOFS, segment.segment_id) or []
    proof = ProofRecord(row)
    assert proof.status == "verified"
    source = proven_depth_source(s3, bucket, row)
    assert source is not None and source.label == segment.envelope["objects"][0]["object_key"]
    assert "X-Amz" not in repr(source)  # the signed link is never kept or shown

    # The clip's sources, read pinned to what the proof read (as the delivery reads them).
    video = tmp_path / "raw.mp4"
    video.write_bytes(get_pinned(s3, bucket, segment.raw_key, proof.etag or ""))
    sensors = proof.proven_object("sensors") or {}
    log = pq.read_table(
        pa.BufferReader(get_pinned(s3, bucket, segment.sensors_key, sensors["etag"]))
    )
    episodes = [
        EpisodeSource("clip-0", "pick", video, 0.0, 0.8, log, depth=source),
        EpisodeSource("clip-1", "place", video, 0.8, 2.0, log, depth=source),
    ]
    export = export_lerobot(episodes, tmp_path / "ds", fps=15, include_depth=True)
    assert validate_lerobot(export.root) == []

    # Independently: the proven bytes decoded, the sensor's drops (video frames 15 and 16) empty.
    proven = tmp_path / "proven.mkv"
    proven.write_bytes(
        get_pinned(s3, bucket, source.label, (proof.proven_object("depth") or {})["etag"])
    )
    width, height = depth_size(96, 64)
    stored = read_depth_frames(str(proven), width, height)
    assert stored.shape[0] == 28
    expected = np.zeros((30, height, width), dtype=np.uint16)
    expected[:15], expected[17:] = stored[:15], stored[15:]
    data = _data(export.root)
    assert np.array_equal(_maps(data.column(DEPTH_KEY), height, width), expected)
    assert data.column(DEPTH_VALID_KEY).to_pylist() == [k not in (15, 16) for k in range(30)]

    # A segment that declared no depth: nothing to read, and the export refuses its clip.
    objects = [o for o in json.loads(row["objects"]) if o["role"] != "depth"]
    none = proven_depth_source(s3, bucket, {**row, "objects": json.dumps(objects)})
    assert none is None
    lidarless = [dataclasses.replace(episodes[0], depth=none), episodes[1]]
    with pytest.raises(LeRobotExportError, match="clip clip-0: its segment has no depth stream"):
        export_lerobot(lidarless, tmp_path / "none", fps=15, include_depth=True)

    # Depth replaced after its proof: the pinned read answers 412 and the export fails.
    s3.put_object(Bucket=bucket, Key=source.label, Body=proven.read_bytes() + b"\0")
    with pytest.raises(
        LeRobotExportError, match=f"clip clip-0: depth stream {source.label}"
    ) as err:
        export_lerobot(episodes, tmp_path / "again", fps=15, include_depth=True)
    assert "412 Precondition Failed" in str(err.value) and "X-Amz" not in str(err.value)
    assert not (tmp_path / "again").exists()
