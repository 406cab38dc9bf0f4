"""``physinteract bench bending``: how far the solver's bending is from beam theory, by resolution, as JSON.

A beam clamped at one end (an adherent grasp held still) sags under its own weight; grid damping
at the first bending mode's critical rate settles it. Its tip's sag is compared with Timoshenko
beam theory, q L^4 / (8 E I) (1 + 4 E I / (k G A L^2)), the second term the shear's share. The
discretisation is given by cells across the beam's thickness and particles per cell per axis:
at 2-3 cells the coarse MPM is softer in bending than the continuum, so an E estimated on thin
parts that coarse comes out too stiff (README, "The simulator").
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

RHO = 1000.0  # kg/m^3
E_BEAM = 1e5  # Pa
THICKNESS = 0.02  # m: the square's side, the rod's diameter


@dataclass
class Sag:
    """A settled cantilever: the tip's sag (m, mean over the last particle slice) and beam theory's."""

    measured: float
    theory: float
    particles: int
    grid_resolution: int
    substeps_per_frame: int
    settled: float  # relative change of the sag over the last frame
    seconds: float

    @property
    def ratio(self) -> float:
        return self.measured / self.theory


def cantilever_sag(cells: float, per_cell: float = 2.0, *, shape: str = "square", nu: float = 0.0, slenderness: float = 6.0,
                   precision: str = "f64", arch: str = "cpu", seed: int = 0) -> Sag:
    """Tip sag of a clamped beam with ``cells`` grid cells across its thickness (2 cm) and ``per_cell``
    particles per cell per axis; free length ``slenderness`` x thickness, sag 3 % of it (small
    rotations). ``shape`` "square" (a particle block aligned with the grid) or "round" (a rod, the
    lattice offset drawn from ``seed``). Taichi must be initialised with ``precision``."""
    from physinteract.geometry.shapes import fill_sdf, rounded_box
    from physinteract.mpm.config import SolverConfig
    from physinteract.mpm.model import Control, make_model
    from physinteract.mpm.rollout import Rollout

    H = THICKNESS
    length = slenderness * H
    s = H / (cells * per_cell)  # particle spacing (m)
    hold = 2  # clamped particle layers behind the clamp's face at x = 0
    lo, hi = np.array([-hold * s, -H / 2, 0.1 - H / 2]), np.array([length, H / 2, 0.1 + H / 2])
    box = rounded_box(tuple(0.5 * (lo + hi)), tuple(0.5 * (hi - lo)))
    if shape == "round":  # the benchmark scenes' filling: a cubic lattice at a random offset, inside the solid
        offset = np.random.default_rng(seed).random(3)
        x0 = fill_sdf(lambda p: np.maximum(box(p), np.hypot(p[:, 1], p[:, 2] - 0.1) - H / 2), lo, hi, s, offset).positions
        A, I, k = math.pi * H**2 / 4, math.pi * H**4 / 64, 6 * (1 + nu) / (7 + 6 * nu)
    elif shape == "square":  # particles at cell centres of the box: its faces lie half a spacing out
        x0 = fill_sdf(box, lo, hi, s, np.full(3, 0.5)).positions
        A, I, k = H * H, H**4 / 12, 10 * (1 + nu) / (12 + 11 * nu)
    else:
        raise ValueError(f"cantilever_sag: shape must be 'square' or 'round', got {shape!r}")
    clamp = np.flatnonzero(x0[:, 0] < 0.0)
    tip = np.flatnonzero(x0[:, 0] > x0[:, 0].max() - 0.5 * s)
    shear_modulus = E_BEAM / (2.0 * (1.0 + nu))
    sag_per_load = length**4 / (8.0 * E_BEAM * I) * (1.0 + 4.0 * E_BEAM * I / (k * shear_modulus * A * length**2))  # m per N/m
    g = 0.03 * length / (RHO * A * sag_per_load)
    omega = 1.875**2 * math.sqrt(E_BEAM * I / (RHO * A * length**4))  # rad/s, the first bending mode
    domain_min = np.array([-0.03, -2 * H, 0.1 - 2.5 * H - 0.03 * length])
    domain_max = np.array([length + 0.03, 2 * H, 0.1 + 2 * H])
    res = int(round(float((domain_max - domain_min).max()) / (H / cells)))
    cfg = SolverConfig(grid_resolution=res, precision=precision, arch=arch, gravity=(0.0, 0.0, -g), damping=2.0 * omega,  # type: ignore[arg-type]
                       domain_min=tuple(domain_min), domain_max=tuple(domain_max))
    model = make_model(x0, s**3, RHO, E_BEAM, nu, cfg)
    held = Control("point_adherent", "velocity", contact=clamp, times=np.array([0.0]), values=x0[clamp].mean(0)[None])
    frames = 14
    t = time.perf_counter()
    sim = Rollout(model, held, 14.0 / omega / frames, frames)  # critically damped: settled to about e^-14
    try:
        xs = sim.forward()
    finally:
        sim.solver.release()  # a sweep builds one solver per case
    seconds = time.perf_counter() - t
    sag = [float(-(x[tip, 2] - x0[tip, 2]).mean()) for x in xs]
    return Sag(sag[-1], RHO * A * g * sag_per_load, len(x0), res, sim.substeps[0], abs(sag[-1] - sag[-2]) / abs(sag[-1]), seconds)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cells", type=float, nargs="+", default=[2.0, 3.0, 4.0], help="grid cells across the beam's thickness")
    p.add_argument("--per-cell", type=float, nargs="+", default=[2.0], help="particles per cell per axis")
    p.add_argument("--shape", choices=("square", "round"), default="square")
    p.add_argument("--nu", type=float, default=0.0)
    p.add_argument("--slenderness", type=float, default=6.0, help="free length / thickness")
    p.add_argument("--arch", choices=("auto", "cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("f32", "f64"), default="f64")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from physinteract.mpm.runtime import ensure_taichi

    arch = ensure_taichi(args.arch, args.precision)
    cases = []
    for per_cell in args.per_cell:
        for cells in args.cells:
            r = cantilever_sag(cells, per_cell, shape=args.shape, nu=args.nu, slenderness=args.slenderness,
                               precision=args.precision, arch=arch)
            cases.append({"cells_across": cells, "particles_per_cell_per_axis": per_cell, "particles": r.particles,
                          "grid_resolution": r.grid_resolution, "substeps_per_frame": r.substeps_per_frame,
                          "sag_m": r.measured, "theory_m": r.theory, "sag_over_theory": round(r.ratio, 4),
                          "last_frame_change": round(r.settled, 5), "seconds": round(r.seconds, 2)})
    return {"shape": args.shape, "nu": args.nu, "slenderness": args.slenderness, "arch": arch, "precision": args.precision,
            "theory": "Timoshenko cantilever under its own weight: q L^4 / (8 E I) (1 + 4 E I / (k G A L^2))", "cases": cases}
