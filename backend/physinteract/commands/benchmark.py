"""``physinteract benchmark --out DIR``: the synthetic benchmark suite (material accuracy, PSNR/SSIM, novel error)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "run the estimator on the synthetic benchmark scenes and write a report (report.md, report.json, plots)"
DESCRIPTION = (
    "Build the synthetic scenes (cached under OUT/scenes), estimate each in the given modes and score "
    "Material Accuracy, PSNR/SSIM on the input frames and the novel-interaction position error."
)


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (scenes, runs, report)")
    p.add_argument("--scenes", default=None, metavar="A,B", help="comma-separated scene names (default: all)")
    p.add_argument("--modes", default="joint,material_only", metavar="M,N", help="estimation modes (default: joint,material_only)")
    p.add_argument("--iterations", type=int, default=None, metavar="N", help="optimiser iterations (default: the estimator's)")
    p.add_argument("--quick", action="store_true", help="tiny scenes (few particles, 4 frames, 64x48 px) for a smoke run")
    p.add_argument("--rebuild", action="store_true", help="rebuild the scenes even when cached")
    p.add_argument("--seed", type=int, default=0, help="random seed of the scenes (lattices, noise, tracker errors)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="estimates at once, each in its own process (default: one per CPU core, at most one per 8 GB of memory)")
    p.add_argument("--scale", type=float, default=None, metavar="S",
                   help="particle-count factor of the estimator's discretisation (default 2; the grid follows the cube root)")


def run(args: argparse.Namespace) -> int:
    from physinteract.benchmark.run import MODES, RunConfig, default_jobs, run_benchmark, summary_line
    from physinteract.benchmark.scenes import SCENES, BuildConfig

    scenes = _names(args.scenes) or list(SCENES)
    modes = _names(args.modes) or list(MODES)
    bad = [s for s in scenes if s not in SCENES]
    if bad:
        print(f"physinteract benchmark: unknown scene(s) {', '.join(bad)}; choose from {', '.join(SCENES)}", file=sys.stderr)
        return 2
    from physinteract.estimate.optimize import MODES as ESTIMATE_MODES

    bad = [m for m in modes if m not in ESTIMATE_MODES]
    if bad:
        print(f"physinteract benchmark: unknown mode(s) {', '.join(bad)}; choose from {', '.join(ESTIMATE_MODES)}", file=sys.stderr)
        return 2
    build = BuildConfig.quick() if args.quick else BuildConfig()
    build.seed = args.seed
    if args.scale is not None:
        if not args.scale > 0:
            print(f"physinteract benchmark: --scale must be > 0, got {args.scale}", file=sys.stderr)
            return 2
        build.scale = args.scale
    if args.jobs is not None and args.jobs < 1:
        print(f"physinteract benchmark: --jobs must be >= 1, got {args.jobs}", file=sys.stderr)
        return 2
    jobs = args.jobs or default_jobs(len(scenes) * len(modes))
    report = run_benchmark(RunConfig(out=args.out, scenes=scenes, modes=modes, iterations=args.iterations, build=build,
                                     rebuild=args.rebuild, jobs=jobs))
    print(summary_line(report))
    return 0
