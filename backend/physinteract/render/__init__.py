"""Differentiable Gaussian splatting (PyTorch): RGB, silhouette and depth images.

Importing this package is cheap; torch is imported on first use of a name:
``from physinteract.render import render, GaussianBatch, Camera, RenderConfig``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GaussianBatch": "gaussians",
    "Camera": "gaussians",
    "covariance_from_quat_scale": "gaussians",
    "rotation_from_quat": "gaussians",
    "rgb_from_sh_dc": "gaussians",
    "rgb_from_sh": "gaussians",
    "sh_basis": "gaussians",
    "sh_dc_from_rgb": "gaussians",
    "SH_C0": "gaussians",
    "RenderConfig": "rasterize",
    "RenderOutput": "rasterize",
    "render": "rasterize",
    "project_gaussians": "rasterize",
    "gsplat_available": "rasterize",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
