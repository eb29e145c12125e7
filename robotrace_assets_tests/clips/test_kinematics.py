"""Clip kinematics: the Savitzky-Golay operator behind jerk, speed and LDLJ."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from robotrace_assets.capture.trajectories import TrajectorySpec, synthesize_trajectory
from robotrace_assets.clips.kinematics import _savgol, _savgol_operator


def _xyz(table) -> np.ndarray:
    return np.column_stack([table[name].to_numpy() for name in ("ee_x", "ee_y", "ee_z")])


@pytest.mark.parametrize(("window", "polyorder", "deriv"), [(11, 3, 3), (11, 3, 1), (21, 5, 3)])
def test_savgol_operator_matches_scipy_interp_mode(window: int, polyorder: int, deriv: int) -> None:
    xyz = _xyz(synthesize_trajectory(TrajectorySpec(seconds=2.0, seed=4)))
    expected = savgol_filter(xyz, window, polyorder, deriv=deriv, delta=0.01, axis=0)
    got = _savgol(xyz, _savgol_operator(window, polyorder, deriv, 0.01))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9 * np.abs(expected).max())
