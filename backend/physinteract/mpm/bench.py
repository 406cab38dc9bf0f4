"""``physinteract bench mpm``: forward and backward throughput of the MPM solver, as JSON.

Speed is measured here, never in tests. Particle-substeps per second = particles x
substeps / wall time (after a warm-up run that compiles the kernels).
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import numpy as np

SIZES = {"small": (10_000, 64), "large": (100_000, 128)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="small,large", help="comma-separated sizes: small (~10k particles, 64^3), large (~100k, 128^3)")
    p.add_argument("--quick", action="store_true", help="fewer substeps (a rough number in seconds)")
    p.add_argument("--arch", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--precision", choices=("f32", "f64"), default="f32")


def _bench_size(name: str, particles: int, res: int, args: argparse.Namespace) -> dict[str, Any]:
    from physinteract.mpm.config import SolverConfig
    from physinteract.mpm.model import Control, make_model
    from physinteract.mpm.rollout import Rollout

    side = round(particles ** (1 / 3))
    spacing = 0.1 / side  # a 10 cm cube
    idx = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x0 = (idx + 0.5) * spacing + [0.0, 0.0, 0.5]
    cfg = SolverConfig(grid_resolution=res, precision=args.precision, arch=args.arch, backward_segment=16)
    model = make_model(x0, spacing**3, 1000.0, 1e5, 0.3, cfg, v0=np.array([0.1, 0.0, 0.0]))
    substeps = 8 if args.quick else 32
    contact = np.where(x0[:, 2] > x0[:, 2].max() - 1e-9)[0]
    top = x0[contact].mean(0)
    ctrl = Control("point_adherent", "velocity", contact=contact, times=[0.0, 0.1], values=[top, top + [0.0, 0.0, 0.01]])
    dt = cfg.cfl * model.dx / model.p_wave_speed()  # a stable substep
    sim = Rollout(model, ctrl, dt * substeps, 1, requires_grad=True, substeps=substeps)
    rng = np.random.default_rng(0)
    w = rng.normal(size=x0.shape)
    sim.forward()  # warm-up: compiles
    sim.backward({1: w})
    t0 = time.perf_counter()
    sim.forward()
    t1 = time.perf_counter()
    sim.backward({1: w})
    t2 = time.perf_counter()
    n = model.num_particles
    fwd, bwd = t1 - t0, t2 - t1
    return {
        "size": name,
        "particles": n,
        "grid": list(model.grid_shape),
        "substeps": substeps,
        "forward_s": round(fwd, 4),
        "backward_s": round(bwd, 4),
        "forward_particle_substeps_per_s": round(n * substeps / fwd),
        "backward_particle_substeps_per_s": round(n * substeps / bwd),
        "backward_forward_ratio": round(bwd / fwd, 2),
        "field_bytes": sim.solver.device_memory_bytes(),
        "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from physinteract.mpm.runtime import ensure_taichi

    arch = ensure_taichi(args.arch, args.precision)
    results = []
    for name in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        if name not in SIZES:
            raise ValueError(f"--sizes: unknown size {name!r}, expected some of {sorted(SIZES)}")
        results.append(_bench_size(name, *SIZES[name], args))
    return {
        "target": "mpm",
        "arch": arch,
        "precision": args.precision,
        "quick": bool(args.quick),
        "results": results,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "note": "backward includes recomputing each frame's substeps from its checkpoint (checkpointed backward)",
    }
