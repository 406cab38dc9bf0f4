"""Keyframe splines: a path shifted in time (the lag searches' T0(t + tau))."""

from __future__ import annotations

import numpy as np


def test_a_path_shifted_by_one_key_interval_lands_on_the_next_key_and_continues_along_the_end_chords():
    """Keys every h: the spline passes through its keys, so p(t_i + h) = P_{i+1}; past the last key the path goes
    on along the last chord (P_M + (P_M - P_{M-1})), before the first along the first; offset 0 changes nothing."""
    from physinteract.mpm.spline import shifted

    rng = np.random.default_rng(0)
    h = 0.05
    times = np.arange(6) * h
    values = rng.normal(size=(6, 3))
    np.testing.assert_allclose(shifted(times, values, 0.0), values, atol=1e-12)
    later = shifted(times, values, h)
    np.testing.assert_allclose(later[:-1], values[1:], atol=1e-12)
    np.testing.assert_allclose(later[-1], 2 * values[-1] - values[-2], atol=1e-12)
    earlier = shifted(times, values, -h)
    np.testing.assert_allclose(earlier[1:], values[:-1], atol=1e-12)
    np.testing.assert_allclose(earlier[0], 2 * values[0] - values[1], atol=1e-12)
