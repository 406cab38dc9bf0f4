"""Colours for an estimated material field (bpy-free, numpy only).

Young's modulus spans decades, so E is shown on a log scale: ``log10 E`` between
the field's minimum and maximum is mapped onto a perceptually ordered ramp
(viridis: dark blue-purple = softest, yellow = stiffest; its luminance rises
monotonically, so brighter always means stiffer). Poisson's ratio is mapped
linearly over its physical range [0, 0.5). Colours are linear RGB(A) in [0, 1],
as Blender's FLOAT_COLOR attributes and COLOR properties store them.
"""

from __future__ import annotations

import numpy as np

# Five stops of viridis in sRGB, at t = 0, 0.25, 0.5, 0.75, 1.
_RAMP_SRGB = np.array([
    (0.267, 0.005, 0.329),
    (0.229, 0.322, 0.546),
    (0.128, 0.567, 0.551),
    (0.369, 0.789, 0.383),
    (0.993, 0.906, 0.144),
])
NU_RANGE = (0.0, 0.5)  # Poisson's ratio shown over [0, 0.5)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB transfer function inverted (IEC 61966-2-1): display values -> linear RGB."""
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


RAMP_LINEAR = srgb_to_linear(_RAMP_SRGB)  # [5, 3] the ramp's stops in linear RGB


def ramp(t: np.ndarray) -> np.ndarray:
    """[N, 3] linear RGB of ramp positions ``t`` [N] (clamped to [0, 1])."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    xs = np.linspace(0.0, 1.0, len(RAMP_LINEAR))
    return np.stack([np.interp(t, xs, RAMP_LINEAR[:, c]) for c in range(3)], axis=-1)


def log_position(E: np.ndarray, E_min: float, E_max: float) -> np.ndarray:
    """Ramp position in [0, 1] of moduli ``E`` [N] (Pa) on a log10 scale from ``E_min`` to ``E_max``
    (0.5 everywhere for a homogeneous field)."""
    E = np.asarray(E, np.float64)
    lo, hi = np.log10(max(E_min, 1e-30)), np.log10(max(E_max, 1e-30))
    if hi - lo < 1e-9:
        return np.full(E.shape, 0.5)
    return (np.log10(np.maximum(E, 1e-30)) - lo) / (hi - lo)


def rgba(rgb: np.ndarray) -> np.ndarray:
    """[N, 4] float32 RGBA with alpha 1 from [N, 3] RGB."""
    out = np.ones((len(rgb), 4), np.float32)
    out[:, :3] = rgb
    return out


def E_colors(E: np.ndarray) -> np.ndarray:
    """[N, 4] linear RGBA of a Young's modulus field E [N] (Pa): log10 E from the field's min to max on the ramp."""
    E = np.asarray(E, np.float64)
    return rgba(ramp(log_position(E, float(E.min()), float(E.max()))))


def nu_colors(nu: np.ndarray) -> np.ndarray:
    """[N, 4] linear RGBA of a Poisson's ratio field nu [N]: [0, 0.5) on the ramp."""
    lo, hi = NU_RANGE
    return rgba(ramp((np.asarray(nu, np.float64) - lo) / (hi - lo)))


def E_legend(E: np.ndarray) -> list[tuple[str, float, tuple[float, float, float]]]:
    """The legend of an E field: (label, E in Pa, linear RGB) of its minimum, median and maximum."""
    E = np.asarray(E, np.float64)
    lo, hi = float(E.min()), float(E.max())
    out = []
    for label, value in (("min", lo), ("median", float(np.median(E))), ("max", hi)):
        c = ramp(log_position(np.array([value]), lo, hi))[0]
        out.append((label, value, (float(c[0]), float(c[1]), float(c[2]))))
    return out
