"""What the estimator compares: the observed video, and the Gaussians it renders.

``Observation`` holds the input frames and silhouettes of a job (PNG files, one per frame of
the frame range, the first one the rest state). ``GaussianBinding`` ties the object's Gaussians
to the simulation particles: each Gaussian follows the particles around it,

    x_g = sum_j w_gj (x_j + F_j (X_g - X_j)),   F_g = sum_j w_gj F_j,   Sigma_g = F_g Sigma_g^0 F_g^T,

with fixed weights w_gj from the rest configuration (a smooth kernel over the k nearest
particles), so an affine motion of the particles moves the Gaussians exactly and the image
gradients reach the particles' positions and deformation gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from physinteract import contract
from physinteract.estimate.losses import FrameLossWeights, frame_loss
from physinteract.render import GaussianBatch, covariance_from_quat_scale


@dataclass
class Observation:
    """The input video of a job.

    Attributes:
        frames: [F+1, H, W, 3] colours in [0, 1]; index 0 is the rest frame (frame_start).
        masks: [F+1, H, W] object silhouettes in [0, 1], or None when the job has no masks.
        background: [3] colour behind the object (median of the rest frame outside the object).
    """

    frames: Tensor
    masks: Tensor | None
    background: Tensor

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def load_observation(job: contract.Job, folder: str | Path | None = None, dtype: torch.dtype = torch.float32) -> Observation:
    """Read the job's video frames and masks (paths relative to the job ``folder``)."""
    from physinteract.imageio import read_png

    video = job.video
    if video is None or not video.frames:
        raise ValueError(f"job '{job.name}': field 'video.frames': expected one image per frame to estimate from, got none")
    if len(video.frames) != job.num_frames:
        raise ValueError(f"job '{job.name}': field 'video.frames': expected {job.num_frames} frames "
                         f"({job.frame_start}..{job.frame_end}), got {len(video.frames)}")
    if job.camera is None:
        raise ValueError(f"job '{job.name}': field 'camera': the estimator needs the camera the video was taken with")

    def path(p: str) -> Path:
        return contract.resolve_path(folder, p) if folder is not None else Path(p)

    W, H = int(job.camera.width), int(job.camera.height)
    frames = []
    for i, p in enumerate(video.frames):
        img = read_png(path(p))
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.shape[:2] != (H, W):
            raise ValueError(f"{path(p)}: field 'video.frames[{i}]': expected a {W}x{H} image (the camera's size), "
                             f"got {img.shape[1]}x{img.shape[0]}")
        frames.append(img[..., :3])
    masks = None
    if video.masks:
        if len(video.masks) != job.num_frames:
            raise ValueError(f"job '{job.name}': field 'video.masks': expected {job.num_frames} masks, got {len(video.masks)}")
        ms = []
        for i, p in enumerate(video.masks):
            m = read_png(path(p))
            m = m.mean(axis=2) if m.ndim == 3 else m
            if m.shape != (H, W):
                raise ValueError(f"{path(p)}: field 'video.masks[{i}]': expected a {W}x{H} mask, got {m.shape[1]}x{m.shape[0]}")
            ms.append(m)
        masks = torch.as_tensor(np.stack(ms), dtype=dtype)
    rgb = np.stack(frames)
    if masks is not None:
        outside = masks[0].numpy() < 0.5
    else:
        outside = np.zeros((H, W), bool)
        outside[[0, -1], :] = True
        outside[:, [0, -1]] = True
    bg = np.median(rgb[0][outside], axis=0) if outside.any() else np.zeros(3)
    return Observation(torch.as_tensor(rgb, dtype=dtype), masks, torch.as_tensor(bg, dtype=dtype))


class GaussianBinding:
    """The object's Gaussians, bound to the simulation particles: the torch twin of
    ``geometry.interpolate_from_particles`` (same weights), differentiable in x and F.

    Args:
        means: [G, 3] rest centres (m, world).  covariances: [G, 3, 3] rest covariances (m^2).
        colors: [G, 3] linear RGB.  opacities: [G].
        particles: [N, 3] particle rest positions (m, world).
        k: particles each Gaussian follows.
    """

    def __init__(self, means: np.ndarray, covariances: np.ndarray, colors: np.ndarray, opacities: np.ndarray,
                 particles: np.ndarray, k: int = 8, dtype: torch.dtype = torch.float32) -> None:
        from physinteract.geometry.deform import interpolation_weights

        X = np.asarray(particles, np.float64)
        Xg = np.asarray(means, np.float64)
        idx, w = interpolation_weights(Xg, X, min(k, len(X)))
        self.index = torch.as_tensor(idx)  # [G, k]
        self.weight = torch.as_tensor(w, dtype=dtype)  # [G, k]
        self.offset = torch.as_tensor(Xg[:, None, :] - X[idx], dtype=dtype)  # [G, k, 3] X_g - X_j
        self.covariances = torch.as_tensor(np.asarray(covariances, np.float64), dtype=dtype)
        self.colors = torch.as_tensor(np.asarray(colors, np.float64), dtype=dtype)
        self.opacities = torch.as_tensor(np.asarray(opacities, np.float64), dtype=dtype)
        self.rest_means = torch.as_tensor(Xg, dtype=dtype)

    def __len__(self) -> int:
        return int(self.rest_means.shape[0])

    def gaussians(self, x: Tensor, F: Tensor) -> GaussianBatch:
        """The Gaussians when the particles are at ``x`` [N, 3] with deformation gradients ``F`` [N, 3, 3]."""
        Fj = F[self.index]  # [G, k, 3, 3]
        pred = x[self.index] + (Fj @ self.offset.unsqueeze(-1)).squeeze(-1)  # [G, k, 3]
        w = self.weight.unsqueeze(-1)
        means = (w * pred).sum(1)
        Fg = (w.unsqueeze(-1) * Fj).sum(1)  # [G, 3, 3]
        cov = Fg @ self.covariances @ Fg.transpose(-1, -2)
        return GaussianBatch(means=means, colors=self.colors, opacities=self.opacities, covariances=cov)


def binding_from_job(job: contract.Job, observation: Observation | None = None, k: int = 8,
                     dtype: torch.dtype = torch.float32) -> GaussianBinding:
    """The Gaussians a job is rendered with.

    The first point set with colours is the object's Gaussians (a 3DGS reconstruction). Without
    one, every surface particle becomes an isotropic Gaussian (std = half the particle spacing)
    whose colour is sampled from the rest frame of ``observation`` where it projects.
    """
    for ps in job.point_sets:
        if ps.colors is None:
            continue
        g = len(ps.rest_positions)
        quats = ps.rest_rotations if ps.rest_rotations is not None else np.tile([1.0, 0.0, 0.0, 0.0], (g, 1))
        if ps.rest_scales is None:
            raise ValueError(f"job '{job.name}': field 'point_sets.{ps.name}.scales': Gaussians with colours need scales")
        cov = covariance_from_quat_scale(torch.as_tensor(quats, dtype=torch.float64),
                                         torch.as_tensor(ps.rest_scales, dtype=torch.float64)).numpy()
        opac = ps.opacities if ps.opacities is not None else np.full(g, 0.99)
        return GaussianBinding(ps.rest_positions, cov, ps.colors, opac, job.particles, k, dtype)
    surface = np.flatnonzero(job.labels == contract.SURFACE)
    pts = job.particles[surface]
    sigma = 0.5 * float(np.cbrt(np.median(job.volume[surface])))
    cov = np.tile(np.eye(3) * sigma**2, (len(pts), 1, 1))
    colors = np.full((len(pts), 3), 0.7)
    if observation is not None and job.camera is not None:
        W, H = observation.size  # the frames may be resampled from the camera's own size
        K = contract.scale_intrinsics(job.camera.K, (job.camera.width, job.camera.height), (W, H))
        with np.errstate(invalid="ignore", divide="ignore"):  # points at z = 0 are not visible anyway
            uv, z = contract.project(K, job.camera.world_to_camera[0], pts)
            u, v = (np.floor(np.nan_to_num(c, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(int) for c in uv.T)
        ok = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        img = observation.frames[0].double().numpy()
        if ok.any():
            colors[ok] = img[v[ok], u[ok]]
            colors[~ok] = colors[ok].mean(0)
    return GaussianBinding(pts, cov, colors, np.full(len(pts), 0.95), job.particles, k, dtype)


def observed_frame_loss(out: Any, observation: Observation, f: int, weights: FrameLossWeights) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 4's per-frame loss of a render ``out`` (``render.RenderOutput``) against frame ``f`` of the
    video; without silhouettes, the image terms only."""
    if observation.masks is None:
        return frame_loss(out.rgb, observation.frames[f], out.alpha, out.alpha.detach(), FrameLossWeights(weights.ssim, 0.0))
    return frame_loss(out.rgb, observation.frames[f], out.alpha, observation.masks[f], weights)


@dataclass
class AppearanceFit:
    """What :func:`fit_appearance` changed: the rest frame's loss and PSNR (dB) before and after."""

    loss_before: float
    loss_after: float
    psnr_before: float
    psnr_after: float
    steps: int


def fit_appearance(binding: GaussianBinding, observation: Observation, camera: Any, weights: FrameLossWeights | None = None,
                   steps: int = 100, lr: float = 0.05, max_log_scale: float = 0.5) -> AppearanceFit:
    """Fit the Gaussians' colours, opacities and sizes to the rest frame (frame 0) of the video.

    The object's Gaussians come from elsewhere (a 3DGS reconstruction under other lighting, or
    particles coloured by sampling the frame), so at rest they match the video only roughly: a
    thin rope's silhouette may be a pixel too wide, a colour a little too dark. That static
    mismatch then dominates the image loss of every frame and hides the motion that the material
    and the trajectory are fitted to. Only appearance moves here: the centres stay bound to the
    particles, each covariance is scaled by s^2 with log s in +-``max_log_scale`` (its
    orientation kept), colours stay in [0, 1] and opacities in (0, 1). The best step is kept.

    Args:
        binding: the Gaussians (updated in place).  observation: the video; frame 0 is fitted.
        camera: the rest frame's camera (``render.Camera``).
        weights: per-frame loss weights (default the paper's).
        steps: Adam steps (0 = leave the Gaussians as they are).  lr: Adam's rate (logit / log units).
    """
    from physinteract.render import GaussianBatch, render

    weights = weights or FrameLossWeights()
    eps = 1e-4

    def rest_loss(colors: Tensor, opacities: Tensor, log_s: Tensor) -> tuple[Tensor, float]:
        s2 = torch.exp(2.0 * log_s.clamp(-max_log_scale, max_log_scale))[:, None, None]
        g = GaussianBatch(means=binding.rest_means, colors=colors, opacities=opacities, covariances=binding.covariances * s2)
        loss, terms = observed_frame_loss(render(g, camera, background=observation.background), observation, 0, weights)
        return loss, float(terms["psnr"])

    c_logit = torch.logit(binding.colors.clamp(eps, 1 - eps)).detach().requires_grad_(True)
    o_logit = torch.logit(binding.opacities.clamp(eps, 1 - eps)).detach().requires_grad_(True)
    log_s = torch.zeros(len(binding), dtype=binding.colors.dtype, requires_grad=True)
    with torch.no_grad():
        before, psnr_before = rest_loss(binding.colors, binding.opacities, log_s)
    if steps <= 0:
        return AppearanceFit(float(before), float(before), psnr_before, psnr_before, 0)
    best = (float(before), psnr_before, binding.colors, binding.opacities, log_s.detach().clone())
    opt = torch.optim.Adam([c_logit, o_logit, log_s], lr=lr)
    for step in range(steps + 1):  # the last pass only evaluates
        with torch.set_grad_enabled(step < steps):
            colors, opacities = torch.sigmoid(c_logit), torch.sigmoid(o_logit)
            loss, p = rest_loss(colors, opacities, log_s)
        if float(loss.detach()) < best[0]:
            best = (float(loss.detach()), p, colors.detach().clone(), opacities.detach().clone(),
                    log_s.detach().clamp(-max_log_scale, max_log_scale).clone())
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    binding.colors, binding.opacities = best[2], best[3]
    binding.covariances = binding.covariances * torch.exp(2.0 * best[4])[:, None, None]
    return AppearanceFit(float(before), best[0], psnr_before, best[1], steps)
