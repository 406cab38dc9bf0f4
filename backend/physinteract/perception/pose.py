"""Camera pose by differentiable-rendering alignment: fit the camera so the rendered static object matches
the first frames' silhouettes and colours.

The camera is the start camera [R0 | t0] (OpenCV world->camera) moved by a rotation vector w and a
translation tau, both in the start camera's frame, about the object's centre c (camera coordinates):

    x_cam = R(w) (R0 x + t0 - c) + c + tau,

so a rotation turns the view about the object instead of swinging it out of the image, and w, tau are
nearly decoupled. With ``fit_focal`` the focal lengths are scaled by exp(log_f). The loss is
``silhouette * mean((alpha - mask)^2) + colour * mean|rgb - image|`` over the frames, minimised by Adam,
coarse to fine (the images downscaled by ``scales`` in turn). Units: metres, pixels, radians inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class PoseFitConfig:
    """Settings of :func:`fit_camera` (defaults fit a 10-degree, few-centimetre error in ~150 renders).

    iterations: Adam steps per scale of ``scales`` (the same length), coarse to fine.
    scales: image downscale factors, e.g. (0.25, 0.5, 1.0).
    lr_rotation: rad per step.  lr_translation: per step, as a fraction of the object's distance.
    lr_focal: per step, of log focal.  decay_to: the rates fall geometrically to this fraction within each scale.
    fit_focal: also fit the focal length (fx, fy scaled together).
    supersample: render at this many samples per pixel side and average, as a camera pixel integrates
        its area (1 = point samples at pixel centres; the fitted pose is biased by the difference).
    silhouette / colour: loss weights of mean (alpha - mask)^2 and mean |rgb - image| (rgb in [0, 1]).
    background: [3] linear RGB behind the object; None = the median of the first image outside the mask
        (or its border pixels without masks).
    device: torch device.
    """

    iterations: tuple[int, ...] = (60, 50, 40)
    scales: tuple[float, ...] = (0.25, 0.5, 1.0)
    lr_rotation: float = 0.01
    lr_translation: float = 0.01
    lr_focal: float = 0.01
    decay_to: float = 0.1
    supersample: int = 2
    fit_focal: bool = False
    silhouette: float = 1.0
    colour: float = 0.5
    background: tuple[float, float, float] | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if len(self.iterations) != len(self.scales) or not self.scales:
            raise ValueError(f"PoseFitConfig: iterations {self.iterations} and scales {self.scales} must have the same length")


@dataclass
class PoseFit:
    """The fitted camera: world_to_camera [4, 4] OpenCV, K [3, 3] px, the loss per step, the number of steps,
    and the final rotation (deg) / translation (m) of the fit away from the start."""

    world_to_camera: np.ndarray
    K: np.ndarray
    loss_history: list[float] = field(default_factory=list)
    iterations: int = 0
    rotation_deg: float = 0.0
    translation_m: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "loss_start": self.loss_history[0] if self.loss_history else None,
                "loss_final": self.loss_history[-1] if self.loss_history else None,
                "rotation_from_start_deg": self.rotation_deg, "translation_from_start_m": self.translation_m}


def _rotation_matrix(w: Any) -> Any:
    """Rodrigues: rotation [3, 3] of the rotation vector w [3] (rad), differentiable at 0."""
    import torch

    theta2 = (w * w).sum()
    theta = torch.sqrt(theta2 + 1e-24)
    k = torch.zeros(3, 3, dtype=w.dtype, device=w.device)
    k[0, 1], k[0, 2], k[1, 0], k[1, 2], k[2, 0], k[2, 1] = -w[2], w[1], w[2], -w[0], -w[1], w[0]
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / (theta2 + 1e-24))
    return torch.eye(3, dtype=w.dtype, device=w.device) + a * k + b * (k @ k)


def _downscale(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if (img.shape[1], img.shape[0]) == size:
        return img.astype(np.float32)
    return cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def fit_camera(gaussians: Any, K: np.ndarray, world_to_camera0: np.ndarray, images: np.ndarray,
               masks: np.ndarray | None = None, config: PoseFitConfig | None = None,
               progress: Any = None) -> PoseFit:
    """Fit the camera to the first frames of a video of the static object.

    Args:
        gaussians: physinteract.render.GaussianBatch of the object at rest (world frame).
        K: [3, 3] intrinsics (px) of the full-size images.
        world_to_camera0: [4, 4] start camera (OpenCV), e.g. the Blender camera.
        images: [T, H, W, 3] uint8 frames in which the object is at rest.
        masks: [T, H, W] bool silhouettes, or None (colour only).
        progress: callable(step, total, loss) or None.
    Returns:
        PoseFit with the fitted world_to_camera and K.
    """
    import torch

    from physinteract.render import Camera, GaussianBatch, render

    cfg = config or PoseFitConfig()
    imgs = np.asarray(images)
    if imgs.ndim == 3:
        imgs = imgs[None]
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise ValueError(f"fit_camera: images must be uint8 [T, H, W, 3], got {imgs.dtype} {list(imgs.shape)}")
    T, H, W, _ = imgs.shape
    if masks is not None:
        masks = np.asarray(masks, bool).reshape(-1, H, W)
        if len(masks) != T:
            raise ValueError(f"fit_camera: {len(masks)} masks for {T} images")
    dev = torch.device(cfg.device)
    dt = torch.float32
    K0 = np.asarray(K, np.float64)
    w2c0 = np.asarray(world_to_camera0, np.float64)
    rgb_f = imgs.astype(np.float32) / 255.0
    if cfg.background is not None:
        bg_np = np.asarray(cfg.background, np.float32)
    else:
        if masks is not None and (~masks[0]).any():
            outside = ~masks[0]
        else:
            outside = np.zeros((H, W), bool)
            outside[[0, -1], :] = True
            outside[:, [0, -1]] = True
        bg_np = np.median(rgb_f[0][outside], axis=0).astype(np.float32)
    bg = torch.as_tensor(bg_np, device=dev)

    means = gaussians.means.detach().to(dev, dt)
    g = GaussianBatch(means=means, colors=gaussians.colors.detach().to(dev, dt),
                      opacities=gaussians.opacities.detach().to(dev, dt), covariances=gaussians.covariance().detach().to(dev, dt))
    R0 = torch.as_tensor(w2c0[:3, :3], dtype=dt, device=dev)
    t0 = torch.as_tensor(w2c0[:3, 3], dtype=dt, device=dev)
    centre = (means.mean(0) @ R0.T + t0).detach()  # the object's centre, start camera frame
    distance = float(centre.norm())
    w = torch.zeros(3, dtype=dt, device=dev, requires_grad=True)
    tau = torch.zeros(3, dtype=dt, device=dev, requires_grad=True)  # in units of the object's distance
    log_f = torch.zeros((), dtype=dt, device=dev, requires_grad=True)
    groups = [{"params": [w], "lr": cfg.lr_rotation}, {"params": [tau], "lr": cfg.lr_translation}]
    if cfg.fit_focal:
        groups.append({"params": [log_f], "lr": cfg.lr_focal})
    opt = torch.optim.Adam(groups)
    base_lrs = [group["lr"] for group in groups]

    K_base = torch.as_tensor(K0, dtype=dt, device=dev)
    bottom = torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=dt, device=dev)
    focal_entries = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=dt, device=dev)

    def camera_matrices() -> tuple[Any, Any]:
        R = _rotation_matrix(w)
        trans = R @ (t0 - centre) + centre + tau * distance
        w2c = torch.cat([torch.cat([R @ R0, trans[:, None]], 1), bottom], 0)
        return w2c, K_base * (1.0 + (torch.exp(log_f) - 1.0) * focal_entries)  # fx, fy (and skew) scaled

    history: list[float] = []
    total = int(sum(cfg.iterations))
    step = 0
    for n_it, s in zip(cfg.iterations, cfg.scales):
        w_s, h_s = max(8, int(round(W * s))), max(8, int(round(H * s)))
        sx, sy = w_s / W, h_s / H
        targets = torch.as_tensor(np.stack([_downscale(im, (w_s, h_s)) for im in rgb_f]), device=dev)
        tmask = None
        if masks is not None:
            tmask = torch.as_tensor(np.stack([_downscale(m.astype(np.float32), (w_s, h_s)) for m in masks]), device=dev)
        for i in range(n_it):
            for group, base in zip(opt.param_groups, base_lrs):  # decay to decay_to x the rate within each scale
                group["lr"] = base * cfg.decay_to ** (i / max(n_it - 1, 1))
            opt.zero_grad()
            w2c, Kt = camera_matrices()
            ss = cfg.supersample
            Ks = torch.diag(torch.tensor([sx * ss, sy * ss, 1.0], dtype=dt, device=dev)) @ Kt
            out = render(g, Camera(Ks, w2c, w_s * ss, h_s * ss), background=bg)
            rgb = out.rgb.reshape(h_s, ss, w_s, ss, 3).mean((1, 3))  # a pixel integrates its area
            alpha = out.alpha.reshape(h_s, ss, w_s, ss).mean((1, 3))
            loss = cfg.colour * (rgb[None] - targets).abs().mean()
            if tmask is not None:
                loss = loss + cfg.silhouette * ((alpha[None] - tmask) ** 2).mean()
            loss.backward()
            opt.step()
            history.append(float(loss.detach()))
            step += 1
            if progress is not None:
                progress(step, total, history[-1])
    with torch.no_grad():
        w2c, Kt = camera_matrices()
    return PoseFit(world_to_camera=w2c.double().cpu().numpy(), K=Kt.double().cpu().numpy(), loss_history=history,
                   iterations=step, rotation_deg=math.degrees(float(w.detach().norm())),
                   translation_m=float((tau.detach() * distance).norm()))
