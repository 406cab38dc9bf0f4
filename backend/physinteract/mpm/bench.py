"""``physinteract bench mpm``: forward and backward throughput of the MPM solver, as JSON.

Speed is measured here, never in tests. Particle-substeps per second = particles x
substeps / wall time (after a warm-up run that compiles the kernels).

``--estimator`` measures the regime the estimator runs every optimiser iteration instead:
a grasped ~2000-particle rod, grid 40, 14 frames x 40 substeps, forward then backward (best
of ``--repeat`` runs), with the time per launch of each pass and adjoint kernel.
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
    p.add_argument("--estimator", action="store_true",
                   help="the estimator's regime instead of --sizes: a rod of ~2000 particles, grid 40, 14 frames x 40 substeps, "
                        "forward + backward, with a per-kernel time breakdown")
    p.add_argument("--particles", type=int, default=2000, help="--estimator: particles in the rod (4:1:1 box)")
    p.add_argument("--grid", type=int, default=40, help="--estimator: grid_resolution")
    p.add_argument("--frames", type=int, default=14, help="--estimator: output frames")
    p.add_argument("--substeps", type=int, default=40, help="--estimator: substeps per frame")
    p.add_argument("--segment", type=int, default=None, help="--estimator: backward_segment (default: SolverConfig's)")
    p.add_argument("--tape-memory", type=float, default=None,
                   help="--estimator: SolverConfig.tape_memory_mb (default: SolverConfig's; 0: only backward_segment substeps)")
    p.add_argument("--repeat", type=int, default=3, help="--estimator: timed forward + backward runs; the best is reported")


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
    ctrl = Control("point_adherent", "velocity", contact=contact, times=np.array([0.0, 0.1]),
                   values=np.stack([top, top + [0.0, 0.0, 0.01]]))
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


def _time_calls(fn, reps: int, blocks: int = 5) -> float:
    """Seconds per call of ``fn`` (a kernel launch), synchronised, after one warm-up call:
    the best of ``blocks`` blocks of ``reps`` calls (other processes on the CPU only add time)."""
    import taichi as ti

    fn()
    ti.sync()
    best = float("inf")
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        ti.sync()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def _kernel_breakdown(sim: Any, dt: float, reps: int = 50) -> dict[str, float]:
    """Milliseconds per call of each substep kernel and its adjoint, timed in isolation on slot 0 -> 1."""
    sv = sim.solver
    sv.write_state(0, sim.checkpoints[-1])
    sv.upload_ctrl(sim._table(sim.num_frames - 1)[0][:1])
    from physinteract.mpm.solver import PASSES

    sv.run_pass(0, 0, 1, 0, dt)
    sv.tape_start[0] = 0
    calls: dict[str, Any] = {name: (lambda i=i: sv.run_pass(i, 0, 1, 0, dt)) for i, name in enumerate(PASSES)}
    calls.update({
        "advance (all passes, one launch)": lambda: sv.advance(0, 1, 0, dt, 0, -1),
        "untape_grid": lambda: sv.untape_grid(0),
        "g2p_backward": lambda: sv.g2p_backward(0, 1, 0, dt),
        "grid_op_grad": lambda: sv.grid_op.grad(0, dt),
        "p2g_backward": lambda: sv.p2g_backward(0, 0, dt),
        "stress_backward": lambda: sv.stress_backward(0),
    })
    out = {name: round(1e3 * _time_calls(fn, reps), 4) for name, fn in calls.items()}
    sv.run_pass(1, 0, 1, 0, dt)  # clear_grid: leave no stale grid adjoints behind
    return out


def _bench_estimator(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator's regime: a grasped rod lifted at one end under gravity, forward + backward."""
    from physinteract.mpm.config import SolverConfig
    from physinteract.mpm.model import Control, make_model
    from physinteract.mpm.rollout import Rollout
    from physinteract.mpm.solver import MPMSolver, tape_slots

    side = max(2, round((args.particles / 4) ** (1 / 3)))
    n_xyz = (4 * side, side, side)
    spacing = 0.1 / n_xyz[0]  # a 10 cm rod
    idx = np.stack(np.meshgrid(*[np.arange(k) for k in n_xyz], indexing="ij"), -1).reshape(-1, 3)
    x0 = (idx + 0.5) * spacing + [0.0, 0.0, 0.5]
    cfg = SolverConfig(grid_resolution=args.grid, precision=args.precision, arch=args.arch)
    if args.segment:
        cfg.backward_segment = args.segment
    if args.tape_memory is not None:
        cfg.tape_memory_mb = args.tape_memory
    model = make_model(x0, spacing**3, 1000.0, 1e5, 0.3, cfg)
    contact = np.where(x0[:, 0] < x0[:, 0].min() + 2.5 * spacing)[0]
    grip = x0[contact].mean(0)
    substeps, frames = args.substeps, args.frames
    dt = cfg.cfl * model.dx / model.p_wave_speed()  # a stable substep
    frame_dt = dt * substeps
    duration = frame_dt * frames
    ctrl = Control("point_adherent", "velocity", contact=contact, times=np.array([0.0, duration / 2, duration]),
                   values=np.stack([grip, grip + [0.0, 0.0, 0.01], grip + [0.005, 0.0, 0.015]]))
    slots, tape_nodes = tape_slots(model, cfg, frames * substeps)  # as the estimator allocates them
    solver = MPMSolver(model, cfg, slots=slots, requires_grad=True, tape_nodes=tape_nodes)
    sim = Rollout(model, ctrl, frame_dt, frames, requires_grad=True, substeps=substeps, solver=solver)
    rng = np.random.default_rng(0)
    w = {f: rng.normal(size=x0.shape) for f in range(1, frames + 1)}
    t0 = time.perf_counter()
    sim.forward()  # warm-up: compiles
    sim.backward(w)
    t_warm = time.perf_counter() - t0
    fwd = bwd = float("inf")
    for _ in range(args.repeat):  # best of: other processes on the CPU only add time
        t0 = time.perf_counter()
        sim.forward()
        t1 = time.perf_counter()
        sim.backward(w)
        t2 = time.perf_counter()
        fwd, bwd = min(fwd, t1 - t0), min(bwd, t2 - t1)
    n = model.num_particles
    total = frames * substeps
    kernels = _kernel_breakdown(sim, dt)
    fwd_kernels = kernels["advance (all passes, one launch)"]
    recompute = max(0, substeps - cfg.backward_segment) / substeps  # segment starts recomputed per substep
    kept = min(frames, (slots - 1) // substeps)  # frames the forward pass leaves on the tape
    rerun = (frames - kept) / frames * (1 + recompute)  # forward substeps the backward pass runs again, per substep
    adjoints = sum(kernels[k] for k in ("g2p_backward", "grid_op_grad", "p2g_backward", "stress_backward"))
    if sim.solver.tape_nodes > 0:
        bwd_kernels = fwd_kernels * rerun + kernels["tape_grid"] + kernels["untape_grid"] + adjoints
    else:
        regrid = sum(kernels[k] for k in ("active_block", "clear_grid", "p2g", "grid_op"))
        bwd_kernels = fwd_kernels * rerun + regrid + adjoints
    return {
        "case": "estimator",
        "particles": n,
        "grid": list(model.grid_shape),
        "frames": frames,
        "substeps_per_frame": substeps,
        "backward_segment": cfg.backward_segment,
        "tape_memory_mb": cfg.tape_memory_mb,
        "frames_kept_on_tape": kept,
        "field_bytes": solver.device_memory_bytes(),
        "first_run_s_incl_compile": round(t_warm, 3),
        "repeat": args.repeat,
        "forward_s": round(fwd, 4),
        "backward_s": round(bwd, 4),
        "forward_backward_s": round(fwd + bwd, 4),
        "forward_particle_substeps_per_s": round(n * total / fwd),
        "backward_particle_substeps_per_s": round(n * total / bwd),
        "backward_forward_ratio": round(bwd / fwd, 2),
        "forward_ms_per_substep": round(1e3 * fwd / total, 4),
        "backward_ms_per_substep": round(1e3 * bwd / total, 4),
        "grid_nodes": int(np.prod(model.grid_shape)),
        "active_block_nodes": int(sim.solver.block_count[None]),
        "kernel_ms_per_call": kernels,
        "forward_kernels_ms_per_substep": round(fwd_kernels, 4),
        "backward_kernels_ms_per_substep_estimate": round(bwd_kernels, 4),
        "note": "passes and kernels timed in isolation (ti.sync), best of 5 x 50 launches (a lone pass pays a launch); forward "
                "per substep = advance; backward per substep = advance for the tape of the frames not kept on it by the "
                "forward pass (plus recomputed segment starts) + tape_grid + untape_grid + the adjoints; the rest of the "
                "measured time is Python / transfer overhead",
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from physinteract.mpm.runtime import ensure_taichi

    arch = ensure_taichi(args.arch, args.precision)
    if getattr(args, "estimator", False):
        return {
            "target": "mpm",
            "arch": arch,
            "precision": args.precision,
            "results": [_bench_estimator(args)],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
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
