"""Fit the trajectory of a grasp to the pixels of the part it holds, without simulating.

A point-adherent grasp driven by velocity moves the particles it holds with the hand, so at frame
f they sit at X + p(t_f) - p(0), whatever the material (``mpm.solver`` sets their velocity to the
hand's and advects them with it). The Gaussians bound only to those particles are then a rigid
template that translates with the hand. Matching that template to each video frame measures the
trajectory from what shows it, and from nothing that depends on E.

Fitted on the whole image instead, the trajectory also takes up what the material should explain:
on the benchmark's two-region scenes a few millimetres of trajectory error bent to a uniform E
lowered the image loss more than the true stiffness contrast did, and the region search then
kept no contrast. Fitted here first, the later searches run on a trajectory the material did not
shape.

Per frame f the held Gaussians are rendered alone over black, giving premultiplied colour
C [H, W, 3] and coverage A [H, W]; the loss is the footprint-weighted mean of the colour mismatch
and of the share of the footprint outside the video's silhouette M:

    L_f = sum |C - A I_f| / (3 D) + w_mask sum A (1 - M_f) / D,    D = max(sum A, 0.25 sum A_rest)

(A I_f is what the footprint would show if the template matched the frame, so |C - A I_f| is the
alpha-weighted |colour - I_f|.) Before the keyframes move, a time offset of T0 is searched on the
same loss (T0(t + tau), every axis shifted alike): a tracker that reports the motion late is late
along the camera's depth too, which the template cannot see but the lag found across the image
corrects. The keyframes P [K, 3] enter through the trajectory spline, which is linear in them
(``mpm.spline``), and a prior w_traj ||(P - T0) / s||^2 keeps what the image hardly constrains
(mostly the depth along the camera's axis) near the tracker's value. A template that moves only in
depth, or has no texture and no silhouette edge, is held by the prior alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor


@dataclass
class GraspFitConfig:
    """Settings of :func:`fit_grasp_trajectory` (defaults documented).

    Attributes:
        steps: Adam steps (0 = off).
        lr: keyframe step as a fraction of the object's size (0.005: 1.5 mm on a 30 cm object;
            a tracker's error is a few millimetres to a couple of centimetres).
        final_lr_ratio: the cosine schedule ends at this fraction of ``lr``.
        w_mask: weight of the footprint's share outside the silhouette (when the job has masks).
        w_traj: weight of the prior ||(P - T0) / s||^2 (mean over keyframes).
        min_weight: a Gaussian belongs to the template when at least this share of its binding
            weight is on held particles (1 - a hair: it then moves rigidly with the hand).
        min_gaussians: fewer template Gaussians than this and the fit is skipped (too little to match).
        lag_frames / lag_step: first a search of a time offset of T0 on the template loss, over
            +-``lag_frames`` frames in steps of ``lag_step`` (extended while the best is at an end, up to
            twice as far, parabola-refined; 0 = off). On the benchmark's bow tie (its tracker one frame
            late) it found 1.04 frames and halved the keyframes' error along the camera's depth (4.5 to
            2.2 mm), which the fit across the image does not reach.
    """

    steps: int = 120
    lr: float = 0.005
    final_lr_ratio: float = 0.05
    w_mask: float = 1.0
    w_traj: float = 1.0
    min_weight: float = 0.99
    min_gaussians: int = 4
    lag_frames: float = 2.0
    lag_step: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0 or not self.lr > 0 or not 0.0 < self.min_weight <= 1.0 or self.min_gaussians < 1:
            raise ValueError(f"GraspFitConfig: expected steps >= 0, lr > 0, min_weight in (0, 1] and min_gaussians >= 1, got {self}")
        if self.lag_frames < 0 or self.lag_step < 0:
            raise ValueError(f"GraspFitConfig: expected lag_frames and lag_step >= 0 (0 = no lag search), got {self}")


@dataclass
class GraspFit:
    """What :func:`fit_grasp_trajectory` did: the keyframes it returns, how many Gaussians it
    matched, its template loss before and after (mean over frames), and the steps it ran."""

    keys: np.ndarray  # [K, 3] m
    gaussians: int
    loss_before: float
    loss_after: float
    steps: int
    moved: float  # m, mean |P - T0| over the keyframes
    ray: np.ndarray  # [3] unit line of sight from the camera to the template (world): the keyframes moved along it only by the lag
    lag_frames: float = 0.0  # the time offset applied to T0 before the fit (positive: T0 was late)

    def summary(self) -> dict[str, Any]:
        return {"gaussians": self.gaussians, "loss_before": round(self.loss_before, 6), "loss": round(self.loss_after, 6),
                "steps": self.steps, "moved_m": round(self.moved, 6), "lag_frames": round(self.lag_frames, 4)}


def template_indices(binding: Any, held: np.ndarray, num_particles: int, min_weight: float) -> np.ndarray:
    """Indices of the Gaussians of ``binding`` (``scene.GaussianBinding``) whose binding weight lies at
    least ``min_weight`` on the particles ``held`` (indices into the ``num_particles`` particles)."""
    is_held = torch.zeros(num_particles, dtype=binding.weight.dtype)
    is_held[torch.as_tensor(np.asarray(held, np.int64))] = 1.0
    share = (binding.weight * is_held[binding.index]).sum(1) / binding.weight.sum(1).clamp_min(1e-12)
    return np.flatnonzero(share.numpy() >= min_weight)


def frame_weights(key_times: np.ndarray, frame_times: np.ndarray) -> Tensor:
    """[F, K] weights W such that the hand's displacement at each of ``frame_times`` (s, frame 0 at
    t = 0) since t = 0 is W @ P (rows: the spline's position weights there less those at t = 0)."""
    from physinteract.mpm import spline

    times = np.asarray(key_times, np.float64)
    a, _ = spline.hermite_weights(times, np.asarray(frame_times, np.float64))
    a0, _ = spline.hermite_weights(times, 0.0)
    return torch.as_tensor(a - a0, dtype=torch.float64)


def template_gaussians(binding: Any, index: Tensor, shift: Tensor | None = None) -> Any:
    """The template (Gaussians ``index`` of ``binding``) at rest, moved rigidly by ``shift`` [3] m when given."""
    from physinteract.render import GaussianBatch

    means = binding.rest_means[index]
    if shift is not None:
        means = means + shift.to(means.dtype)
    return GaussianBatch(means=means, colors=binding.colors[index], opacities=binding.opacities[index],
                         covariances=binding.covariances[index])


def template_loss(binding: Any, index: Tensor, shift: Tensor, camera: Any, image: Tensor, mask: Tensor | None,
                  w_mask: float, floor: float) -> Tensor:
    """L_f of the module docstring: the template (Gaussians ``index`` of ``binding``) moved by
    ``shift`` [3] m, seen by ``camera``, against ``image`` [H, W, 3] and ``mask`` [H, W] (or None).
    ``floor``: the least footprint D (pixels) that normalises the loss."""
    from physinteract.render import render

    out = render(template_gaussians(binding, index, shift), camera, background=torch.zeros(3, dtype=binding.rest_means.dtype))
    A = out.alpha
    D = A.sum().clamp_min(floor)
    loss = (out.rgb - A.unsqueeze(-1) * image).abs().sum() / (3.0 * D)
    if mask is not None and w_mask > 0:
        loss = loss + w_mask * (A * (1.0 - mask)).sum() / D
    return loss


def fit_grasp_trajectory(
    binding: Any,
    held: np.ndarray,
    num_particles: int,
    observation: Any,
    cameras: list[Any],
    frames: list[int],
    frame_dt: float,
    key_times: np.ndarray,
    T0: np.ndarray,
    scale: float,
    config: GraspFitConfig | None = None,
) -> GraspFit | None:
    """Fit the keyframes of a grasp's trajectory to the video pixels of the part it holds.

    Args:
        binding: the object's Gaussians (``scene.GaussianBinding``, appearance already fitted).
        held: [C] indices of the particles the grasp holds.  num_particles: N.
        observation: the video (``scene.Observation``); frame 0 is the rest state.
        cameras: one ``render.Camera`` per video frame.  frames: the frame indices (>= 1) to match.
        frame_dt: s between frames.  key_times: [K] s.  T0: [K, 3] m, the keyframes to start from.
        scale: m, the object's size (the learning rate and the prior are relative to it).
    Returns:
        The fit (the best keyframes seen), or None when fewer than ``min_gaussians`` Gaussians
        belong to the held part or ``steps`` is 0.
    """
    from physinteract.estimate.adam import VectorAdamW, cosine_annealing
    from physinteract.estimate.optimize import _line_search
    from physinteract.mpm import spline

    cfg = config or GraspFitConfig()
    index_np = template_indices(binding, held, num_particles, cfg.min_weight)
    if cfg.steps <= 0 or len(index_np) < cfg.min_gaussians or len(T0) < 2:
        return None
    index = torch.as_tensor(index_np)
    W = frame_weights(key_times, np.asarray(frames, np.float64) * frame_dt)  # [F, K]
    given = np.asarray(T0, np.float64)
    with torch.no_grad():
        from physinteract.render import render

        floor = 0.25 * float(render(template_gaussians(binding, index), cameras[0]).alpha.sum())
    if floor <= 0:  # the held part is not in view
        return None
    masks = observation.masks

    def image_of(keys: Tensor) -> Tensor:  # the mean of L_f over the frames
        shifts = W @ keys  # [F, 3]
        image = torch.zeros((), dtype=torch.float64)
        for row, f in enumerate(frames):
            image = image + template_loss(binding, index, shifts[row], cameras[f], observation.frames[f],
                                          None if masks is None else masks[f], cfg.w_mask, floor).double()
        return image / len(frames)

    def path_loss(offset_frames: float) -> float:  # T0(t + offset), every axis alike
        with torch.no_grad():
            return float(image_of(torch.as_tensor(spline.shifted(key_times, given, offset_frames * frame_dt))))

    before = path_loss(0.0)
    lag = 0.0
    if cfg.lag_frames > 0 and cfg.lag_step > 0 and np.ptp(given, axis=0).max() > 0:
        lag = _line_search(path_loss, 0.0, cfg.lag_frames, cfg.lag_step, 2.0 * cfg.lag_frames, {0.0: before})
    T0_t = torch.as_tensor(spline.shifted(key_times, given, lag * frame_dt) if lag else given)

    # The keyframes move across the line of sight only: a small template's size hardly changes with
    # its depth, so the image does not say how far it is, and left free the fit drifted along the ray
    # (on the benchmark's bow tie from 4 to 20 mm off, while the error across the image fell).
    ray = (binding.rest_means[index].double().mean(0) - cameras[0].center().double()).reshape(3)
    ray = ray / ray.norm().clamp_min(1e-12)
    across = torch.eye(3, dtype=torch.float64) - torch.outer(ray, ray)  # [3, 3] projection off the ray
    delta = torch.nn.Parameter(torch.zeros_like(T0_t))
    opt = VectorAdamW([{"params": [delta], "lr": cfg.lr * scale, "vector": True}])
    sched = cosine_annealing(opt, cfg.steps, cfg.final_lr_ratio)
    best_loss, best_keys, best_image = np.inf, T0_t.clone(), np.nan
    for step in range(cfg.steps + 1):  # the last pass only evaluates
        with torch.set_grad_enabled(step < cfg.steps):
            keys = T0_t + delta @ across
            image_t = image_of(keys)
            loss = image_t + cfg.w_traj * ((keys - T0_t) / scale).square().sum(-1).mean()
            image = float(image_t.detach())
        if float(loss.detach()) < best_loss:
            best_loss, best_keys, best_image = float(loss.detach()), keys.detach().clone(), image
        if step == cfg.steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    out = best_keys.numpy()
    moved = float(np.linalg.norm(out - given, axis=1).mean())
    return GraspFit(keys=out, gaussians=len(index_np), loss_before=float(before), loss_after=float(best_image),
                    steps=cfg.steps, moved=moved, ray=ray.numpy(), lag_frames=float(lag))
