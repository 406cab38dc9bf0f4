"""The torch <-> Taichi bridge: a differentiable MPM rollout as a ``torch.autograd.Function``.

``simulate(sim, log_E, nu, keyframes)`` runs the Taichi simulator forward and returns the
particle positions and deformation gradients at every output frame as torch tensors; their
gradients flow back through the simulator's own adjoint (``Rollout.backward``) to the
per-particle log Young's modulus, Poisson's ratio and the trajectory keyframes.

Units SI (m, Pa), world frame (Blender, +Z up).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from physinteract.mpm.config import SolverConfig
from physinteract.mpm.model import Control, Model
from physinteract.mpm.rollout import Rollout
from physinteract.mpm.solver import MPMSolver, cfl_substeps, tape_slots


class Simulator:
    """One Taichi solver reused across optimiser iterations (fields are allocated once).

    Args:
        model: particles, grid and an initial material (E, nu are replaced per call).
        control: the interaction; its keyframe ``values`` are replaced per call.
        frame_dt: seconds between output frames.  num_frames: output frames after the rest frame.
        config: solver settings (default ``model.config``).
    """

    def __init__(self, model: Model, control: Control, frame_dt: float, num_frames: int, config: SolverConfig | None = None) -> None:
        self.model = model
        self.control = control
        self.frame_dt = float(frame_dt)
        self.num_frames = int(num_frames)
        self.config = config or model.config
        # room on the tape for the whole rollout at up to twice the initial material's substeps (4x
        # stiffer), within config.tape_memory_mb; a stiffer rollout keeps only its last frames there
        s0 = cfl_substeps(model, control, self.frame_dt, self.frame_dt * self.num_frames, self.config)
        slots, tape_nodes = tape_slots(model, self.config, 2 * s0 * self.num_frames)
        self.solver = MPMSolver(model, self.config, slots=slots, requires_grad=True, tape_nodes=tape_nodes)
        self.rollout: Rollout | None = None
        self.substeps = 0

    def rollout_for(self, E: np.ndarray, nu: np.ndarray, keyframes: np.ndarray, requires_grad: bool = True) -> Rollout:
        """A Rollout of this scene with material (E [N] Pa, nu [N]) and trajectory ``keyframes`` [M, 3].

        Substeps come from the CFL limit of this material (the stiffest particle sets the step).
        """
        model = dataclasses.replace(self.model, E=np.asarray(E, np.float64), nu=np.asarray(nu, np.float64))
        control = dataclasses.replace(self.control, values=np.asarray(keyframes, np.float64).reshape(-1, 3))
        self.substeps = cfl_substeps(model, control, self.frame_dt, self.frame_dt * self.num_frames, self.config)
        self.solver.set_material(model.E, model.nu)
        self.rollout = Rollout(model, control, self.frame_dt, self.num_frames, self.config,
                               requires_grad=requires_grad, substeps=self.substeps, solver=self.solver)
        return self.rollout

    def run(self, E: np.ndarray, nu: np.ndarray, keyframes: np.ndarray, requires_grad: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Simulate every frame: positions [F+1, N, 3] (m) and deformation gradients [F+1, N, 3, 3];
        ``self.rollout`` keeps the checkpoints for a backward pass."""
        rollout = self.rollout_for(E, nu, keyframes, requires_grad)
        x = rollout.forward()
        return x, np.stack([s.F for s in rollout.checkpoints])


class _RolloutFunction(torch.autograd.Function):
    """(log_E [N], nu [N], keyframes [M, 3]) -> (positions [F+1, N, 3], deformation gradients [F+1, N, 3, 3])."""

    @staticmethod
    def forward(ctx: Any, log_E: Tensor, nu: Tensor, keyframes: Tensor, sim: Simulator) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        E = np.exp(log_E.detach().cpu().double().numpy())
        x, F = sim.run(E, nu.detach().cpu().double().numpy(), keyframes.detach().cpu().double().numpy())
        ctx.rollout = sim.rollout
        ctx.meta = (log_E.dtype, log_E.device)
        return torch.as_tensor(x, dtype=log_E.dtype, device=log_E.device), torch.as_tensor(F, dtype=log_E.dtype, device=log_E.device)

    @staticmethod
    def backward(ctx: Any, grad_x: Tensor | None, grad_F: Tensor | None) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        rollout: Rollout = ctx.rollout
        dtype, device = ctx.meta
        frames = range(1, rollout.num_frames + 1)
        gx = {} if grad_x is None else {f: grad_x[f].detach().cpu().double().numpy() for f in frames}
        gF = {} if grad_F is None else {f: grad_F[f].detach().cpu().double().numpy() for f in frames}
        g = rollout.backward(gx, gF)
        ctx.rollout = None  # release the checkpoints

        def t(a: np.ndarray) -> Tensor:
            return torch.as_tensor(a, dtype=dtype, device=device)

        return t(g.log_E), t(g.nu), t(g.keyframes), None


def simulate(sim: Simulator, log_E: Tensor, nu: Tensor, keyframes: Tensor) -> tuple[Tensor, Tensor]:
    """Differentiable rollout: positions [F+1, N, 3] (m, world; index 0 = rest) and deformation
    gradients [F+1, N, 3, 3] of ``sim`` with log E [N] (E in Pa), nu [N] and keyframes [M, 3]."""
    return _RolloutFunction.apply(log_E, nu, keyframes, sim)  # type: ignore[no-any-return]
