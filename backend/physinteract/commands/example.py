"""``physinteract example``: run the main job on the bundled example scene.

Estimate the rope's material from the bundled video (data/example/video), then bake a novel
interaction with the estimated material. ``--no-estimate`` bakes with the known material instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from physinteract.commands._run import describe_search

HELP = "run the main job on the bundled example (soft rope): estimate its material from a video, bake a novel interaction"
DESCRIPTION = (
    "Estimate the bundled rope's material field and grasp trajectory from its bundled video (joint "
    "analysis-by-synthesis, starting from a homogeneous E 5x below the truth and the tracker's trajectory), "
    "then simulate a novel grasp-and-swing with the estimated material and bake it into a contract cache. "
    "Writes DIR/estimate_job (the estimator's job with its video), DIR/estimate (the estimate cache), "
    "DIR/job and DIR/cache (the novel bake), DIR/summary.json and DIR/report.md with pictures."
)

QUICK = {"fill_resolution": 12, "grid_resolution": 28, "frames": 6, "iterations": 2}  # --quick (tests): a tiny version


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--iterations", type=int, default=None,
                   help="gradient iterations of the estimator (default: scene.json's estimate.iterations)")
    p.add_argument("--no-estimate", action="store_true", help="skip the estimation: bake with the known (true) material")
    p.add_argument("--quick", action="store_true",
                   help="a tiny version for tests: coarse particles and grid, the first few frames, 2 iterations")
    p.add_argument("--arch", choices=("auto", "cpu", "cuda"), default="auto", help="Taichi arch (default: cuda if present)")
    p.add_argument("--grid-resolution", type=int, default=None, help="override the grid resolution of the bake")


def _say(text: str) -> None:
    print(f"example: {text}", flush=True)


def _progress(ev: dict[str, Any]) -> None:
    """One line per estimator event worth a person's attention."""
    kind = ev.get("event")
    if kind == "start":
        _say(f"estimate: {ev['particles']} particles, {ev['gaussians']} Gaussians, {ev['frames']} loss frames, "
             f"{ev['iterations']} iterations ({ev['mode']})")
        if "appearance" in ev:
            app = ev["appearance"]
            _say(f"estimate: appearance fitted to the rest frame, PSNR {app['psnr_before']:.1f} -> {app['psnr_after']:.1f} dB")
    elif (text := describe_search(ev)) is not None:
        _say(f"estimate: {text}")
    elif kind == "progress":
        _say(f"estimate: iteration {ev['iteration']}/{ev['iterations']} loss {ev['loss']:.4f} E median {ev['E_median']:.4g} Pa "
             f"({ev['seconds']:.1f} s, ETA {ev['eta_s']:.0f} s)")
    elif kind == "early_stop":
        _say(f"estimate: early stop at iteration {ev['iteration']}")


def _copy_video(video: Any, folder: Path) -> None:
    """Copy the bundled PNGs into ``folder``/frames and ``folder``/masks (the job folder stays self-contained)."""
    for sub, files in (("frames", video.frames), ("masks", video.masks)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, folder / sub / f.name)


def _fresh(cache: Path) -> None:
    from physinteract import contract

    if (cache / contract.CACHE_MANIFEST).is_file():
        contract.clear_cache(cache)


def estimate(out: Path, scene: Any, iterations: int | None, quick: bool, arch: str) -> tuple[Any, dict[str, Any], Any]:
    """Build the estimator's job from the bundled video into ``out``/estimate_job, run the joint
    estimation into ``out``/estimate. Returns the job, a summary dict and the EstimateResult."""
    import numpy as np

    from physinteract import contract
    from physinteract.benchmark.run import material_accuracy
    from physinteract.estimate.optimize import EstimateConfig, estimate_job
    from physinteract.example import EstimateSetup, build_estimate_job, load_example_video

    spec = scene.spec
    est = spec.get("estimate", {})
    setup = EstimateSetup(**{k: QUICK[k] for k in ("fill_resolution", "grid_resolution", "frames")}) if quick else EstimateSetup()
    video = load_example_video()
    job = build_estimate_job(scene, video, setup)
    job.solver.arch = arch
    job_dir = out / "estimate_job"
    _copy_video(video, job_dir / "video")
    contract.write_job(job, job_dir)
    E_true = float(spec["material"]["E"])
    _say(f"estimate job: {len(job.particles)} particles, frames {job.frame_start}-{job.frame_end}, initial E {job.E[0]:g} Pa "
         f"(the truth / {setup.guess_factor:g}), T0 from the tracker ({len(job.trajectory_times)} keyframes)")
    iters = iterations if iterations is not None else (QUICK["iterations"] if quick else int(est.get("iterations", 12)))
    config = EstimateConfig(mode="joint", iterations=iters, frame_stride=int(est.get("frame_stride", 1)),
                            scan_points=int(est.get("scan_points", 9)), scan_regions=int(est.get("scan_regions", 4)),
                            arch=None if arch == "auto" else arch, resume=False)
    if quick:
        config.scan_points, config.scan_regions, config.refine_decades = 3, 0, 0.0
    cache = out / "estimate"
    _fresh(cache)
    result = estimate_job(job, cache, config, job_folder=job_dir, progress=_progress)
    E_med = float(np.median(result.E))
    summary = {
        "E_true_pa": E_true,
        "E_initial_pa": float(job.E[0]),
        "E_estimated_median_pa": E_med,
        "E_relative_error": abs(E_med - E_true) / E_true,
        "material_accuracy": material_accuracy(result.E, np.full(len(result.E), E_true)),
        "nu_estimated_median": float(np.median(result.nu)),
        "psnr_db": round(result.psnr, 2),
        "ssim": round(result.ssim, 4),
        "estimate_iterations": result.iterations,
        "estimate_seconds_per_iteration": round(result.seconds_per_iteration, 2),
        "estimate_seconds": round(result.seconds, 1),
        "estimate_particles": int(len(job.particles)),
        "estimate_frames": int(job.num_frames),
        "estimate_job": str(job_dir),
        "estimate_cache": str(cache),
    }
    return job, summary, result


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from physinteract import contract
    from physinteract.example import build_example_job, load_example, trim_trajectory
    from physinteract.mpm import simulate_job

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    scene = load_example()
    summary: dict[str, Any] = {"scene": scene.spec["name"], "material": "known (scene.json)" if args.no_estimate else "estimated"}
    est = scene.spec.get("estimate", {})
    if args.quick:
        fill, grid = QUICK["fill_resolution"], QUICK["grid_resolution"]
    elif args.no_estimate:
        fill, grid = None, None
    else:  # the novel bake runs on the estimator's particles (the estimated field lives on them)
        fill, grid = est.get("fill_resolution"), est.get("grid_resolution")
    job = build_example_job(scene, novel=True, grid_resolution=args.grid_resolution or grid, fill_resolution=fill)
    if not args.no_estimate:
        est_job, est_summary, result = estimate(out, scene, args.iterations, args.quick, args.arch)
        summary.update(est_summary)
        _say(f"estimated E median {est_summary['E_estimated_median_pa']:.4g} Pa vs the truth {est_summary['E_true_pa']:.4g} Pa "
             f"({100 * est_summary['E_relative_error']:.1f} % off), material accuracy {est_summary['material_accuracy']:.2f}, "
             f"PSNR {result.psnr:.1f} dB, {result.seconds:.0f} s")
        # as `physinteract simulate JOB --material ESTIMATE`: the estimated field on the same particles
        job.E, job.nu = contract.read_material(out / "estimate", len(job.particles))
        job.point_sets = est_job.point_sets
        job.metadata = {**job.metadata, "material": "estimated", "estimate": str(out / "estimate")}
    if args.quick:
        job.frame_end = job.frame_start + QUICK["frames"]
        job.trajectory_times, job.trajectory = trim_trajectory(job.trajectory_times, job.trajectory, QUICK["frames"] / job.fps)
        if job.camera is not None:
            job.camera = contract.Camera(job.camera.width, job.camera.height, job.camera.K,
                                         job.camera.world_to_camera[: job.num_frames])
    job.solver.arch = args.arch
    contract.write_job(job, out / "job")
    _say(f"novel bake: {len(job.particles)} particles ({int((job.labels == 1).sum())} interior), "
         f"{len(job.contact)} in contact, frames {job.frame_start}-{job.frame_end}")

    cache = out / "cache"
    _fresh(cache)

    def progress(info: dict) -> None:
        if info.get("event") == "progress" and (info["done"] % 6 == 0 or info["done"] == info["frames"] - 1):
            _say(f"novel bake: frame {info['done']}/{info['frames'] - 1}, {info['substeps_per_frame']} substeps per frame")

    t1 = time.perf_counter()
    simulate_job(job, cache, arch=None if args.arch == "auto" else args.arch, progress=progress)
    t_sim = time.perf_counter() - t1
    frames = contract.completed_frames(cache, verify=True)
    first = contract.read_frame(cache, frames[0])["particles.positions"]
    last = contract.read_frame(cache, frames[-1])["particles.positions"]
    summary.update({
        "particles": int(len(job.particles)),
        "interior": int((job.labels == 1).sum()),
        "contact": int(len(job.contact)),
        "frames": len(frames),
        "E_bake_median_pa": float(np.median(job.E)),
        "displacement_max_m": float(np.max(np.linalg.norm(last - first, axis=1))),
        "seconds_simulate": round(t_sim, 2),
        "seconds_total": round(time.perf_counter() - t_start, 1),
        "job": str(out / "job"),
        "cache": str(cache),
    })
    contract.atomic_write_json(out / "summary.json", summary)
    from physinteract.report import write_bake_report

    report = write_bake_report(out, job, cache, summary)
    print(json.dumps(summary, indent=2))
    _say(f"report at {report}")
    return 0
