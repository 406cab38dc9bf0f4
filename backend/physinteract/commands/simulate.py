"""``physinteract simulate JOB_DIR --cache DIR``: forward MPM bake of a job into a cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "simulate a job's interaction with its material and write a cache (Blender point caches)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("job", type=Path, metavar="JOB_DIR", help="a job folder (job.json)")
    p.add_argument("--cache", type=Path, required=True, metavar="DIR", help="the cache folder to write")
    p.add_argument("--arch", choices=("auto", "cpu", "cuda"), default=None, help="override the job's solver.arch")
    p.add_argument("--material", type=Path, default=None, metavar="ESTIMATE_DIR",
                   help="use the material field estimated into this cache (material_E.npy, material_nu.npy) instead of the job's")
    p.add_argument("--frames", default=None, metavar="A:B",
                   help="frame range to simulate instead of the job's (A is the rest frame; times count from A)")


def _parse_frames(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"--frames: expected A:B with integers, got {text!r}") from None
    if b < a:
        raise ValueError(f"--frames: the end {b} is before the start {a}")
    return a, b


def run(args: argparse.Namespace) -> int:
    from physinteract.commands._run import logged_input, print_warnings, stop_requests
    from physinteract.contract import Job, read_job, read_material

    def load() -> Job:
        job = read_job(args.job)
        if args.frames:
            job.frame_start, job.frame_end = _parse_frames(args.frames)
        if args.material is not None:
            job.E, job.nu = read_material(args.material, len(job.particles))
        return job

    with stop_requests() as should_stop:
        job = logged_input(args.cache, load)
        from physinteract.mpm.simulate import simulate_job

        try:
            simulate_job(job, args.cache, arch=args.arch, should_stop=should_stop, progress=lambda ev: print_warnings("simulate", ev))
        except Exception as e:
            print(f"physinteract simulate: failed: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        if should_stop():
            print("physinteract simulate: cancelled; the frames written so far are valid", file=sys.stderr)
            return 130
        return 0
