"""Joint estimation of the material field and the interaction (the paper's Sec. 3.4).

Objective (Eqs. 4-5), over the frames t = 1..F of the input video:

    L = 1/F sum_t [ L1(I_t, I^_t) + w_ssim (1 - SSIM(I_t, I^_t)) + w_mask ||M^_t - M_t||^2 ]
        + w_smooth * mean_(i,j in kNN) (log E_i - log E_j)^2
        + w_traj * ||T - T0||^2 / s^2

with I^_t, M^_t the rendered image and silhouette of the simulated object, T the trajectory
keyframes, T0 their initial value (from tracking) and s the object's size (so w_traj is scale
free). Parameters: the material field (log E and bounded nu, see ``field.py``) and the keyframes.
Optimiser: AdamW (decoupled weight decay 0 by default: neither log E nor a position has a
meaningful zero to decay to) with cosine annealing, one learning rate per group.

Before the gradient stage a forward-only scan over a uniform scale of E (``scan_decades`` either
side of the initial guess) picks the start: the image loss of an oscillating or sagging object is
not convex in E over decades (a wrong period aliases), while near the right value it is smooth.

Modes: "joint" (material and trajectory), "material_only" (the trajectory stays T0: the
paper's w/o-JO ablation) and "trajectory_only" (the material stays the job's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physinteract import contract
from physinteract.estimate.adam import VectorAdamW, cosine_annealing
from physinteract.estimate.field import FieldConfig, MaterialField
from physinteract.estimate.grasp import GraspFit, GraspFitConfig
from physinteract.estimate.losses import FrameLossWeights, knn_graph, psnr_np, smoothness_loss, ssim_np
from physinteract.estimate.scene import observed_frame_loss
from physinteract.mpm.resolution import Tearing

MODES = ("joint", "material_only", "trajectory_only")
CHECKPOINT_FILE = "estimate_checkpoint.pt"


@dataclass
class EstimateConfig:
    """Estimation settings (defaults documented; SI units).

    Attributes:
        mode: "joint", "material_only" or "trajectory_only".
        iterations: gradient iterations at most (the job's solver.iterations when None).
        lr_material: AdamW learning rate of log E (natural log: 0.1 moves E by about 10 %).
        lr_nu: learning rate of the bounded-nu parameter (logit units).
        lr_trajectory: learning rate of the keyframes, as a fraction of the object's size per step
            (Adam moves every keyframe by about this much per step whatever the gradient's size, so
            it is set to the scale of a tracker's error, a few millimetres on a 30 cm object).
        trajectory_warmup: "joint" only: the first fraction of the iterations moves the trajectory
            alone, with E held at the scan's value; then a fine forward scan of the uniform E
            factor (``refine_decades``) re-centres E on the corrected trajectory, and the region
            scan runs, before both move. An error of T0 (a lag, a drift) otherwise pulls E away
            while the trajectory is still wrong, and E does not come back within tens of iterations.
        refine_decades: the rescans (after the lag search, and after the warm-up) step in quarters
            of this: each starts at the current factor and one step either side and walks a step
            at a time while the best is at an end.
        lag_frames / lag_step: "joint" and "trajectory_only": after the coarse scan, a forward-only
            search of a time offset tau of T0, T(t) = T0(t + tau), over +-``lag_frames`` frames in
            steps of ``lag_step`` (extended while the best is at an end, up to twice as far,
            parabola-refined); the prior ||T - T0|| is then centred on the shifted T0 (0 = off).
            A tracker reports a motion late (temporal smoothing) or early: an error that is one
            number, which the per-keyframe gradient steps, a few millimetres each, undo only slowly.
            Not after a grasp fit (``grasp``): the fit searches the lag on the held part's pixels
            alone (``GraspFitConfig.lag_frames``) and takes the motion across the image from them,
            and a lag searched on the whole image is the trajectory taking up the material's effect
            again (on the benchmark's flower a lag of the depth alone, which the image hardly
            shows, hid the stiffness contrast).
        contact_spacings: "joint" and "trajectory_only", with a contact set driven by the
            trajectory: after the lag search, a forward-only search of the contact set's extent,
            the set grown (or shrunk) by whole particle spacings, up to this many either way, each
            at its own best uniform factor on E, the lowest image loss kept (0 = off). A contact
            region back-projected from a segmentation mask, or drawn by hand, is uncertain by about a particle spacing at its edge, and a
            grasp that holds more of the object than the set does is otherwise fitted by stiffening
            the part around it (see ``contact_sets``).
        contact_gain: a contact set other than the job's is kept only when it lowers the image loss
            by this fraction (at their own best E each). A stiffer part next to the grasp looks
            like a grasp one spacing wider; the job's set (segmented or drawn) is the prior, and a
            gain within what the discretisation alone produces does not overturn it.
        vector_trajectory: the keyframes' optimiser normalises each keyframe's step as a vector
            (``adam.VectorAdamW``), not each coordinate's: plain Adam moves a keyframe as far along
            the camera's depth, which the video hardly constrains, as across the image.
        key_spacing: "joint" and "trajectory_only": the estimator's trajectory has a keyframe every this
            many video frames over the job's keyframes' time span (their first and last times kept), T0
            resampled there along the job's spline (0: the job's keyframes). The video samples the
            motion at its frames, and a spline keyed more coarsely cannot follow a motion whose turns
            fall between its keys: on the benchmark's bow tie (T0 keyed every 2 frames, the hand's
            path turning every 3.5) the true path sampled at T0's key times fits the video worse at
            the true material (image loss 0.0240) than with the stiff wing at 2x its E (0.0226); keyed
            at every frame the true field fits best (0.0127, against 0.0171 at 2x; 0.0124 on the
            hand's own keys). "material_only" keeps the job's keyframes (T0 exactly, the ablation).
        final_lr_ratio: the cosine schedule ends at this fraction of each learning rate.
        weight_decay: AdamW's decoupled weight decay.
        loss: per-frame image-loss weights (SSIM 0.2 and mask 1.0 by default).
        w_smooth: weight of the material-field smoothness (log E over a kNN graph of particles).
            Small beside the image loss: at 0.5 the penalty of a true two-region field (tow_rope,
            12 and 36 kPa) outweighed its image-loss gain over a uniform one, so the optimum of the
            regularised loss was the uniform field.
        smooth_edge: Charbonnier scale of the smoothness penalty in log E (0 = quadratic): flat
            fields stay flat, region boundaries cost a bounded amount.
        global_fraction: the first fraction of the iterations moves one value of E shared by all
            particles (coarse to fine: the scale first, then its spatial variation).
        w_traj: weight of ||T - T0||^2 / size^2.
        smooth_k: neighbours in the smoothness graph.
        scan_decades / scan_points / scan_max_decades: the forward-only scan of a uniform E scale
            before the gradient stage: ``scan_points`` samples over +-``scan_decades``, extended
            while the best is at an end, up to +-``scan_max_decades`` (0 decades switches it off),
            then the fine rescan (``refine_decades``); "joint" and "material_only" only. The image
            loss of a bending or bouncing object has a minimum about 0.1 decade wide, so the steps
            must be finer than that in the end.
        scan_regions / region_passes: then a search of contrasts between coarse parts: the
            k-means halves and every two-way grouping of this many k-means regions, the one the
            gradient favours first, up to ``region_passes`` contrasts (see ``region_scan``;
            fewer than 2 regions: off).
        region_rescan: "joint" only: at this fraction of the iterations the region search runs
            once more, on the trajectory corrected by then (0 = off). The warm-up leaves the
            trajectory's error about halved, and what is left can still hide a contrast: on the
            benchmark's flower the contrast between the soft petals and the stiff stem lowers the
            loss by 3 % after the warm-up and by 10 % two thirds of the way through.
        region_gain: a contrast is kept only when it lowers the image loss by this fraction;
            below it the difference is within what a discretisation mismatch alone produces.
        split_step / split_max_decades / split_patience: each contrast of the region search walks
            out either way in steps of twice ``split_step`` decades, up to ``split_max_decades``,
            giving up on a direction after ``split_patience`` steps that find nothing better, and
            then refines the best in steps of ``split_step``, each contrast at its own best level
            (see ``split_scan``; 0 = off). The loss along a contrast is not monotone: on the
            benchmark's flower the true contrast (2.5x) lowers it by 16 %, while a third of it
            raises it by 10 %, since a stem only slightly stiffer than the uniform level still
            stretches too far under the blossom's weight; a search that stopped at the first
            step that did not help kept no contrast.
            A contrast between two halves is not found one half at a time: softening the still
            half of a rope lying on the ground alone fits worse, and so does stiffening the
            lifted half alone, while both together fit far better.
        polish: the fine searches of a uniform level (``rescan``, each contact set's level in
            ``contact_scan``, each contrast's level in ``split_scan``) end with up to this many
            rollouts at the vertex of a parabola through the best samples (successive parabolic
            interpolation), and keep the best level reached (0: the grid's best sample, or for
            ``rescan`` the first vertex unevaluated). A large swing's image loss doubles within
            1/32 decade of E (the benchmark's glove), narrower than the grid's step: compared at
            grid samples only, a contrast or contact set whose best level falls between them
            loses to the uniform level refined before it. Off by default: at 2 the benchmark's
            bow tie reached a lower image loss (0.0216) at a field no nearer the truth (wings
            1.30x / 1.81x, against 1.23x / 2.15x without; 1473 s against 1190 s, each beside other
            work), and the glove kept its uniform field (its k-means halves, 92 % aligned with its
            palm and fingers, lower the loss by 8 % at a contrast of 0.125 decades, the truth's
            being 0.4): what separates these fields from the truth is not the search's step.
        held_from_free: the particles a grasp holds (point_adherent, velocity drive) take the
            material of their nearest particle outside the grasp (``MaterialField.hold``): they
            move rigidly with the hand, so the video does not show their material.
        grasp: "joint" and "trajectory_only", with a velocity-driven point-adherent grasp: before
            any simulation, the keyframes are fitted to the video pixels of the part the grasp holds
            (``grasp.fit_grasp_trajectory``), which moves rigidly with the hand whatever the
            material, and the prior ||T - T0|| is centred on the result (``steps`` 0 = off). Fitted
            to the whole image, the trajectory also takes up what the material should explain.
        appearance_steps: before the physics, Adam steps fitting the Gaussians' colours, opacities
            and sizes to the rest frame (``scene.fit_appearance``; 0 = off). Gaussians from a
            reconstruction or sampled from the frame match the video only roughly at rest, and
            that static mismatch otherwise dominates every frame's loss.
        patience / tolerance: stop early when the loss has not improved by ``tolerance``
            (relative) for ``patience`` iterations.
        estimate_nu: optimise Poisson's ratio too (it is weakly observable in most videos).
        field: the material-field parameterisation.
        frame_stride: use every n-th frame of the video in the loss (1 = all).
        resume: continue from the cache folder's checkpoint when it matches the job.
        arch: Taichi arch override ("cpu", "cuda", "auto"), None = the job's.
        cfl: Courant number of the estimator's rollouts when the job sets no fixed substep (None:
            the job's ``solver.cfl``, which bakes always use). Every rollout costs about 1 / cfl,
            but the motion drifts from the converged one with the step: a grasped bar swung by
            its end for 0.5 s under gravity strays from its path at cfl 0.05 by at most 0.22 %
            of its length at 0.1, and 1.83 % at 0.4. On the benchmark (before the grip became a rate,
            ``solver.grip_time``) 0.6 took 2/3 of the time, the same Material Accuracy on
            tow_rope, better on glove (0.34 -> 0.60) and worse on bow_tie (0.70 -> 0.38): a
            faster preview, not the default.
    """

    mode: str = "joint"
    iterations: int | None = None
    lr_material: float = 0.12
    lr_nu: float = 0.05
    lr_trajectory: float = 0.003
    vector_trajectory: bool = True
    key_spacing: int = 1
    final_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    loss: FrameLossWeights = field(default_factory=FrameLossWeights)
    w_smooth: float = 0.05
    smooth_edge: float = 0.05
    w_traj: float = 1.0
    smooth_k: int = 8
    global_fraction: float = 0.5
    trajectory_warmup: float = 0.3
    refine_decades: float = 0.25
    lag_frames: float = 2.0
    lag_step: float = 1.0
    contact_spacings: int = 2
    contact_gain: float = 0.1
    scan_decades: float = 1.0
    scan_points: int = 9
    scan_max_decades: float = 2.5
    scan_regions: int = 4
    region_passes: int = 2
    region_rescan: float = 0.67
    region_gain: float = 0.1
    split_step: float = 0.125
    split_max_decades: float = 1.0
    split_patience: int = 2
    polish: int = 0
    held_from_free: bool = True
    grasp: GraspFitConfig = field(default_factory=GraspFitConfig)
    appearance_steps: int = 100
    patience: int = 6
    tolerance: float = 2e-3
    estimate_nu: bool = True
    field: FieldConfig = field(default_factory=FieldConfig)
    frame_stride: int = 1
    resume: bool = True
    arch: str | None = None
    cfl: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"EstimateConfig.mode: expected one of {MODES}, got {self.mode!r}")
        if self.iterations is not None and self.iterations < 0:
            raise ValueError(f"EstimateConfig.iterations: expected >= 0, got {self.iterations}")
        if not 0.0 <= self.trajectory_warmup < 1.0:
            raise ValueError(f"EstimateConfig.trajectory_warmup: expected a fraction in [0, 1), got {self.trajectory_warmup}")
        if not 0.0 <= self.region_rescan < 1.0:
            raise ValueError(f"EstimateConfig.region_rescan: expected a fraction in [0, 1), got {self.region_rescan}")
        if self.contact_spacings < 0:
            raise ValueError(f"EstimateConfig.contact_spacings: expected >= 0, got {self.contact_spacings}")
        if self.cfl is not None and not self.cfl > 0:
            raise ValueError(f"EstimateConfig.cfl: expected a positive Courant number or None, got {self.cfl}")
        if self.key_spacing < 0:
            raise ValueError(f"EstimateConfig.key_spacing: expected a number of frames >= 0, got {self.key_spacing}")
        if self.polish < 0:
            raise ValueError(f"EstimateConfig.polish: expected a number of rollouts >= 0, got {self.polish}")
        if self.frame_stride < 1 or self.scan_points < 1 or self.patience < 1 or self.split_patience < 1:
            raise ValueError("EstimateConfig: frame_stride, scan_points, patience and split_patience must be >= 1")


@dataclass
class EstimateResult:
    """The estimate: material field [N] (Pa, -), trajectory keyframes, and how it went."""

    E: np.ndarray
    nu: np.ndarray
    trajectory_times: np.ndarray
    trajectory: np.ndarray
    contact: np.ndarray
    history: list[dict[str, Any]]
    iterations: int
    seconds: float
    seconds_per_iteration: float
    psnr: float
    ssim: float
    loss: float
    mode: str
    stopped: bool = False
    warnings: list[str] = field(default_factory=list)  # about the discretisation and tearing (mpm.resolution)

    def summary(self) -> dict[str, Any]:
        logE = np.log10(self.E)
        return {
            "mode": self.mode, "iterations": self.iterations, "seconds": round(self.seconds, 3), "warnings": self.warnings,
            "seconds_per_iteration": round(self.seconds_per_iteration, 3), "psnr": self.psnr, "ssim": self.ssim,
            "loss": self.loss, "stopped": self.stopped,
            "E": {"min": float(self.E.min()), "median": float(np.median(self.E)), "max": float(self.E.max()),
                  "log10_std": float(logE.std())},
            "nu": {"min": float(self.nu.min()), "median": float(np.median(self.nu)), "max": float(self.nu.max())},
            "trajectory_times": self.trajectory_times.tolist(), "trajectory": self.trajectory.tolist(),
        }


class Estimator:
    """Analysis-by-synthesis for one job. Build, then ``run()``; ``evaluate()`` renders the fit."""

    def __init__(self, job: contract.Job, config: EstimateConfig | None = None, folder: str | Path | None = None,
                 observation: Any = None) -> None:
        from physinteract.estimate.bridge import Simulator
        from physinteract.estimate.scene import binding_from_job, fit_appearance, load_observation
        from physinteract.mpm.model import config_from_settings, control_from_job, model_from_job
        from physinteract.mpm.resolution import resolution_report
        from physinteract.mpm.runtime import ensure_taichi
        from physinteract.render import Camera

        self.job = job
        self.config = cfg = config or EstimateConfig()
        torch.set_num_threads(1)
        scfg = config_from_settings(job.solver)
        if cfg.arch is not None:
            scfg.arch = cfg.arch
        if cfg.cfl is not None:
            scfg.cfl = cfg.cfl
        ensure_taichi(scfg.arch, scfg.precision)
        self.observation = observation if observation is not None else load_observation(job, folder)
        model = model_from_job(job, scfg)
        model.tracers = np.zeros((0, 3))
        self.resolution = resolution_report(model.x0, model.dx, scfg.grid_resolution)
        self.control = control_from_job(job)
        if cfg.key_spacing > 0 and cfg.mode != "material_only" and len(self.control.times) >= 2:
            times, values = frame_keyframes(self.control.times, self.control.values, cfg.key_spacing / job.fps)
            self.control = dataclasses.replace(self.control, times=times, values=values)
        self.num_frames = job.num_frames - 1
        if self.num_frames < 1:
            raise ValueError(f"job '{job.name}': field 'frame_end': estimation needs at least two frames")
        self.sim = Simulator(model, self.control, 1.0 / job.fps, self.num_frames, scfg)
        self.binding = binding_from_job(job, self.observation)
        self.field = MaterialField(job.particles, job.labels, job.E, job.nu, cfg.field)
        # [N] the share of each particle a contact set holds when it is in the set: the job's weights, 1 elsewhere
        # (a set grown by the contact search holds its new layers whole)
        self.contact_weight = np.ones(len(job.particles))
        if job.contact_weights is not None:
            self.contact_weight[np.asarray(job.contact, np.int64)] = np.asarray(job.contact_weights, np.float64)
        self._set_contact(self.control.contact)
        self.T0 = torch.tensor(np.asarray(self.control.values, np.float64))  # a copy: the lag scan moves it, not the job
        self.keys = torch.nn.Parameter(self.T0.clone())
        lo, hi = job.particles.min(0), job.particles.max(0)
        self.size = float(np.linalg.norm(hi - lo))
        self.particle_spacing = float(np.median(job.volume)) ** (1.0 / 3.0)  # m: the lattice a filling places particles on
        self.key_scale = self.size if job.interaction.drive == "velocity" else max(float(np.abs(self.T0).max()), 1e-6)
        self.neighbours = knn_graph(torch.as_tensor(job.particles), min(cfg.smooth_k, len(job.particles) - 1))
        self.frames = list(range(1, self.num_frames + 1, cfg.frame_stride))
        if self.frames[-1] != self.num_frames:
            self.frames.append(self.num_frames)
        self.cameras = [Camera.from_contract(job.camera, f) for f in range(self.num_frames + 1)]
        self.appearance = fit_appearance(self.binding, self.observation, self.cameras[0], cfg.loss, cfg.appearance_steps)
        self.history: list[dict[str, Any]] = []
        self.grasp: GraspFit | None = None  # the grasp fit, once run
        self._warm = 0  # the trajectory warm-up's iterations, decided by run() (kept in the checkpoint)
        self.fingerprint = self._fingerprint()

    # ------------------------------------------------------------------ objective

    def _render(self, x: torch.Tensor, F: torch.Tensor, f: int) -> Any:
        from physinteract.render import render

        return render(self.binding.gaussians(x[f].float(), F[f].float()), self.cameras[f], background=self.observation.background)

    def _image_loss(self, x: torch.Tensor, F: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean over the loss frames of Eq. 4's per-frame objective, and its mean terms."""
        total = torch.zeros((), dtype=torch.float32)
        sums = {"l1": 0.0, "ssim": 0.0, "mask": 0.0, "psnr": 0.0}
        for f in self.frames:
            loss, terms = observed_frame_loss(self._render(x, F, f), self.observation, f, self.config.loss)
            total = total + loss
            for k in sums:
                sums[k] += float(terms[k])
        n = len(self.frames)
        return total / n, {k: v / n for k, v in sums.items()}

    def _simulate_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """Forward-only rollout at the current parameters: positions and deformation gradients (numpy)."""
        with torch.no_grad():
            log_E, nu, keys = self._params()
            return self.sim.run(np.exp(log_E.double().numpy()), nu.double().numpy(), keys.double().numpy(), requires_grad=False)

    def E_median(self) -> float:
        """Median Young's modulus (Pa) of the current field."""
        return float(np.exp(np.median(self.field.log_E().detach().numpy())))

    def _params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_E = self.field.log_E()
        nu = self.field.nu() if self.config.estimate_nu else self.field.nu().detach()
        keys = self.keys if self.config.mode != "material_only" else self.T0
        return log_E, nu, keys

    def objective(self) -> tuple[torch.Tensor, dict[str, float]]:
        """The full loss at the current parameters (differentiable) and its terms."""
        from physinteract.estimate.bridge import simulate

        log_E, nu, keys = self._params()
        x, F = simulate(self.sim, log_E, nu, keys)
        img, terms = self._image_loss(x, F)
        smooth = smoothness_loss(log_E, self.neighbours, self.config.smooth_edge)
        traj = ((keys - self.T0) / self.key_scale).square().sum(-1).mean()
        loss = img + self.config.w_smooth * smooth.float() + self.config.w_traj * traj.float()
        terms.update(image=float(img.detach()), smooth=float(smooth.detach()), traj=float(traj.detach()), loss=float(loss.detach()),
                     substeps=self.sim.substeps)
        return loss, terms

    def close(self) -> None:
        """Free the simulator's Taichi fields now (about ``tape_memory_mb`` at the benchmark's
        sizes; Taichi would keep them to the end of the process). Nothing can be simulated after."""
        self.sim.solver.release()

    def forward_loss(self) -> float:
        """The image loss of the current parameters, forward only (the scan); inf when the simulation fails."""
        from physinteract.mpm.rollout import SimulationError

        try:
            xs, Fs = self._simulate_numpy()
        except (SimulationError, ValueError):
            return math.inf
        with torch.no_grad():
            img, _ = self._image_loss(torch.as_tensor(xs), torch.as_tensor(Fs))
        return float(img)

    # ------------------------------------------------------------------ stages

    def scan(self, emit: Callable[..., None] | None = None) -> float:
        """Coarse forward-only search of a uniform factor on E; returns the chosen log10 factor.

        Samples ``scan_points`` factors over +-``scan_decades``, extends the range by a step while
        the best sample sits at its end (up to +-``scan_max_decades``), and refines the best sample
        with a parabola through it and its neighbours. The fine search is ``rescan``, after the
        lag search: a lag of T0 biases E by more than the fine step, and a coarse E biases the lag
        by less than a frame.
        """
        cfg = self.config
        if cfg.scan_decades <= 0 or cfg.scan_points < 2 or cfg.mode == "trajectory_only":
            return 0.0
        h = 2.0 * cfg.scan_decades / (cfg.scan_points - 1)
        z0 = self.field.z.detach().clone()
        d = self._factor_search(z0, 0.0, cfg.scan_decades, h, {}, emit)
        self._set_factor(z0, d)
        return d

    def rescan(self, emit: Callable[..., None] | None = None) -> float:
        """Fine forward-only search of a uniform factor on the current field (after the lag search,
        and after the trajectory warm-up), in steps of a quarter of ``refine_decades``: the current
        factor and one step either side, extended a step at a time while the best is at an end (the
        field is already near its best level: after the warm-up the search mostly ends at these
        three rollouts), then ``polish`` rollouts at parabola vertices. Returns the log10 factor applied."""
        cfg = self.config
        if cfg.refine_decades <= 0 or cfg.mode == "trajectory_only":
            return 0.0
        z0 = self.field.z.detach().clone()
        samples: dict[float, float] = {}
        step = 0.25 * cfg.refine_decades
        d = self._factor_search(z0, 0.0, step, step, samples, emit, kind="rescan", polish=cfg.polish)
        self._set_factor(z0, d)
        return d

    def _set_factor(self, z0: torch.Tensor, d: float | torch.Tensor) -> None:
        """Set the field's control values to ``z0`` times 10^d (d a number or one value per control point)."""
        with torch.no_grad():
            self.field.z.copy_(z0 + math.log(10.0) * d)
            self.field.clamp_()

    def _factor_search(self, z0: torch.Tensor, centre: float, half: float, step: float, samples: dict[float, float],
                       emit: Callable[..., None] | None, kind: str = "scan", polish: int = 0) -> float:
        """Image loss of E x 10^d on the grid centre + k step over +-half (``samples`` caches d -> loss),
        extended while the best is at an end (within +-``scan_max_decades``), parabola-refined
        (``polish``: see ``_line_search``)."""

        def loss(d: float) -> float:
            self._set_factor(z0, d)
            value = self.forward_loss()
            if emit is not None:
                emit(kind, step=len(samples) + 1, log10_factor=round(d, 4), loss=value, substeps=self.sim.substeps)
            return value

        return _line_search(loss, centre, half, step, self.config.scan_max_decades, samples, polish)

    def grasp_fit(self, emit: Callable[..., None] | None = None) -> dict[str, Any] | None:
        """Fit the keyframes to the pixels of the grasped part (see ``EstimateConfig.grasp``) and
        centre the prior on them; returns the fit's summary, or None when it does not apply."""
        from physinteract.estimate.grasp import fit_grasp_trajectory

        cfg = self.config
        c = self.control
        if cfg.mode == "material_only" or c.contact_mode != 1 or len(c.contact) == 0:  # 1: the contact set moves with the hand
            return None
        fit = fit_grasp_trajectory(self.binding, c.contact, len(self.job.particles), self.observation, self.cameras, self.frames,
                                   1.0 / self.job.fps, np.asarray(c.times, np.float64), self.T0.numpy(), self.size, cfg.grasp)
        if fit is None:
            return None
        with torch.no_grad():
            self.keys.copy_(torch.as_tensor(fit.keys))
            self.T0.copy_(torch.as_tensor(fit.keys))
        self.grasp = fit
        if emit is not None:
            emit("grasp_fit", **fit.summary())
        return fit.summary()

    def lag_scan(self, emit: Callable[..., None] | None = None) -> float:
        """Forward-only search of a time offset of T0 (see ``EstimateConfig.lag_frames``) at the
        current material; sets the keyframes and the prior's T0 to the shifted T0. Returns the
        offset in frames (positive: T0 was late)."""
        from physinteract.mpm import spline

        cfg = self.config
        T0 = self.T0.numpy().copy()
        times = np.asarray(self.control.times, np.float64)
        if (cfg.lag_frames <= 0 or cfg.lag_step <= 0 or cfg.mode == "material_only" or len(times) < 2
                or np.ptp(T0, axis=0).max() <= 0 or self.grasp is not None):
            return 0.0
        frame_dt = 1.0 / self.job.fps

        def shifted(tau: float) -> np.ndarray:  # T0(t + tau)
            return spline.shifted(times, T0, tau * frame_dt)

        samples: dict[float, float] = {}

        def loss(tau: float) -> float:
            with torch.no_grad():
                self.keys.copy_(torch.as_tensor(shifted(tau)))
            value = self.forward_loss()
            if emit is not None:
                emit("lag_scan", step=len(samples) + 1, lag_frames=round(tau, 4), loss=value)
            return value

        tau = _line_search(loss, 0.0, cfg.lag_frames, cfg.lag_step, 2.0 * cfg.lag_frames, samples)
        keys = torch.as_tensor(shifted(tau))
        with torch.no_grad():
            self.keys.copy_(keys)
            self.T0.copy_(keys)
        return tau

    def contact_scan(self, emit: Callable[..., None] | None = None) -> tuple[int, float]:
        """Forward-only search of the contact set's extent (see ``EstimateConfig.contact_spacings``)
        together with a uniform factor on E, at the current trajectory.

        A grasp that holds more of the object and a softer object look alike (the free part is
        shorter), so each candidate set is judged at its own best E: a line search of the factor
        in steps of a quarter of ``refine_decades`` from the factor of the nearest set already
        judged (extended while the best is at an end). Sets the contact set and E of the best
        pair; returns the change in particle spacings (positive: grown) and the log10 factor
        applied to E."""
        cfg = self.config
        if cfg.contact_spacings <= 0 or cfg.mode == "material_only" or self.control.contact_mode == 0:
            return 0, 0.0
        sets = contact_sets(self.job.particles, self.control.contact, self.particle_spacing, cfg.contact_spacings)
        z0 = self.field.z.detach().clone()
        step = 0.25 * cfg.refine_decades if cfg.mode != "trajectory_only" and cfg.scan_decades > 0 else 0.0
        samples: dict[float, float] = {}
        factor: dict[int, float] = {}  # spacings -> the log10 factor of E it was judged at

        def loss(r: float) -> float:
            k = int(round(r))
            c = sets.get(k)
            value = math.inf
            if c is not None:
                self._set_contact(c)
                if step > 0:  # the best level reached, polished
                    at: dict[float, float] = {}  # from the nearest set's factor: the next set differs by one layer
                    self._factor_search(z0, _nearest(factor, k), step, step, at, None, polish=cfg.polish)
                    factor[k] = min(at, key=lambda d: at[d])
                    value = at[factor[k]]
                else:
                    value = self.forward_loss()
            if emit is not None:
                emit("contact_scan", step=len(samples) + 1, spacings=k, particles=0 if c is None else len(c), loss=value,
                     log10_factor=round(factor.get(k, 0.0), 4))
            return value

        r = int(round(_line_search(loss, 0.0, 1.0, 1.0, float(cfg.contact_spacings), samples)))
        if not samples.get(_key(r), math.inf) < samples[_key(0.0)] * (1.0 - cfg.contact_gain):
            r = 0
        self._set_contact(sets[r])
        self._set_factor(z0, factor.get(r, 0.0))
        return r, factor.get(r, 0.0)

    def _set_contact(self, contact: np.ndarray) -> None:
        contact = np.asarray(contact, np.int64)
        grip = self.contact_weight[contact]
        self.control = dataclasses.replace(self.control, contact=contact, grip=grip)
        self.sim.control = dataclasses.replace(self.sim.control, contact=contact, grip=grip)
        grasped = self.config.held_from_free and self.control.contact_mode == 1
        self.field.hold(self.control.contact if grasped else None)

    def split_scan(self, current: float, side: np.ndarray, emit: Callable[..., None] | None = None) -> tuple[float, float, float]:
        """Forward-only search of a contrast between two parts of the control points (``side`` [K]
        bool; see ``EstimateConfig.split_step``) from the current field, whose image loss is ``current``.

        The contrast c (log10 of the ratio between the parts, either sign) is searched in steps of
        2 ``split_step`` outward from 0 each way, up to ``split_max_decades``, a direction given up
        after ``split_patience`` steps without a better loss there, then line-searched in steps of
        ``split_step`` from the best; each c is judged at its own best
        level (E x 10^(l + c/2) on one part and 10^(l - c/2) on the other, l line-searched in steps
        of a quarter of ``refine_decades``): the best uniform E is a compromise between the halves,
        so a contrast about it alone fits worse than the same contrast about its own level.
        Returns the log10 factors (a, b) kept for the False and True sides and the loss of the field left;
        a contrast is kept only when it lowers the image loss by ``region_gain`` below the best
        uniform level (which is kept otherwise)."""
        cfg = self.config
        s = cfg.split_step
        if s <= 0 or self.field.num_controls < 2 or cfg.mode == "trajectory_only":
            return 0.0, 0.0, current
        half = torch.as_tensor(np.asarray(side, bool))
        z0 = self.field.z.detach().clone()
        level_step = 0.25 * cfg.refine_decades if cfg.refine_decades > 0 else 0.5 * s
        pair: dict[float, tuple[float, float]] = {}
        best_level: dict[float, float] = {}  # contrast -> its best level
        samples: dict[float, float] = {}

        def at(a: float, b: float) -> float:
            self._set_factor(z0, torch.where(half, b, a).to(z0.dtype))
            return self.forward_loss() if (a, b) != (0.0, 0.0) else current

        def loss(c: float) -> float:
            # from the best level of the nearest contrast searched: it moves little from one contrast step to the next
            levels: dict[float, float] = {}
            _line_search(lambda l: at(l + 0.5 * c, l - 0.5 * c), _nearest(best_level, c), level_step, level_step,
                         cfg.scan_max_decades, levels, cfg.polish)
            l = best_level[_key(c)] = min(levels, key=lambda k: levels[k])
            pair[_key(c)] = (l + 0.5 * c, l - 0.5 * c)
            if emit is not None:
                emit("split_scan", log10_factors=[round(v, 4) for v in pair[_key(c)]], loss=levels[l], best=current)
            return levels[l]

        reach = cfg.split_max_decades + 1e-9
        samples[0.0] = loss(0.0)
        for sign in (1.0, -1.0):  # coarse, outward, patient: the loss along a contrast has ridges
            best_here, misses, c = samples[0.0], 0, 2.0 * s
            while c <= reach and misses < cfg.split_patience:
                value = samples[_key(sign * c)] = loss(sign * c)
                best_here, misses = (value, 0) if value < best_here else (best_here, misses + 1)
                c += 2.0 * s
        _line_search(loss, min(samples, key=lambda k: samples[k]), s, s, cfg.split_max_decades, samples)
        c = min(samples, key=lambda k: samples[k])
        if not samples[c] < samples[0.0] * (1.0 - cfg.region_gain):
            c = 0.0
        a, b = pair[c]
        self._set_factor(z0, torch.where(half, b, a).to(z0.dtype))
        return a, b, samples[c]

    def region_scan(self, emit: Callable[..., None] | None = None) -> list[list[float]]:
        """Forward-only search of stiffness contrasts between coarse parts, after the uniform scans.

        Candidate parts: the control points' two k-means halves, and every two-way grouping of
        ``scan_regions`` k-means regions. Each pass computes the image loss's gradient with respect
        to the control values, g, takes the untried candidate along whose contrast the loss falls
        most steeply (the largest |g . d| / |d|, d = +1 on one side and -1 on the other, less its
        mean), and line-searches that contrast (``split_scan``). Up to ``region_passes`` passes,
        stopping at the first contrast not kept. The gradient only chooses the direction: its
        size says little about how far (the loss has shallow ridges between a uniform field and
        a two-region one, which the forward search crosses). Returns the (a, b) log10 factors kept.
        """
        cfg = self.config
        K = self.field.num_controls
        R = min(cfg.scan_regions, K)
        if R < 2 or cfg.region_passes < 1 or cfg.split_step <= 0 or cfg.mode == "trajectory_only":
            return []
        points = self.job.particles[self.field.control]
        labels = _kmeans(points, R)
        groupings = [_kmeans(points, 2) == 1] + [((mask >> labels) & 1).astype(bool) for mask in range(1, 2 ** (R - 1))]
        # a grouping and its complement are one contrast: keep each once, control point 0 on the False side
        candidates = {tuple(g ^ g[0]) for g in groupings}
        sides = [np.asarray(c) for c in sorted(candidates) if 0 < sum(c) < K]
        kept: list[list[float]] = []
        for step in range(cfg.region_passes):
            if not sides:
                break
            g, current = self._material_gradient()  # and the image loss of the field the last pass left
            scores = []
            for side in sides:
                d = np.where(side, 1.0, -1.0)
                d -= d.mean()
                scores.append(abs(float(g @ d)) / float(np.linalg.norm(d)))
            side = sides.pop(int(np.argmax(scores)))
            if emit is not None:
                emit("region_scan", step=step + 1, controls=int(side.sum()), of=K, gradient=max(scores))
            a, b, _ = self.split_scan(current, side, emit)
            if a == b:  # no contrast kept (at most the uniform level moved)
                break
            kept.append([a, b])
        self.field.clamp_()
        return kept

    def _material_gradient(self) -> tuple[np.ndarray, float]:
        """[K] gradient of the image loss with respect to the control values of log E, and that loss,
        at the current parameters."""
        from physinteract.estimate.bridge import simulate

        log_E, nu, keys = self._params()
        x, F = simulate(self.sim, log_E, nu.detach(), keys.detach())
        img, _ = self._image_loss(x, F)
        (g,) = torch.autograd.grad(img, [self.field.z])
        return g.detach().double().numpy(), float(img.detach())

    def _optimizer(self, iterations: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        cfg = self.config
        groups: list[dict[str, Any]] = []
        if cfg.mode != "trajectory_only":
            groups.append({"params": [self.field.z], "lr": cfg.lr_material, "name": "log_E"})
            if cfg.estimate_nu:
                groups.append({"params": [self.field.theta], "lr": cfg.lr_nu, "name": "nu"})
        if cfg.mode != "material_only":
            groups.append({"params": [self.keys], "lr": cfg.lr_trajectory * self.key_scale, "name": "trajectory",
                           "vector": cfg.vector_trajectory})
        opt = VectorAdamW(groups, weight_decay=cfg.weight_decay)
        return opt, cosine_annealing(opt, iterations, cfg.final_lr_ratio)

    def _fingerprint(self) -> str:
        """Identifies the job and settings a checkpoint belongs to."""
        h = hashlib.sha256()
        for a in (self.job.particles, self.job.contact, self.job.trajectory, self.job.E, self.job.nu):
            h.update(np.ascontiguousarray(a).tobytes())
        if self.job.contact_weights is not None:
            h.update(np.ascontiguousarray(self.job.contact_weights, np.float64).tobytes())
        h.update(json.dumps(asdict(self.config), sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def run(
        self,
        cache_folder: str | Path | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> EstimateResult:
        """Scan, then AdamW with cosine annealing and early stopping. With ``cache_folder`` a
        checkpoint is written after every iteration and progress events go to its events.jsonl."""
        cfg = self.config
        t_start = time.perf_counter()
        iterations = cfg.iterations if cfg.iterations is not None else int(self.job.solver.iterations)
        events = contract.EventLog(Path(cache_folder) / contract.cache.EVENTS_FILE) if cache_folder is not None else None

        def emit(event: str, **fields: Any) -> None:
            ev = events.emit(event, **fields) if events is not None else {"event": event, **fields}
            if progress is not None:
                progress(ev)

        ckpt_path = Path(cache_folder) / CHECKPOINT_FILE if cache_folder is not None else None
        opt, sched = self._optimizer(iterations)
        best: dict[str, Any] = {"loss": math.inf, "z": None, "theta": None, "keys": None, "iteration": -1}
        start_it = 0
        resumed = False
        if ckpt_path is not None and cfg.resume and ckpt_path.is_file():
            state = self._load_checkpoint(ckpt_path)
            if state is not None:
                self.field.load_state_dict(state["field"])
                with torch.no_grad():
                    self.keys.copy_(state["keys"])
                    self.T0.copy_(state["T0"])
                self._set_contact(state["contact"].numpy())
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                start_it = int(state["iteration"])
                self.history = json.loads(state["history"])
                best = {"loss": float(state["best_loss"]), "z": state["best_z"], "theta": state["best_theta"],
                        "keys": state["best_keys"], "iteration": int(state["best_iteration"])}
                self._warm = int(state["warm"])
                resumed = True
        emit("resolution", **self.resolution.summary())
        emit("start", mode=cfg.mode, iterations=iterations, particles=int(len(self.job.particles)),
             gaussians=len(self.binding), frames=len(self.frames), controls=self.field.num_controls,
             resumed=resumed, start_iteration=start_it, appearance=asdict(self.appearance))
        late = int(cfg.region_rescan * iterations)  # 0 (off) never passes the it > warm test below
        lag, grown = 0.0, 0
        if not resumed:
            # coordinate search: the grasp's trajectory from its own pixels, E coarsely, the lag at
            # that E, E finely on the shifted T0, then the contact set
            grasp = self.grasp_fit(emit)
            # a trajectory fitted to the held part's pixels needs no warm-up on the whole image
            self._warm = int(cfg.trajectory_warmup * iterations) if cfg.mode == "joint" and grasp is None else 0
        warm = self._warm
        shared_until = warm + int(cfg.global_fraction * (iterations - warm))
        if not resumed:
            d = self.scan(emit)
            lag = self.lag_scan(emit)
            d += self.rescan(emit) if cfg.scan_decades > 0 else 0.0
            grown, d_contact = self.contact_scan(emit)
            d += d_contact
            # With a warm-up the regions are searched after it: a region's E must not be bent to
            # make up for an error of T0 (a lag shows as a stiffer or softer part near the grasp).
            factors = self.region_scan(emit) if not warm else []
            if cfg.mode != "trajectory_only" and cfg.scan_decades > 0:
                emit("scan_done", log10_factor=d, region_factors=factors, E_median=self.E_median(), lag_frames=lag,
                     contact_spacings=grown, contact_particles=len(self.control.contact))
        stopped = False
        stale = 0
        for it in range(start_it, iterations):
            if should_stop is not None and should_stop():
                stopped = True
                break
            if warm and it == warm and cfg.scan_decades > 0:  # the trajectory is corrected: re-centre E on it
                d = self.rescan(emit)
                factors = self.region_scan(emit)
                emit("rescan_done", log10_factor=d, region_factors=factors, E_median=self.E_median())
            if cfg.mode == "joint" and it == late and it > warm and cfg.scan_decades > 0:  # the trajectory has moved on since
                factors = self.region_scan(emit)
                emit("region_scan_done", iteration=it, region_factors=factors, E_median=self.E_median())
            t0 = time.perf_counter()
            opt.zero_grad()
            loss, terms = self.objective()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"estimation: the loss became {value} at iteration {it}")
            if value < best["loss"] * (1.0 - cfg.tolerance):
                stale = 0
            else:
                stale += 1
            if value < best["loss"]:
                best = {"loss": value, "z": self.field.z.detach().clone(), "theta": self.field.theta.detach().clone(),
                        "keys": self.keys.detach().clone(), "iteration": it}
            loss.backward()
            if it < warm:  # the trajectory alone (AdamW skips parameters without a gradient)
                self.field.z.grad = None
                self.field.theta.grad = None
            elif it < shared_until and self.field.z.grad is not None:
                self.field.z.grad.fill_(float(self.field.z.grad.mean()))
            opt.step()
            sched.step()
            self.field.clamp_()
            dt = time.perf_counter() - t0
            rec = {"iteration": it + 1, "seconds": round(dt, 3), "E_median": self.E_median(), **{k: _round(v) for k, v in terms.items()}}
            self.history.append(rec)
            done = it + 1 - start_it
            eta = (time.perf_counter() - t_start) / max(done, 1) * (iterations - it - 1)
            emit("progress", iterations=iterations, eta_s=round(eta, 1), fraction=(it + 1) / iterations, **rec)
            if ckpt_path is not None:
                self._save_checkpoint(ckpt_path, it + 1, opt, sched, best)
            if stale >= cfg.patience:
                emit("early_stop", iteration=it + 1, best_iteration=best["iteration"] + 1)
                break
        # restore the best parameters seen
        if best["z"] is not None:
            with torch.no_grad():
                self.field.z.copy_(best["z"])
                self.field.theta.copy_(best["theta"])
                self.keys.copy_(best["keys"])
        done_iters = len(self.history)
        fit = self.evaluate()
        tearing = Tearing.of_run(fit["positions"], self.job.frame_start)
        emit("tearing", **tearing.summary("the fit's simulation"))
        seconds = time.perf_counter() - t_start
        grad_seconds = sum(h["seconds"] for h in self.history)
        with torch.no_grad():
            log_E, nu, keys = self._params()
        result = EstimateResult(
            E=np.exp(log_E.double().numpy()), nu=nu.double().numpy(), trajectory_times=np.asarray(self.control.times),
            trajectory=keys.detach().double().numpy().copy(), contact=np.asarray(self.control.contact),
            history=list(self.history), iterations=done_iters, seconds=seconds,
            seconds_per_iteration=grad_seconds / max(done_iters, 1), psnr=fit["psnr"], ssim=fit["ssim"],
            loss=fit["loss"], mode=cfg.mode, stopped=stopped,
            warnings=self.resolution.warnings() + tearing.warnings("the fit's simulation"),
        )
        self.fit = fit
        return result

    def evaluate(self) -> dict[str, Any]:
        """Forward rollout at the current parameters: positions, deformation gradients, PSNR/SSIM on
        every input frame and the image loss over the loss frames (each frame rendered once)."""
        xs, Fs = self._simulate_numpy()
        x, F = torch.as_tensor(xs), torch.as_tensor(Fs)
        psnrs, ssims, losses = [], [], []
        with torch.no_grad():
            for f in range(1, self.num_frames + 1):
                out = self._render(x, F, f)
                img, target = out.rgb.numpy(), self.observation.frames[f].numpy()
                psnrs.append(psnr_np(img, target))
                ssims.append(ssim_np(img, target))
                if f in self.frames:
                    losses.append(float(observed_frame_loss(out, self.observation, f, self.config.loss)[0]))
        return {"positions": xs, "F": Fs, "psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
                "loss": float(np.mean(losses))}

    # ------------------------------------------------------------------ checkpoints

    def _save_checkpoint(self, path: Path, iteration: int, opt: torch.optim.Optimizer,
                         sched: torch.optim.lr_scheduler.LRScheduler, best: dict[str, Any]) -> None:
        state = {
            "fingerprint": self.fingerprint, "iteration": iteration, "field": self.field.state_dict(),
            "keys": self.keys.detach().clone(), "T0": self.T0.clone(),
            "contact": torch.as_tensor(self.control.contact), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "history": json.dumps(self.history), "best_loss": best["loss"], "best_z": best["z"],
            "best_theta": best["theta"], "best_keys": best["keys"], "best_iteration": best["iteration"],
            "warm": self._warm,
        }
        buf = io.BytesIO()
        torch.save(state, buf)
        contract.atomic_write_bytes(path, buf.getvalue())

    def _load_checkpoint(self, path: Path) -> dict[str, Any] | None:
        try:
            state = torch.load(io.BytesIO(path.read_bytes()), weights_only=True)
        except Exception as e:  # a damaged checkpoint: start over rather than fail
            print(f"physinteract estimate: ignoring the unreadable checkpoint {path}: {e}", file=sys.stderr)
            return None
        if not isinstance(state, dict) or state.get("fingerprint") != self.fingerprint:
            return None
        return state


def frame_keyframes(times: np.ndarray, values: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes every ``step`` s (multiples of it, t = 0 at the rest frame) strictly inside the span of
    ``times`` [K] s, plus its first and last times, with the values [M, 3] the spline through (``times``,
    ``values``) takes there: the same path, keyed as finely as the video samples it."""
    from physinteract.mpm import spline

    times = np.asarray(times, np.float64)
    lo, hi = float(times[0]), float(times[-1])
    eps = 1e-6 * step
    grid = np.arange(math.ceil((lo + eps) / step), math.floor((hi - eps) / step) + 1) * step
    new = np.concatenate([[lo], grid[(grid > lo + eps) & (grid < hi - eps)], [hi]])
    return new, spline.evaluate(times, values, new)[0]


def contact_sets(particles: np.ndarray, contact: np.ndarray, spacing: float, most: int) -> dict[int, np.ndarray]:
    """The contact set grown and shrunk by whole particle spacings: r -> particle indices, r in [-most, most].

    Grown by r: the set plus every particle within r spacings of it. Shrunk by r: the set's
    particles farther than r spacings from every particle outside it (its edge peeled off); a
    shrink that would leave fewer than a quarter of the set (a thin or surface-only region) is
    left out. ``particles`` [N, 3] m, ``contact`` [K] indices, ``spacing`` m.
    """
    from physinteract.geometry.neighbors import knn

    contact = np.unique(np.asarray(contact, np.int64))
    x = np.asarray(particles, np.float64)
    outside = np.setdiff1d(np.arange(len(x)), contact)
    to_set = knn(x, x[contact], 1)[0][:, 0]  # [N] distance to the nearest particle of the set
    to_rest = knn(x[contact], x[outside], 1)[0][:, 0] if len(outside) else np.full(len(contact), np.inf)
    tol = 1.0 + 1e-6  # lattice neighbours sit at exactly whole spacings
    sets = {0: contact}
    for r in range(1, most + 1):
        sets[r] = np.flatnonzero(to_set <= r * spacing * tol)
        kept = contact[to_rest > r * spacing * tol]
        if len(kept) >= max(1, len(contact) // 4):
            sets[-r] = kept
    return sets


def _kmeans(points: np.ndarray, k: int, iterations: int = 20) -> np.ndarray:
    """Labels [P] of ``k`` clusters of ``points`` [P, 3] (Lloyd's algorithm from farthest-point seeds)."""
    from physinteract.estimate.field import farthest_points

    centres = points[farthest_points(points, k)]
    labels = np.zeros(len(points), np.int64)
    for _ in range(iterations):
        labels = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        new = np.stack([points[labels == j].mean(0) if np.any(labels == j) else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return labels


def _line_search(loss: Callable[[float], float], centre: float, half: float, step: float, limit: float,
                 samples: dict[float, float], polish: int = 0) -> float:
    """Minimise ``loss`` on the grid centre + k step over +-half, extended by a step while the best
    sample is at an end (within +-limit), then refined by a parabola through the best and its neighbours.
    ``samples`` (point -> loss) is read and filled, so searches sharing it never evaluate a point twice.

    With ``polish`` = 0 the parabola's vertex is returned unevaluated. With ``polish`` = n it is
    evaluated, up to n times, each time fitting the parabola through the best point so far and the
    nearest evaluated points either side of it (successive parabolic interpolation), and the best
    point evaluated is returned: a search whose result is compared with other searches' results
    (the level of each contrast, of each contact set) must compare losses actually reached, and a
    minimum narrower than the step (a large swing's loss doubles within 1/32 decade of E) falls
    between grid points."""
    limit += 1e-9

    def value(x: float) -> float:
        key = _key(x)
        if key not in samples:
            samples[key] = loss(x)
        return samples[key]

    n = max(1, int(round(half / step)))
    values = {_key(centre + k * step): value(centre + k * step) for k in range(-n, n + 1) if abs(centre + k * step) <= limit}
    while True:
        lo, hi = min(values), max(values)
        best = min(values, key=lambda o: values[o])
        if best == lo and lo - step >= -limit:
            values[_key(lo - step)] = value(lo - step)
        elif best == hi and hi + step <= limit:
            values[_key(hi + step)] = value(hi + step)
        else:
            break
    if polish > 0:
        for _ in range(polish):
            x = _parabola_vertex(values, min(values, key=lambda o: values[o]))
            if x is None or any(abs(x - o) < 1e-3 * step for o in values):
                break
            values[_key(x)] = value(x)
        return min(values, key=lambda o: values[o])
    l0, l1, l2 = values.get(_key(best - step), math.inf), values[best], values.get(_key(best + step), math.inf)
    den = l0 - 2 * l1 + l2
    if math.isfinite(l0) and math.isfinite(l2) and den > 0:
        return best + float(np.clip(0.5 * step * (l0 - l2) / den, -0.5 * step, 0.5 * step))
    return best


def _parabola_vertex(values: dict[float, float], b: float) -> float | None:
    """The vertex of the parabola through ``b`` and the nearest points of ``values`` (point -> loss)
    either side of it, when both are finite and the parabola opens upward; else None."""
    below = [o for o in values if o < b and math.isfinite(values[o])]
    above = [o for o in values if o > b and math.isfinite(values[o])]
    if not below or not above or not math.isfinite(values[b]):
        return None
    a, c = max(below), min(above)
    fa, fb, fc = values[a], values[b], values[c]
    p, q = (b - a) * (fb - fc), (b - c) * (fb - fa)
    if not p - q < 0:  # p - q has the sign of minus the curvature: flat or opening downward
        return None
    return b - 0.5 * ((b - a) * p - (b - c) * q) / (p - q)


def _nearest(best: dict[Any, float], x: float) -> float:
    """The value in ``best`` (search point -> the best value found there) at the point nearest to x; 0 when empty.
    A search along a chain of points starts each point's inner search from its neighbour's result."""
    return best[min(best, key=lambda k: abs(k - x))] if best else 0.0


def _key(d: float) -> float:
    """A search point (a log10 factor, a lag in frames) rounded so that points reached by different sums compare equal."""
    return round(d, 6)


def _round(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def estimate_job(
    job: contract.Job,
    cache_folder: str | Path | None,
    config: EstimateConfig | None = None,
    *,
    job_folder: str | Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EstimateResult:
    """Estimate ``job``'s material field and trajectory from its video; write an "estimate" cache.

    The cache holds the fitted motion (point set "particles", plus the job's point sets moved with
    the particles), the material (material_E.npy, material_nu.npy), the estimated trajectory and
    a summary (estimate.json), the checkpoint that lets an interrupted run resume, and
    events.jsonl (start, scan, progress with losses and ETA, done). Video paths are resolved
    against ``job_folder``.
    """
    if cache_folder is None:
        bare = Estimator(job, config, job_folder)
        try:
            return bare.run(None, progress, should_stop)
        finally:
            bare.close()
    cache = Path(cache_folder)
    cache.mkdir(parents=True, exist_ok=True)
    events = contract.EventLog(cache / contract.cache.EVENTS_FILE)
    est: Estimator | None = None
    try:
        est = Estimator(job, config, job_folder)
        result = est.run(cache, progress, should_stop)
        write_estimate_cache(cache, job, est, result)
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        events.emit("error", message=msg)
        raise
    finally:
        if est is not None:
            est.close()
    events.emit("done", **{k: v for k, v in result.summary().items() if k not in ("trajectory", "trajectory_times")})
    return result


def write_estimate_cache(cache: Path, job: contract.Job, est: Estimator, result: EstimateResult) -> None:
    """Write the fitted frames, the material, trajectory and summary into the cache folder."""
    from physinteract.geometry import interpolate_from_particles

    fit = est.fit
    sets = [contract.PointSetInfo("particles", len(job.particles))]
    for ps in job.point_sets:
        sets.append(contract.PointSetInfo(ps.name, len(ps.rest_positions),
                                          world_to_object=np.linalg.inv(np.asarray(ps.object_to_world, np.float64))))
    writer = contract.CacheWriter(cache, kind="estimate", fps=job.fps, frame_start=job.frame_start, frame_end=job.frame_end,
                                  point_sets=sets, job=job.name, metadata={"mode": result.mode})
    for i in range(job.num_frames):
        x = fit["positions"][i]
        data: dict[str, dict[str, np.ndarray]] = {"particles": {"positions": x}}
        for ps in job.point_sets:
            px, _ = interpolate_from_particles(ps.rest_positions, job.particles, x, fit["F"][i])
            data[ps.name] = {"positions": px}
        writer.write_frame(job.frame_start + i, data)
    writer.write_material(result.E, result.nu)
    contract.atomic_save_npy(cache / "estimate_trajectory.npy", result.trajectory)
    contract.atomic_save_npy(cache / "estimate_trajectory_times.npy", result.trajectory_times)
    contact = np.asarray(result.contact, np.int64)
    contract.atomic_save_npy(cache / contract.CONTACT_FILE, contact)
    contract.atomic_save_npy(cache / contract.CONTACT_WEIGHTS_FILE, est.contact_weight[contact])
    contract.atomic_write_json(cache / contract.ESTIMATE_SUMMARY_FILE, {**result.summary(), "history": result.history})
    writer.finish("cancelled" if result.stopped else "complete", "stopped by request" if result.stopped else "")
