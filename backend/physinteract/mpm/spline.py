"""C1 cubic Hermite trajectories that are linear in their keyframes.

A trajectory through keyframes (t_k, P_k), k = 0..M-1, is
    p(t) = sum_k a_k(t) P_k
with Catmull-Rom tangents inside and zero tangents at both ends, and held
constant outside [t_0, t_{M-1}]. It is C1 everywhere (it starts and ends at
rest). Because p is linear in the keyframes, the weights a_k(t) give the exact
gradient with respect to them: dL/dP_k = sum_t a_k(t) dL/dp(t).
"""

from __future__ import annotations

import numpy as np


def tangent_matrix(times: np.ndarray) -> np.ndarray:
    """D [M, M] with tangents m = D @ P: Catmull-Rom inside, zero at the ends."""
    times = np.asarray(times, np.float64)
    m = len(times)
    d = np.zeros((m, m))
    for i in range(1, m - 1):
        h = times[i + 1] - times[i - 1]
        d[i, i + 1] = 1.0 / h
        d[i, i - 1] = -1.0 / h
    return d


def hermite_weights(times: np.ndarray, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Weights of p(t) and of dp/dt(t) on the keyframes.

    Args:
        times: [M] strictly increasing keyframe times (s).
        t: [T] query times (s) or a scalar.
    Returns:
        a: [T, M] position weights; b: [T, M] velocity weights (1/s).
    """
    times = np.asarray(times, np.float64)
    tq = np.atleast_1d(np.asarray(t, np.float64))
    m = len(times)
    a = np.zeros((len(tq), m))
    b = np.zeros((len(tq), m))
    if m == 0:
        raise ValueError("a trajectory needs at least one keyframe")
    if m == 1:
        a[:, 0] = 1.0
        return a, b
    d = tangent_matrix(times)
    for row, tt in enumerate(tq):
        if tt <= times[0]:
            a[row, 0] = 1.0
            continue
        if tt >= times[-1]:
            a[row, -1] = 1.0
            continue
        i = int(np.searchsorted(times, tt, side="right") - 1)
        h = times[i + 1] - times[i]
        u = (tt - times[i]) / h
        h00, h10, h01, h11 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u, -2 * u**3 + 3 * u**2, u**3 - u**2
        g00, g10, g01, g11 = 6 * u**2 - 6 * u, 3 * u**2 - 4 * u + 1, -6 * u**2 + 6 * u, 3 * u**2 - 2 * u
        a[row, i] += h00
        a[row, i + 1] += h01
        a[row] += h * (h10 * d[i] + h11 * d[i + 1])
        b[row, i] += g00 / h
        b[row, i + 1] += g01 / h
        b[row] += g10 * d[i] + g11 * d[i + 1]
    return a, b


def evaluate(times: np.ndarray, values: np.ndarray, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Position [T, 3] and velocity [T, 3] of the trajectory at times ``t`` (s)."""
    a, b = hermite_weights(times, t)
    values = np.asarray(values, np.float64)
    return a @ values, b @ values


def shifted(times: np.ndarray, values: np.ndarray, offset: float) -> np.ndarray:
    """[M, 3] keyframes at ``times`` [M] s of the path p(t + ``offset``) (s), where p is the spline through
    (``times``, ``values``) continued past its ends along its first and last chords (the spline itself is
    held there). A tracker that reports a motion late by tau is undone by an offset of +tau."""
    times = np.asarray(times, np.float64)
    values = np.asarray(values, np.float64)
    v_start = (values[1] - values[0]) / (times[1] - times[0])
    v_end = (values[-1] - values[-2]) / (times[-1] - times[-2])
    t = times + offset
    p = evaluate(times, values, np.clip(t, times[0], times[-1]))[0]
    return p + np.minimum(t - times[0], 0.0)[:, None] * v_start + np.maximum(t - times[-1], 0.0)[:, None] * v_end
