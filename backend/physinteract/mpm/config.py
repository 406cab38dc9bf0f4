"""Solver settings: a nested dataclass with documented defaults (no taichi here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from physinteract.contract.job import GROUND_MODES


@dataclass
class GroundConfig:
    """A ground plane z = ``height`` (m, world, +Z up); ``None`` = no ground.

    mode: "sticky" (grid velocity zeroed below the plane), "slip" (normal
        velocity removed, tangential kept, frictionless) or "separate" (normal
        velocity removed only when moving into the plane, Coulomb friction
        ``friction`` on the tangential part; the object can lift off).
    """

    height: float | None = None
    friction: float = 0.5
    mode: str = "separate"


@dataclass
class SolverConfig:
    """MLS-MPM settings. SI units (m, s), world frame (Blender, +Z up).

    grid_resolution: cells along the longest side of the domain; dx = longest side / resolution.
    domain_min / domain_max: the domain box (m); None = bounding box of the particles
        (and tracers) padded by ``domain_padding`` times its longest side on every side.
    substep_dt: fixed substep (s); None = from the CFL and elastic wave-speed limits:
        dt = cfl * dx / max(sqrt((lambda + 2 mu) / rho), |v|max), rounded so a frame holds
        a whole number of substeps.
    cfl: Courant number for the automatic substep.
    max_substeps_per_frame: refuse (clear error) rather than run more substeps than this.
    gravity: m/s^2.  damping: grid velocity damping rate (1/s), v *= exp(-damping dt).
    pic_time: relaxation time (s) of the particle velocities toward the grid's. A particle's new
        velocity is the gathered grid velocity (APIC) plus a share a = 1 - min(1, dt / pic_time) of
        its own velocity that the grid could not hold (FLIP). The APIC transfer alone loses that
        part at every substep, so its damping grows with the number of substeps: a freely vibrating
        bar kept 4 % of its energy over 0.4 s at cfl 0.1 and 40 % at cfl 0.4. With 0.1 s it keeps
        76 % and 80 %; with 0.01 s, 64 % and 75 %. The PIC share damps particle-scale velocity noise
        that the grid cannot see. 0 = pure APIC.
    walls: free-slip walls ``wall_cells`` cells inside the domain box (off for conservation tests).
    arch: "auto" (CUDA when present, else CPU), "cpu" or "cuda".  precision: "f32" or "f64".
    polar_iterations: Newton iterations of the polar decomposition F = R S (unrolled, differentiable).
    on_failure: "raise" (NaN/Inf or particles leaving the domain raise SimulationError naming
        the frame and substep) or "retry" (rerun the frame with half the substep, ``max_retries`` times).
    backward_segment: substeps held on the device during the backward pass (the tape length);
        memory grows with it (about 260 bytes per particle per substep in f32) and with the number
        of output frames, not with substeps per frame. At or above a frame's substeps the backward
        pass recomputes nothing but the taped segment: 128 covers a frame of the soft objects here
        at 24 fps (measured on the benchmark's tow_rope, 117 substeps a frame, 3566 particles: the
        simulator's backward 9.0 s with 32, 7.5 s with 128, the same gradient; 36 -> 135 MB).
    tape_memory_mb: memory (MB) that the estimator's differentiable rollouts may fill with taped
        substeps (particle states and grid blocks). Their forward pass keeps the last frames' substeps
        on the tape, as many whole frames as fit, and the backward pass runs those frames' adjoints
        without recomputing them (the earlier frames are recomputed from their checkpoints, as above).
        About 1 MB per substep at 3.5k particles in f32; 0 keeps ``backward_segment`` substeps.
    """

    grid_resolution: int = 64
    domain_min: tuple[float, float, float] | None = None
    domain_max: tuple[float, float, float] | None = None
    domain_padding: float = 0.5
    substep_dt: float | None = None
    cfl: float = 0.4
    max_substeps_per_frame: int = 20000
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    damping: float = 0.0
    pic_time: float = 0.1
    ground: GroundConfig = field(default_factory=GroundConfig)
    walls: bool = True
    wall_cells: int = 2
    arch: str = "auto"
    precision: str = "f32"
    polar_iterations: int = 8
    on_failure: str = "raise"
    max_retries: int = 3
    backward_segment: int = 128
    tape_memory_mb: float = 3072.0

    def __post_init__(self) -> None:
        if self.grid_resolution < 4:
            raise ValueError(f"SolverConfig.grid_resolution: expected at least 4 cells, got {self.grid_resolution}")
        if self.precision not in ("f32", "f64"):
            raise ValueError(f"SolverConfig.precision: expected 'f32' or 'f64', got {self.precision!r}")
        if self.arch not in ("auto", "cpu", "cuda"):
            raise ValueError(f"SolverConfig.arch: expected 'auto', 'cpu' or 'cuda', got {self.arch!r}")
        if self.ground.mode not in GROUND_MODES:
            raise ValueError(f"SolverConfig.ground.mode: expected one of {GROUND_MODES}, got {self.ground.mode!r}")
        if self.on_failure not in ("raise", "retry"):
            raise ValueError(f"SolverConfig.on_failure: expected 'raise' or 'retry', got {self.on_failure!r}")
        if not self.cfl > 0:
            raise ValueError(f"SolverConfig.cfl: expected a positive Courant number, got {self.cfl}")
        if not self.pic_time >= 0:
            raise ValueError(f"SolverConfig.pic_time: expected >= 0 s, got {self.pic_time}")
        if self.backward_segment < 1:
            raise ValueError(f"SolverConfig.backward_segment: expected >= 1, got {self.backward_segment}")
        if not self.tape_memory_mb >= 0:
            raise ValueError(f"SolverConfig.tape_memory_mb: expected >= 0 MB, got {self.tape_memory_mb}")
