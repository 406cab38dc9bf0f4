"""Synthetic perception scenes: a benchmark solid (physinteract.benchmark.scenes), its particles and surface
Gaussians, a known camera, and images rendered by the project's Gaussian rasteriser (SI units, world +Z up)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from physinteract.benchmark import scenes as S


@dataclass
class SyntheticObject:
    """A static object: particles [N, 3] m (labels 0 surface / 1 interior, volume m^3), its surface Gaussians
    (dict of positions, rotations, scales, colors, opacities as in ``scenes.surface_gaussians``), and its size (m)."""

    spec: S.SceneSpec
    particles: np.ndarray
    labels: np.ndarray
    volume: np.ndarray
    spacing: float
    gaussians: dict[str, np.ndarray]

    @property
    def size(self) -> float:
        return float(np.linalg.norm(self.particles.max(0) - self.particles.min(0)))

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (self.particles.max(0) + self.particles.min(0))


def make_object(scene: str = "balloon_dog", particles: int = 800, gaussians: int = 500, seed: int = 0) -> SyntheticObject:
    """Benchmark scene ``scene``'s solid filled with about ``particles`` particles and ``gaussians`` surface Gaussians."""
    spec = S.SCENES[scene]()
    lo, hi = np.asarray(spec.lo), np.asarray(spec.hi)
    spacing = (S.solid_volume(spec.sdf, lo, hi) / particles) ** (1.0 / 3.0)
    fill = S.fill_sdf(spec.sdf, lo, hi, spacing, np.random.default_rng(seed).random(3))
    gauss = S.surface_gaussians(spec, gaussians, seed)
    return SyntheticObject(spec, fill.positions, fill.labels, fill.volume, spacing, gauss)


def camera(obj: SyntheticObject, width: int, height: int, view: tuple[float, float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """K [3, 3] and world->camera [4, 4] (OpenCV) of the benchmark's framing camera, looking along ``view``."""
    v = np.asarray(view if view is not None else obj.spec.view, np.float64)
    return S.look_at_camera(obj.gaussians["positions"], v, width, height)


def gaussian_batch(obj: SyntheticObject, colors: np.ndarray | None = None, means: np.ndarray | None = None,
                   dtype: Any = None) -> Any:
    """The object's Gaussians as a render.GaussianBatch (float64 unless ``dtype``); ``colors`` [V, 3] replaces their
    colours (e.g. an indicator of a region), ``means`` [V, 3] moves them."""
    import torch

    from physinteract.geometry.deform import covariance
    from physinteract.render import GaussianBatch

    g = obj.gaussians
    d = dtype or torch.float64
    cov = covariance(g["rotations"], np.log(g["scales"]))
    return GaussianBatch(means=torch.as_tensor(g["positions"] if means is None else means, dtype=d),
                         colors=torch.as_tensor(g["colors"] if colors is None else colors, dtype=d),
                         opacities=torch.as_tensor(g["opacities"], dtype=d), covariances=torch.as_tensor(cov, dtype=d))


def render_view(obj: SyntheticObject, K: np.ndarray, w2c: np.ndarray, width: int, height: int,
                colors: np.ndarray | None = None, means: np.ndarray | None = None,
                background: tuple[float, float, float] = S.BACKGROUND) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One view of the object's Gaussians (float64 renderer, no noise): rgb [H, W, 3] in [0, 1], alpha [H, W], depth [H, W] m.
    ``colors`` and ``means`` as in :func:`gaussian_batch`."""
    import torch

    from physinteract.render import Camera, render

    d = torch.float64
    with torch.no_grad():
        out = render(gaussian_batch(obj, colors, means), Camera.from_numpy(K, w2c, width, height, dtype=d),
                     background=torch.tensor(background, dtype=d))
    return out.rgb.numpy(), out.alpha.numpy(), out.depth.numpy()


def video_frame(obj: SyntheticObject, K: np.ndarray, w2c: np.ndarray, width: int, height: int, noise: float = 0.005,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A camera-like frame of the static object: the benchmark's renderer at 2x supersampling, box-filtered, with
    pixel noise. Returns the image [H, W, 3] uint8 and the silhouette [H, W] bool (coverage > 0.5)."""
    g = obj.gaussians
    v = len(g["positions"])
    imgs, alpha = S.render_frames(g["positions"][None], np.tile(np.eye(3), (1, v, 1, 1)), g, K, w2c, width, height,
                                  supersample=2, noise=noise, rng=np.random.default_rng(seed), background=S.BACKGROUND)
    return np.round(imgs[0] * 255).astype(np.uint8), alpha[0] > 0.5


def rotation(axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotation matrix [3, 3] about unit ``axis`` by ``angle_deg`` (Rodrigues)."""
    a = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    th = np.radians(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(th) * k + (1 - np.cos(th)) * (k @ k)


def orbit(w2c: np.ndarray, centre: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    """The camera ``w2c`` [4, 4] moved rigidly about the world axis ``axis`` through ``centre`` (m) by ``angle_deg``."""
    R = rotation(axis, angle_deg)
    move = np.eye(4)
    move[:3, :3] = R
    move[:3, 3] = centre - R @ centre  # x -> R (x - c) + c, a world motion of the camera
    return w2c @ np.linalg.inv(move)


def camera_errors(w2c: np.ndarray, truth: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(rotation error in degrees, camera-centre error as a fraction of the true camera's distance to ``target``)."""
    dR = w2c[:3, :3] @ truth[:3, :3].T
    angle = float(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0))))
    c = -w2c[:3, :3].T @ w2c[:3, 3]
    c_true = -truth[:3, :3].T @ truth[:3, 3]
    return angle, float(np.linalg.norm(c - c_true) / np.linalg.norm(c_true - target))
