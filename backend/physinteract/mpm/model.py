"""Model (fixed during a step), Control (the interaction input) and host-side State.

numpy only: building a model never imports taichi. Units SI (m, kg, s, Pa, N),
world frame (Blender, +Z up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from physinteract.mpm import spline
from physinteract.mpm.config import GroundConfig, SolverConfig

if TYPE_CHECKING:
    from physinteract.contract import Job, SolverSettings

INTERACTIONS = ("none", "point_adherent", "point_non_adherent", "surface_non_adherent")
COLLIDERS = ("none", "sphere", "capsule", "plane")
NU_MAX = 0.49  # upper bound of the bounded Poisson map nu = NU_MAX * sigmoid(theta)


@dataclass
class Model:
    """Particles, material field and grid, fixed during a simulation.

    x0: [N, 3] rest positions (m, world).  v0: [N, 3] initial velocity (m/s).
    volume: [N] m^3.  density: [N] kg/m^3.  E: [N] Pa.  nu: [N] Poisson's ratio in [0, 0.5).
    external_force: [N, 3] constant per-particle force (N, world), e.g. an end load.
    tracers: [T, 3] passive points (render-mesh vertices, Gaussian centres), carried by the grid.
    domain_min: [3] m.  dx: m.  grid_shape: cells per axis.
    """

    x0: np.ndarray
    v0: np.ndarray
    volume: np.ndarray
    density: np.ndarray
    E: np.ndarray
    nu: np.ndarray
    external_force: np.ndarray
    tracers: np.ndarray
    domain_min: np.ndarray
    dx: float
    grid_shape: tuple[int, int, int]
    config: SolverConfig

    @property
    def num_particles(self) -> int:
        return len(self.x0)

    @property
    def num_tracers(self) -> int:
        return len(self.tracers)

    @property
    def mass(self) -> np.ndarray:
        return self.volume * self.density

    @property
    def domain_max(self) -> np.ndarray:
        return self.domain_min + self.dx * np.asarray(self.grid_shape, np.float64)

    def lame(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu, lambda) [N] in Pa from (E, nu)."""
        mu = self.E / (2.0 * (1.0 + self.nu))
        lam = self.E * self.nu / ((1.0 + self.nu) * (1.0 - 2.0 * self.nu))
        return mu, lam

    def p_wave_speed(self) -> float:
        """max over particles of sqrt((lambda + 2 mu) / rho), m/s."""
        mu, lam = self.lame()
        return float(np.sqrt(np.max((lam + 2.0 * mu) / self.density)))


def make_model(
    x0: np.ndarray,
    volume: np.ndarray | float,
    density: np.ndarray | float,
    E: np.ndarray | float,
    nu: np.ndarray | float,
    config: SolverConfig | None = None,
    *,
    v0: np.ndarray | None = None,
    external_force: np.ndarray | None = None,
    tracers: np.ndarray | None = None,
) -> Model:
    """Build a Model, choosing the domain and grid from the particles' real size.

    The domain is ``config.domain_min/max`` when given, else the bounding box of
    particles and tracers padded by ``domain_padding`` x its longest side (at
    least 4 cells) on each side. dx = longest domain side / grid_resolution.
    """
    cfg = config or SolverConfig()
    x0 = np.asarray(x0, np.float64).reshape(-1, 3)
    n = len(x0)
    if n == 0:
        raise ValueError("make_model: no particles")

    def per_particle(name: str, a: np.ndarray | float) -> np.ndarray:
        arr = np.broadcast_to(np.asarray(a, np.float64), (n,)).copy()
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"make_model: '{name}' has NaN or Inf")
        return arr

    vol, rho, E_, nu_ = (per_particle(k, a) for k, a in (("volume", volume), ("density", density), ("E", E), ("nu", nu)))
    for name, arr in (("volume", vol), ("density", rho), ("E", E_)):
        if np.any(arr <= 0):
            raise ValueError(f"make_model: '{name}' must be positive (SI units), min {arr.min()}")
    if np.any((nu_ < 0) | (nu_ >= 0.5)):
        raise ValueError(f"make_model: 'nu' must lie in [0, 0.5), range [{nu_.min()}, {nu_.max()}]")
    tr = np.zeros((0, 3)) if tracers is None else np.asarray(tracers, np.float64).reshape(-1, 3)
    pts = np.concatenate([x0, tr])
    if cfg.domain_min is not None and cfg.domain_max is not None:
        lo, hi = np.asarray(cfg.domain_min, np.float64), np.asarray(cfg.domain_max, np.float64)
        if np.any(hi <= lo):
            raise ValueError(f"SolverConfig.domain_max {hi} must exceed domain_min {lo}")
        dx = float(np.max(hi - lo)) / cfg.grid_resolution
    else:
        bmin, bmax = pts.min(axis=0), pts.max(axis=0)
        size = float(np.max(bmax - bmin))
        if size <= 0:
            size = float(np.cbrt(vol.sum())) or 1.0
        # dx from the padded longest side; padding at least 4 cells each side
        longest = size * (1.0 + 2.0 * cfg.domain_padding)
        dx = longest / cfg.grid_resolution
        pad = np.maximum(cfg.domain_padding * size, 4.0 * dx)
        lo, hi = bmin - pad, bmax + pad
    shape = tuple(int(max(4, math.ceil((hi[d] - lo[d]) / dx - 1e-9))) for d in range(3))
    inside = np.all((x0 > lo + 2 * dx) & (x0 < lo + dx * (np.asarray(shape) - 2)), axis=1)
    if not np.all(inside):
        raise ValueError(f"make_model: {int((~inside).sum())} particles lie within 2 cells of or outside the domain {lo}..{hi}")
    return Model(
        x0=x0,
        v0=np.zeros((n, 3)) if v0 is None else np.broadcast_to(np.asarray(v0, np.float64), (n, 3)).copy(),
        volume=vol,
        density=rho,
        E=E_,
        nu=nu_,
        external_force=np.zeros((n, 3)) if external_force is None else np.asarray(external_force, np.float64).reshape(n, 3),
        tracers=tr,
        domain_min=np.asarray(lo, np.float64),
        dx=dx,
        grid_shape=shape,  # type: ignore[arg-type]
        config=cfg,
    )


@dataclass
class Control:
    """The interaction: a contact set and/or a kinematic collider driven by a trajectory.

    interaction: one of INTERACTIONS ("none": free motion).
    drive: "velocity": ``values`` are positions (m, world): for point_adherent the
        contact particles move with the displacement p(t) - p(0) of the trajectory
        (velocity boundary condition); for non-adherent types the collider centre
        (sphere/capsule centre, or a point of the plane) is p(t).
        "force": ``values`` are the total force (N, world) spread evenly over the contact set.
    contact: [K] particle indices.  grip: [K] the share of each contact particle the grasp holds,
    in (0, 1] (None: all of each; a particle on the held region's edge is held in part, so the
    edge need not fall on the particle lattice).  times: [M] s from the start.  values: [M, 3].
    collider: one of COLLIDERS; radius (m); axis: capsule half-axis (m, world);
    normal: plane normal (world, the object lies on its + side); friction: Coulomb coefficient.
    """

    interaction: str = "none"
    drive: str = "velocity"
    contact: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    times: np.ndarray = field(default_factory=lambda: np.zeros(1))
    values: np.ndarray = field(default_factory=lambda: np.zeros((1, 3)))
    collider: str = "none"
    radius: float = 0.01
    axis: tuple[float, float, float] = (0.0, 0.0, 0.0)
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    friction: float = 0.0
    grip: np.ndarray | None = None  # after the rest, which callers may pass by position

    def __post_init__(self) -> None:
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"Control.interaction: expected one of {INTERACTIONS}, got {self.interaction!r}")
        if self.drive not in ("velocity", "force"):
            raise ValueError(f"Control.drive: expected 'velocity' or 'force', got {self.drive!r}")
        if self.collider not in COLLIDERS:
            raise ValueError(f"Control.collider: expected one of {COLLIDERS}, got {self.collider!r}")
        self.contact = np.asarray(self.contact, np.int64).reshape(-1)
        if self.grip is not None:
            self.grip = np.asarray(self.grip, np.float64).reshape(-1)
            if len(self.grip) != len(self.contact):
                raise ValueError(f"Control.grip: {len(self.grip)} weights for {len(self.contact)} contact particles")
            if not np.all((self.grip > 0.0) & (self.grip <= 1.0)):
                raise ValueError("Control.grip: each weight must lie in (0, 1]")
        self.times = np.asarray(self.times, np.float64).reshape(-1)
        self.values = np.asarray(self.values, np.float64).reshape(-1, 3)
        if len(self.times) != len(self.values) or len(self.times) == 0:
            raise ValueError(f"Control: {len(self.times)} times but {len(self.values)} keyframe values (need >= 1 each, equal)")
        if np.any(np.diff(self.times) <= 0):
            raise ValueError("Control.times: keyframe times must be strictly increasing")
        if self.interaction == "point_non_adherent" and self.collider not in ("sphere", "capsule"):
            raise ValueError(f"Control: point_non_adherent needs a sphere or capsule collider, got {self.collider!r}")
        if self.interaction == "surface_non_adherent" and self.collider != "plane":
            self.collider = "plane"

    @property
    def collider_active(self) -> bool:
        return self.interaction in ("point_non_adherent", "surface_non_adherent") and self.drive == "velocity"

    @property
    def contact_mode(self) -> int:
        """0 none, 1 velocity boundary condition on the contact set, 2 force on the contact set."""
        if len(self.contact) == 0:
            return 0
        if self.drive == "force":
            return 2
        return 1 if self.interaction == "point_adherent" else 0

    def max_speed(self) -> float:
        """Largest speed of the trajectory (m/s) when it drives positions."""
        if self.drive != "velocity" or len(self.times) < 2:
            return 0.0
        t = np.linspace(self.times[0], self.times[-1], 64 * len(self.times))
        _, v = spline.evaluate(self.times, self.values, t)
        return float(np.max(np.linalg.norm(v, axis=1)))

    def substep_table(self, t0: float, dt: float, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-substep control values and their keyframe weights.

        Substep k runs from t = t0 + k dt to t + dt. Returns
            table: [count, 4, 3]: collider centre at t + dt, collider velocity and
                contact velocity (p(t + dt) - p(t)) / dt, force at t;
            w_pos, w_vel, w_force: [count, M] weights of those on the keyframes.
        """
        t = t0 + dt * np.arange(count + 1)
        a, _ = spline.hermite_weights(self.times, t)
        w_pos = a[1:]
        w_vel = (a[1:] - a[:-1]) / dt
        w_force = a[:-1]
        table = np.zeros((count, 4, 3))
        if self.drive == "velocity":
            table[:, 0] = w_pos @ self.values
            table[:, 1] = w_vel @ self.values
            table[:, 2] = table[:, 1]
        else:
            table[:, 0] = w_pos @ self.values  # unused by the force drive; kept for inspection
            table[:, 3] = w_force @ self.values
        return table, w_pos, w_vel, w_force


@dataclass
class State:
    """A host-side snapshot of the particle state at one time.

    x: [N, 3] m.  v: [N, 3] m/s.  C: [N, 3, 3] APIC affine velocity (1/s).
    F: [N, 3, 3] deformation gradient.  time: s from the start.
    """

    x: np.ndarray
    v: np.ndarray
    C: np.ndarray
    F: np.ndarray
    time: float = 0.0

    @staticmethod
    def rest(model: Model) -> State:
        n = model.num_particles
        return State(model.x0.copy(), model.v0.copy(), np.zeros((n, 3, 3)), np.tile(np.eye(3), (n, 1, 1)), 0.0)

    def copy(self) -> State:
        return State(self.x.copy(), self.v.copy(), self.C.copy(), self.F.copy(), self.time)


def nu_from_theta(theta: np.ndarray) -> np.ndarray:
    """Bounded Poisson map nu = NU_MAX * sigmoid(theta), in (0, NU_MAX)."""
    return NU_MAX / (1.0 + np.exp(-np.asarray(theta, np.float64)))


def theta_from_nu(nu: np.ndarray) -> np.ndarray:
    """Inverse of nu_from_theta."""
    r = np.asarray(nu, np.float64) / NU_MAX
    return np.log(r / (1.0 - r))


def dnu_dtheta(theta: np.ndarray) -> np.ndarray:
    s = 1.0 / (1.0 + np.exp(-np.asarray(theta, np.float64)))
    return NU_MAX * s * (1.0 - s)


def _vec3(v: object) -> tuple[float, float, float] | None:
    return None if v is None else tuple(float(c) for c in v)  # type: ignore[attr-defined,return-value]


def config_from_settings(s: SolverSettings) -> SolverConfig:
    """SolverConfig from a contract SolverSettings (same names, same units)."""
    g = s.ground
    return SolverConfig(
        grid_resolution=int(s.grid_resolution),
        domain_min=_vec3(s.domain_min),
        domain_max=_vec3(s.domain_max),
        domain_padding=float(s.domain_padding),
        substep_dt=s.substep_dt,
        cfl=float(s.cfl),
        gravity=(float(s.gravity[0]), float(s.gravity[1]), float(s.gravity[2])),
        damping=float(s.damping),
        ground=GroundConfig(height=g.height, friction=float(g.friction), mode=str(g.mode)),
        arch=s.arch,
        precision=s.precision,
    )


def model_from_job(job: Job, config: SolverConfig | None = None) -> Model:
    """The Model of a contract Job: particles, material (E, nu, density), grid from the
    job's SolverSettings; the job's point sets become the tracers (concatenated in order)."""
    cfg = config or config_from_settings(job.solver)
    tracers = [np.asarray(ps.rest_positions, np.float64).reshape(-1, 3) for ps in job.point_sets]
    return make_model(
        job.particles,
        job.volume,
        job.density,
        job.E,
        job.nu,
        cfg,
        tracers=np.concatenate(tracers) if tracers else None,
    )


def control_from_job(job: Job) -> Control:
    """The Control of a contract Job (its Interaction, contact set with its weights, and trajectory)."""
    it = job.interaction
    times = np.asarray(job.trajectory_times, np.float64)
    values = np.asarray(job.trajectory, np.float64)
    if len(times) == 0:
        times, values = np.zeros(1), np.zeros((1, 3))
    collider = it.collider_shape
    if it.type == "surface_non_adherent":
        collider = "plane"
    elif it.type == "point_non_adherent" and collider not in ("sphere", "capsule"):
        collider = "sphere"
    return Control(
        interaction=it.type,
        drive=it.drive,
        contact=np.asarray(job.contact, np.int64),
        grip=None if job.contact_weights is None else np.asarray(job.contact_weights, np.float64),
        times=times,
        values=values,
        collider=collider,
        radius=float(it.collider_radius),
        axis=tuple(float(v) for v in it.collider_axis),  # type: ignore[arg-type]
        normal=tuple(float(v) for v in it.plane_normal),  # type: ignore[arg-type]
        friction=float(it.friction),
    )
