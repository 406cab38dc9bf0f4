"""``physinteract estimate JOB_DIR --cache DIR``: estimate the material field and trajectory from the job's video."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HELP = "estimate a job's material field (E, nu) and interaction trajectory from its video"
DESCRIPTION = (
    "Joint estimation by analysis-by-synthesis: a differentiable MPM simulation of the job's object, rendered "
    "as Gaussians through the job's camera, is fitted to the job's video frames and masks. Writes an "
    "'estimate' cache: the fitted motion, material_E.npy / material_nu.npy, estimate_trajectory.npy, "
    "estimate_contact.npy (the particles held in contact), estimate.json and events.jsonl. An interrupted run "
    "resumes from the cache's checkpoint."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, metavar="JOB_DIR", help="a job folder (job.json) with video and camera")
    p.add_argument("--cache", type=Path, required=True, metavar="DIR", help="the estimate cache folder to write")
    p.add_argument("--mode", choices=("joint", "material_only", "trajectory_only"), default="joint",
                   help="what to optimise (default joint; material_only keeps the trajectory at T0)")
    p.add_argument("--iterations", type=int, default=None, help="gradient iterations (default: the job's solver.iterations)")
    p.add_argument("--arch", choices=("auto", "cpu", "cuda"), default=None, help="override the job's solver.arch")
    p.add_argument("--cfl", type=float, default=None,
                   help="Courant number of the estimator's rollouts (default: the job's solver.cfl); larger is faster and coarser")
    p.add_argument("--no-resume", action="store_true", help="start over even when the cache holds a matching checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


def _bar(ev: dict[str, Any], started: float) -> str:
    frac = float(ev.get("fraction", 0.0))
    n = int(round(30 * frac))
    return (f"\r[{'#' * n}{'.' * (30 - n)}] {ev['iteration']}/{ev['iterations']} loss {ev['loss']:.4f} "
            f"PSNR {ev['psnr']:.2f} dB  E~{ev['E_median']:.3g} Pa  {time.perf_counter() - started:.0f}s, ETA {ev['eta_s']:.0f}s ")


def run(args: argparse.Namespace) -> int:
    from physinteract.commands._run import describe_search, logged_input, print_warnings, stop_requests
    from physinteract.contract import read_job

    started = time.perf_counter()

    def progress(ev: dict[str, Any]) -> None:
        print_warnings("estimate", ev)
        if args.quiet:
            return
        text = describe_search(ev)
        if ev["event"] == "progress":
            print(_bar(ev, started), end="", file=sys.stderr, flush=True)
        elif text is not None:  # a search's step replaces the line; its summary stays on screen
            print(f"\r{text}   ", end="\n" if ev["event"].endswith("_done") else "", file=sys.stderr, flush=True)

    with stop_requests() as should_stop:
        job = logged_input(args.cache, lambda: read_job(args.job))
        from physinteract.estimate.optimize import EstimateConfig, estimate_job

        config = EstimateConfig(mode=args.mode, iterations=args.iterations, arch=args.arch, cfl=args.cfl,
                                resume=not args.no_resume)
        try:
            result = estimate_job(job, args.cache, config, job_folder=args.job, progress=progress, should_stop=should_stop)
        except Exception as e:
            print(f"\nphysinteract estimate: failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(file=sys.stderr)
        s = result.summary()
        print(f"estimate: E median {s['E']['median']:.4g} Pa (range {s['E']['min']:.3g}..{s['E']['max']:.3g}), "
              f"nu median {s['nu']['median']:.3f}, PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.3f}, "
              f"{result.iterations} iterations in {result.seconds:.1f} s -> {args.cache}")
        if should_stop():
            print("physinteract estimate: stopped; run again to resume from the checkpoint", file=sys.stderr)
            return 130
        return 0
