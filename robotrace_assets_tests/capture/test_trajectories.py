"""Synthetic trajectory logs: shape, determinism, injected defects and the Parquet writer."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.timing import fit_clock_ms_ppm
from robotrace_assets.sensorlog import write_parquet
from robotrace_assets_tests.helpers import trajectory_jerk_peak as jerk_peak

BASE_COLUMNS = ["frame_index", "host_time_ns", "device_time_ns", "ee_x", "ee_y", "ee_z"]
FORCE = ["force_x", "force_y", "force_z"]


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def test_columns_types_and_length() -> None:
    spec = TrajectorySpec(seconds=4.0, hz=100.0, joints=7)
    table = synthesize_trajectory(spec)

    joints = [f"joint_{j}" for j in range(7)]
    assert table.column_names == BASE_COLUMNS + joints + FORCE
    assert table.num_rows == 400
    for name in ["frame_index", "host_time_ns", "device_time_ns"]:
        assert table.schema.field(name).type == pa.int64()
    for name in table.column_names[3:]:
        assert table.schema.field(name).type == pa.float64()
        assert np.isfinite(_column(table, name)).all()
    assert (_column(table, "frame_index") == np.arange(400)).all()


def test_host_clock_is_exact_sample_grid() -> None:
    spec = TrajectorySpec(hz=100.0, start_time_ns=1_780_000_000_123_456_789)
    host = _column(synthesize_trajectory(spec), "host_time_ns")
    assert host[0] == spec.start_time_ns
    assert (np.diff(host) == 10_000_000).all()
    # Without skew or offset the device clock is the host clock.
    assert (_column(synthesize_trajectory(spec), "device_time_ns") == host).all()


def test_schema_metadata_describes_units_and_rate() -> None:
    table = synthesize_trajectory(TrajectorySpec(hz=120.0, joints=3))
    meta = table.schema.metadata
    units = json.loads(meta[b"robotrace.units"])
    assert json.loads(meta[b"robotrace.hz"]) == 120.0
    assert units["ee_x"] == "m"
    assert units["joint_2"] == "rad"
    assert units["force_z"] == "N"
    assert units["host_time_ns"] == "ns"
    assert set(units) == set(table.column_names)
    assert table.schema.field("ee_z").metadata == {b"unit": b"m"}


def test_rate_below_camera_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="hz"):
        synthesize_trajectory(TrajectorySpec(hz=29.9))
    assert synthesize_trajectory(TrajectorySpec(hz=30.0, seconds=1.0)).num_rows == 30


@pytest.mark.parametrize(
    "changes",
    [{"seconds": 0.0}, {"joints": 0}, {"seed": -1}, {"jerk_spikes": (4.0,)}],
)
def test_invalid_spec_is_rejected(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        synthesize_trajectory(dataclasses.replace(TrajectorySpec(), **changes))


def test_same_seed_is_identical_and_seeds_differ() -> None:
    a = synthesize_trajectory(TrajectorySpec(seed=3))
    b = synthesize_trajectory(TrajectorySpec(seed=3))
    c = synthesize_trajectory(TrajectorySpec(seed=4))
    assert a.equals(b, check_metadata=True)
    assert not np.array_equal(_column(a, "ee_x"), _column(c, "ee_x"))


def test_motion_is_a_plausible_reach() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=5))
    ee = np.column_stack([_column(table, n) for n in ["ee_x", "ee_y", "ee_z"]])
    # Inside a ~1 m workspace, above the table, and actually moving tens of centimetres.
    assert (np.abs(ee) < 1.0).all()
    assert (ee[:, 2] > 0.0).all()
    assert np.ptp(ee, axis=0).max() > 0.1
    speed = np.linalg.norm(np.diff(ee, axis=0), axis=1) * 100.0
    assert speed.max() < 2.0
    # Clean motion has bounded jerk (tens of m/s^3 at most).
    assert 1.0 < jerk_peak(table, 100.0) < 50.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jerk_spike_dominates_clean_jerk(seed: int) -> None:
    clean = synthesize_trajectory(TrajectorySpec(seed=seed))
    spiky = synthesize_trajectory(TrajectorySpec(seed=seed, jerk_spikes=(2.5,)))

    assert jerk_peak(spiky, 100.0) >= 5.0 * jerk_peak(clean, 100.0)
    # The defect is local: away from the spike the logs are identical.
    diff = np.abs(_column(spiky, "ee_x") - _column(clean, "ee_x"))
    t = _column(clean, "frame_index") / 100.0
    assert diff[np.abs(t - 2.5) > 0.05].max() == 0.0
    # "A few millimetres", not a teleport.
    assert 1e-4 < diff.max() < 0.01


def test_injected_clock_skew_and_offset_are_recoverable() -> None:
    spec = TrajectorySpec(seed=2, clock_skew_ppm=200.0, clock_offset_s=0.0375)
    table = synthesize_trajectory(spec)
    offset_ms, skew_ppm = fit_clock_ms_ppm(
        _column_int(table, "host_time_ns"), _column_int(table, "device_time_ns")
    )
    assert skew_ppm == pytest.approx(200.0, abs=1.0)
    assert offset_ms == pytest.approx(37.5, abs=1.0)

    clean = synthesize_trajectory(TrajectorySpec(seed=2))
    offset_ms, skew_ppm = fit_clock_ms_ppm(
        _column_int(clean, "host_time_ns"), _column_int(clean, "device_time_ns")
    )
    assert skew_ppm == pytest.approx(0.0, abs=1e-3)
    assert offset_ms == pytest.approx(0.0, abs=1e-3)


def _column_int(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def test_force_columns_optional_and_independent() -> None:
    with_force = synthesize_trajectory(TrajectorySpec(seed=9))
    without = synthesize_trajectory(TrajectorySpec(seed=9, with_force=False))
    assert not set(FORCE) & set(without.column_names)
    assert "force" not in without.schema.metadata[b"robotrace.units"].decode()
    # Dropping the sensor does not change any other channel.
    assert with_force.drop_columns(FORCE).equals(without)


def test_force_has_brief_contact_events() -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=1))
    magnitude = np.linalg.norm(np.column_stack([_column(table, n) for n in FORCE]), axis=1)
    assert 5.0 <= magnitude.max() <= 40.0
    # Mostly quiet: contact (> 5 N) covers well under half of the log.
    assert 0 < (magnitude > 5.0).mean() < 0.3


def test_write_parquet_is_zstd_deterministic_and_lossless(tmp_path: Path) -> None:
    table = synthesize_trajectory(TrajectorySpec(seed=4, clock_skew_ppm=50.0))
    size_a = write_parquet(table, tmp_path / "a.parquet")
    size_b = write_parquet(table, tmp_path / "nested" / "b.parquet")

    assert size_a == (tmp_path / "a.parquet").stat().st_size
    assert size_a == size_b
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "nested" / "b.parquet").read_bytes()
    meta = pq.ParquetFile(tmp_path / "a.parquet").metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_table(tmp_path / "a.parquet").equals(table, check_metadata=True)
    # Only the finished files remain (temp files are renamed away).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "nested"]
