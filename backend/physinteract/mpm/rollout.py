"""Rollouts over output frames: forward with per-frame checkpoints, and the backward pass.

Memory: the forward pass keeps one host-side State per output frame. The backward
pass handles one frame at a time: it recomputes the frame's substeps from its
checkpoint, keeping a segment start every ``backward_segment`` substeps (the short
remainder segment first), and runs each segment forward on the device tape
(``backward_segment + 1`` slots, with each substep's active grid block) and then
backwards. Memory therefore grows with the number of output frames (plus
substeps / backward_segment segment starts of a single frame), not with substeps.

Speed: a frame of s substeps costs s substeps forward; its backward costs s taped
substeps, the adjoints, and max(0, s - backward_segment) substeps to reach the segment
starts, so ``backward_segment`` >= substeps per frame avoids that recomputation.

Kept frames: when the solver has slots for it, the forward pass of a differentiable rollout
runs its last frames on the tape itself (as many whole frames as fit, slot k holding substep
k of that window), and the backward pass runs their adjoints straight away: those frames
cost s substeps and the adjoints, nothing recomputed. The window is used only while no other
rollout has run on the solver since this one's forward pass (``MPMSolver.generation``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from physinteract.mpm.config import SolverConfig
from physinteract.mpm.model import Control, Model, State, dnu_dtheta, theta_from_nu
from physinteract.mpm.solver import MPMSolver, cfl_substeps, grip_time


class SimulationError(RuntimeError):
    """The simulation blew up (NaN/Inf) or particles left the domain, at ``frame`` / ``substep``."""

    def __init__(self, frame: int, substep: int, reason: str) -> None:
        self.frame, self.substep, self.reason = frame, substep, reason
        super().__init__(
            f"simulation failed at frame {frame}, substep {substep}: {reason}. "
            "Try a smaller substep (lower cfl or set substep_dt), on_failure='retry', a larger domain, or a softer material."
        )


@dataclass
class Gradients:
    """dL/d(parameters) of a scalar loss L of the output frames.

    log_E: [N] dL/dlog(E).  nu: [N] dL/dnu.  theta: [N] dL/dtheta of the bounded map
    nu = NU_MAX sigmoid(theta).  keyframes: [M, 3] dL/d(trajectory values) (positions
    for the velocity drive, forces for the force drive).  v0: [N, 3] dL/d(initial velocity)
    (sum over particles for a uniform initial velocity).  x0: [N, 3] dL/d(rest positions).
    """

    log_E: np.ndarray
    nu: np.ndarray
    theta: np.ndarray
    keyframes: np.ndarray
    v0: np.ndarray
    x0: np.ndarray


class Rollout:
    """A differentiable simulation of ``num_frames`` output frames at ``frame_dt`` seconds.

    Usage::

        sim = Rollout(model, control, frame_dt=1 / 24, num_frames=10, requires_grad=True)
        xs = sim.forward()                    # [num_frames + 1, N, 3], xs[0] = rest
        g = sim.backward({10: dL_dx})         # Gradients
    """

    def __init__(
        self,
        model: Model,
        control: Control,
        frame_dt: float,
        num_frames: int,
        config: SolverConfig | None = None,
        *,
        requires_grad: bool = False,
        substeps: int | None = None,
        solver: MPMSolver | None = None,
    ) -> None:
        self.model = model
        self.control = control
        self.config = cfg = config or model.config
        self.frame_dt = float(frame_dt)
        self.num_frames = int(num_frames)
        self.requires_grad = requires_grad
        self.segment = cfg.backward_segment
        slots = self.segment + 1 if requires_grad else 2
        self.solver = solver or MPMSolver(model, cfg, slots=slots, requires_grad=requires_grad)
        s0 = substeps or cfl_substeps(model, control, self.frame_dt, self.frame_dt * self.num_frames, cfg)
        self.grip_time = grip_time(model, control, self.frame_dt, self.frame_dt * self.num_frames, cfg)
        self.substeps: list[int] = [s0] * self.num_frames
        self.checkpoints: list[State] = []
        self.tracer_frames: list[tuple[np.ndarray, np.ndarray]] = []
        self.kept = self.num_frames  # first frame whose substeps the forward pass left on the tape
        self._generation = -1  # the solver's generation this rollout's forward pass left in its slots
        self._kept_taped = np.zeros(0, bool)  # which of those substeps' grids the tape holds

    # ------------------------------------------------------------------ forward

    def _table(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        s = self.substeps[frame]
        dt = self.frame_dt / s
        table, wp, wv, wf = self.control.substep_table(frame * self.frame_dt, dt, s)
        return table, wp, wv, wf, dt

    def _run(self, slot: int, table: np.ndarray, dt: float, tracers: bool = False,
             check: Callable[[int, int], None] | None = None) -> int:
        """Advance from ``slot`` through ``len(table)`` substeps, ping-ponging slots 0 and 1.
        ``check(substep, slot)`` runs after every substep when given. Returns the final slot."""
        sv = self.solver
        k = 0
        while k < len(table):
            chunk = table[k : k + sv.slots]
            sv.upload_ctrl(chunk)
            for j in range(len(chunk)):
                so = 1 - slot
                sv.substep(slot, so, j, dt, tracers)
                slot = so
                if check is not None:
                    check(k + j, slot)
            k += len(chunk)
        return slot

    def _problem(self, x: np.ndarray) -> str | None:
        if not np.all(np.isfinite(x)):
            return f"{int((~np.isfinite(x).any(axis=1)).sum())} particles have NaN or Inf positions"
        lo = self.model.domain_min + self.model.dx
        hi = self.model.domain_max - self.model.dx
        out = np.any((x < lo) | (x > hi), axis=1)
        if np.any(out):
            return f"{int(out.sum())} particles left the domain {self.model.domain_min}..{self.model.domain_max} m"
        return None

    def _locate(self, frame: int, table: np.ndarray, dt: float) -> SimulationError:
        """Rerun a failed frame substep by substep to name the first bad substep."""
        sv = self.solver
        sv.generation += 1
        sv.write_state(0, self.checkpoints[frame])

        def check(k: int, slot: int) -> None:
            why = self._problem(sv.read_positions(slot))
            if why:
                raise SimulationError(frame, k, why)

        try:
            self._run(0, table, dt, check=check)
        except SimulationError as e:
            return e
        return SimulationError(frame, len(table) - 1, "the frame failed, but not when rerun substep by substep")

    def forward(
        self,
        state0: State | None = None,
        *,
        tracers: bool = False,
        on_frame: Callable[[int, State], bool | None] | None = None,
    ) -> np.ndarray:
        """Run all frames from ``state0`` (default: the model's rest state and v0).

        Stores the per-frame checkpoints. ``on_frame(frame, state)`` is called after each
        frame (1-based); returning True stops early. With ``tracers`` the tracers start at their
        rest positions (model.tracers, F = I) and their positions and deformation gradients are
        recorded in ``tracer_frames`` (index 0 = rest). With ``on_failure="retry"`` a failed frame
        restarts from its checkpoint (particles and tracers) with half the substep.
        Returns positions [frames + 1, N, 3] (m), index 0 the start state.
        """
        sv = self.solver
        sv.generation += 1  # the slots are this rollout's from now on
        self._generation = sv.generation
        sv.set_control(self.control)
        sv.grip_time[None] = self.grip_time
        keep = self._window() if not tracers else self.num_frames
        self.kept, taped = self.num_frames, []
        state = (state0 or State.rest(self.model)).copy()
        self.checkpoints = [state]
        if tracers:
            nt = self.model.num_tracers
            sv.write_tracers(self.model.tracers, np.tile(np.eye(3), (nt, 1, 1)))
            self.tracer_frames = [sv.read_tracers()]
        positions = [state.x.copy()]
        sv.write_state(0, state)
        for f in range(self.num_frames):
            retries = 0
            while True:
                table, _, _, _, dt = self._table(f)
                if f >= keep:  # on the tape: slot k holds substep k of the window
                    if f == keep:
                        sv.upload_ctrl(np.concatenate([self._table(g)[0] for g in range(keep, self.num_frames)]))
                    first = (f - keep) * len(table)
                    taped.append(sv.taped_substeps(len(table), dt, first))
                    slot = first + len(table)
                else:
                    slot = self._run(0, table, dt, tracers=tracers)
                new = sv.read_state(slot, (f + 1) * self.frame_dt)
                why = self._problem(new.x)
                if why is None:
                    break
                if self.config.on_failure == "retry" and retries < self.config.max_retries:
                    retries += 1
                    keep, taped = self.num_frames, []  # the substeps change: no window
                    for g in range(f, self.num_frames):
                        self.substeps[g] *= 2
                    sv.write_state(0, self.checkpoints[f])
                    if tracers:
                        sv.write_tracers(*self.tracer_frames[f])
                    continue
                raise self._locate(f, table, dt)
            self.checkpoints.append(new)
            positions.append(new.x.copy())
            if tracers:
                self.tracer_frames.append(sv.read_tracers())
            if slot != 0 and f < keep:
                sv.write_state(0, new)
            if on_frame is not None and on_frame(f + 1, new):
                break
        if keep < self.num_frames and len(self.checkpoints) == self.num_frames + 1:
            self.kept, self._kept_taped = keep, np.concatenate(taped)
        return np.stack(positions)

    def _window(self) -> int:
        """The first of the last frames that fit on the solver's tape whole (num_frames: none)."""
        s = self.substeps[0]
        if not self.requires_grad or any(c != s for c in self.substeps):
            return self.num_frames
        return self.num_frames - min(self.num_frames, (self.solver.slots - 1) // s)

    # ------------------------------------------------------------------ backward

    def backward(
        self,
        grad_x: dict[int, np.ndarray],
        grad_F: dict[int, np.ndarray] | None = None,
    ) -> Gradients:
        """Reverse-mode gradients of a loss whose adjoints at output frames are given.

        Args:
            grad_x: frame index (1..num_frames) -> dL/dx [N, 3] at that frame.
            grad_F: frame index -> dL/dF [N, 3, 3] (optional).
        """
        if not self.requires_grad:
            raise RuntimeError("Rollout was built with requires_grad=False")
        if len(self.checkpoints) != self.num_frames + 1:
            raise RuntimeError("call forward() over all frames before backward()")
        sv = self.solver
        keep = self.kept if sv.generation == self._generation else self.num_frames  # another rollout ran since: recompute
        sv.generation += 1
        sv.grip_time[None] = self.grip_time
        grad_F = grad_F or {}
        n, m = self.model.num_particles, len(self.control.times)
        sv.log_E.grad.fill(0)
        sv.nu.grad.fill(0)
        g_keys = np.zeros((m, 3))
        zero3, zero33 = np.zeros((n, 3)), np.zeros((n, 3, 3))
        adj = (zero3, zero3, zero33, zero33)  # dL/d(x, v, C, F) at the current frame end
        L = self.segment
        if keep < self.num_frames:
            sv.clear_state_grads(len(self._kept_taped) + 1)
            sv.ctrl.grad.fill(0)
        for f in reversed(range(self.num_frames)):
            table, wp, wv, wf, dt = self._table(f)
            s = len(table)
            if f >= keep:  # its substeps are still on the tape from the forward pass
                first = (f - keep) * s
                sv.add_adjoint(first + s, grad_x.get(f + 1), None, None, grad_F.get(f + 1))
                for k in reversed(range(first, first + s)):
                    sv.substep_grad(k, k + 1, k, dt, bool(self._kept_taped[k]))
                g_ctrl = sv.ctrl.grad.to_numpy()[first : first + s]
                if f == keep:
                    adj = sv.read_adjoint(0)
                g_keys += self._key_grads(g_ctrl, wp, wv, wf)
                continue
            adj = (adj[0] + grad_x.get(f + 1, zero3), adj[1], adj[2], adj[3] + grad_F.get(f + 1, zero33))
            # segment starts, recomputed from the frame checkpoint; the short remainder segment
            # comes first so that only s - L substeps are recomputed to reach the last start
            starts = [0] + list(range(s % L or L, s, L))
            seg_states = [self.checkpoints[f]]
            sv.write_state(0, self.checkpoints[f])
            slot = 0
            for j in range(1, len(starts)):
                slot = self._run(slot, table[starts[j - 1] : starts[j]], dt)
                seg_states.append(sv.read_state(slot))
            g_ctrl = np.zeros((s, 4, 3))
            for j in reversed(range(len(starts))):
                a = starts[j]
                count = (starts[j + 1] if j + 1 < len(starts) else s) - a
                sv.write_state(0, seg_states[j])
                sv.upload_ctrl(table[a : a + count])
                taped = sv.taped_substeps(count, dt)
                sv.clear_state_grads(count + 1)
                sv.ctrl.grad.fill(0)
                sv.add_adjoint(count, *adj)
                for k in reversed(range(count)):
                    sv.substep_grad(k, k + 1, k, dt, bool(taped[k]))
                g_ctrl[a : a + count] = sv.ctrl.grad.to_numpy()[:count]
                adj = sv.read_adjoint(0)
            g_keys += self._key_grads(g_ctrl, wp, wv, wf)
        self.kept = self.num_frames  # a second backward pass recomputes: frames before the window reuse its slots
        g_nu = sv.nu.grad.to_numpy().astype(np.float64)
        theta = theta_from_nu(np.clip(sv.nu.to_numpy().astype(np.float64), 1e-9, 0.49 - 1e-9))
        return Gradients(
            log_E=sv.log_E.grad.to_numpy().astype(np.float64),
            nu=g_nu,
            theta=g_nu * dnu_dtheta(theta),
            keyframes=g_keys,
            v0=adj[1],
            x0=adj[0],
        )

    def _key_grads(self, g_ctrl: np.ndarray, wp: np.ndarray, wv: np.ndarray, wf: np.ndarray) -> np.ndarray:
        """dL/d(keyframes) [M, 3] of a frame from dL/d(its control rows) [s, 4, 3] and the rows'
        keyframe weights (positions wp, velocities wv, forces wf: [s, M])."""
        if self.control.drive == "velocity":
            return wp.T @ g_ctrl[:, 0] + wv.T @ (g_ctrl[:, 1] + g_ctrl[:, 2])
        return wf.T @ g_ctrl[:, 3]
