"""Run the estimator over the benchmark scenes and score it like the paper's Tables 1-3.

For each scene (built once and cached under ``OUT/scenes``) and each mode ('joint',
'material_only') the estimator runs on the scene's job; the scores are

- Material Accuracy: share of particles with |E_pred - E_gt| / E_gt <= 0.2;
- PSNR / SSIM of the final fit on the input frames (as the estimator reports them);
- novel error: the novel interaction re-simulated with the estimated field at the estimator's
  resolution, the Gaussians carried by the particles, mean |x - x_gt| over Gaussians and frames
  divided by the object's bounding-box diagonal (x_gt from the finer ground-truth simulation);
- seconds and seconds per iteration.

Writes ``OUT/report.json``, ``OUT/report.md`` and plots (loss curves, E relative-error maps) under ``OUT/plots``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract
from physinteract.benchmark import scenes as S
from physinteract.imageio import write_png

MODES = ("joint", "material_only")
METRICS = ("material_accuracy", "psnr", "ssim", "novel_error", "seconds", "seconds_per_iteration")
MA_TOLERANCE = 0.2
MODE_COLORS = {"joint": (0.85, 0.25, 0.2), "material_only": (0.2, 0.45, 0.85), "trajectory_only": (0.2, 0.7, 0.3)}

# estimate(job, cache_folder, mode, iterations, job_folder) -> an object with E [N] Pa, nu [N],
# history (list of dicts with "loss"), seconds, seconds_per_iteration, iterations, psnr, ssim
# (physinteract.estimate.optimize.EstimateResult has these).
EstimateFn = Callable[[contract.Job, Path, str, "int | None", Path], Any]


@dataclass
class RunConfig:
    """What to run. out: output folder. scenes/modes: which (default all scenes, both modes).
    iterations: estimator iterations (None: its default). build: how scenes are made. rebuild: ignore cached scenes."""

    out: Path
    scenes: list[str] = field(default_factory=S.scene_names)
    modes: list[str] = field(default_factory=lambda: list(MODES))
    iterations: int | None = None
    build: S.BuildConfig = field(default_factory=S.BuildConfig)
    rebuild: bool = False


def default_estimate(job: contract.Job, cache: Path, mode: str, iterations: int | None, job_folder: Path) -> Any:
    """The project's estimator (imported lazily: torch and taichi load only here)."""
    from physinteract.estimate.optimize import EstimateConfig, estimate_job

    return estimate_job(job, cache, EstimateConfig(mode=mode, iterations=iterations), job_folder=job_folder)


# --------------------------------------------------------------------------- metrics


def material_accuracy(E_pred: np.ndarray, E_gt: np.ndarray, tolerance: float = MA_TOLERANCE) -> float:
    """Share of particles whose relative E error |E_pred - E_gt| / E_gt is at most ``tolerance``."""
    E_pred, E_gt = np.asarray(E_pred, np.float64), np.asarray(E_gt, np.float64)
    if E_pred.shape != E_gt.shape:
        raise ValueError(f"material_accuracy: {E_pred.shape} predicted values for {E_gt.shape} particles")
    return float(np.mean(np.abs(E_pred - E_gt) / E_gt <= tolerance + 1e-12))


def novel_error(job: contract.Job, gt: dict[str, np.ndarray], E: np.ndarray, nu: np.ndarray) -> float:
    """Mean Gaussian-centre error of the novel interaction re-simulated with (E, nu), relative to the object size.

    The estimator's particles are simulated with the job's solver settings (CPU) along gt's novel
    trajectory; the Gaussians are carried by the particles (as in the video) and compared with the GT
    centres at frames 1..F.
    """
    from physinteract.mpm.model import config_from_settings, control_from_job, make_model

    cfg = config_from_settings(job.solver)
    cfg.arch = "cpu"
    model = make_model(job.particles, job.volume, job.density, E, nu, cfg)
    base = control_from_job(job)
    control = dataclasses.replace(base, times=gt["novel_trajectory_times"], values=gt["novel_trajectory"])
    xs, Fs, _ = S.simulate(model, control, 1.0 / job.fps, job.frame_end - job.frame_start)
    centres, _ = S.carry(job.point_sets[0].rest_positions, job.particles, xs, Fs)
    err = np.linalg.norm(centres[1:] - gt["novel_gaussians"][1:], axis=-1)
    return float(err.mean() / float(gt["object_size"]))


# --------------------------------------------------------------------------- plots


def _draw_polyline(img: np.ndarray, pts: np.ndarray, color: tuple[float, float, float], width: int = 1) -> None:
    """Draw a polyline (pixel coordinates [P, 2], x right, y down) into img [H, W, 3] by dense sampling."""
    h, w = img.shape[:2]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) * 2 + 2
        t = np.linspace(0.0, 1.0, n)[:, None]
        p = np.round(a + t * (b - a)).astype(np.int64)
        for dx in range(-(width // 2), width // 2 + 1):
            for dy in range(-(width // 2), width // 2 + 1):
                x, y = p[:, 0] + dx, p[:, 1] + dy
                ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
                img[y[ok], x[ok]] = color


def loss_plot(curves: dict[str, list[float]], width: int = 360, height: int = 220) -> np.ndarray:
    """A loss-vs-iteration chart [H, W, 3]: one line per mode (MODE_COLORS), log-scaled loss, white background."""
    img = np.ones((height, width, 3))
    m = 20
    _draw_polyline(img, np.array([[m, m], [m, height - m], [width - m, height - m]], np.float64), (0.0, 0.0, 0.0))
    vals = [np.log10(np.maximum(np.asarray(c, np.float64), 1e-12)) for c in curves.values() if len(c)]
    if not vals:
        return img
    lo, hi = min(v.min() for v in vals), max(v.max() for v in vals)
    span = max(hi - lo, 1e-6)
    n_max = max(len(v) for v in vals)
    for mode, c in curves.items():
        if not len(c):
            continue
        v = np.log10(np.maximum(np.asarray(c, np.float64), 1e-12))
        x = m + (width - 2 * m) * np.arange(len(v)) / max(n_max - 1, 1)
        y = (height - m) - (height - 2 * m) * (v - lo) / span
        _draw_polyline(img, np.stack([x, y], 1) if len(v) > 1 else np.stack([x, y], 1).repeat(2, 0),
                       MODE_COLORS.get(mode, (0.3, 0.3, 0.3)), width=2)
    return img


def error_colors(rel: np.ndarray) -> np.ndarray:
    """Colour [N, 3] of relative errors: green at 0, yellow at the MA tolerance (0.2), red at 1 and above."""
    t = np.clip(np.asarray(rel, np.float64), 0.0, 1.0)
    green, yellow, red = np.array([0.1, 0.75, 0.2]), np.array([0.95, 0.85, 0.1]), np.array([0.9, 0.1, 0.1])
    a = np.clip(t / MA_TOLERANCE, 0.0, 1.0)[:, None]
    b = np.clip((t - MA_TOLERANCE) / (1.0 - MA_TOLERANCE), 0.0, 1.0)[:, None]
    return np.where(t[:, None] <= MA_TOLERANCE, (1 - a) * green + a * yellow, (1 - b) * yellow + b * red)


def error_map(job: contract.Job, rel: np.ndarray) -> np.ndarray:
    """The estimator's particles at rest, seen by the job's camera, coloured by relative E error. [H, W, 3]."""
    from physinteract.report import render_particles

    spacing = float(np.cbrt(np.median(job.volume)))
    return render_particles(job.particles, error_colors(rel), 0.6 * spacing, job, 0)


# --------------------------------------------------------------------------- the run


def _log(msg: str) -> None:
    print(f"[benchmark] {msg}", file=sys.stderr, flush=True)


def ensure_scene(name: str, folder: Path, build: S.BuildConfig, rebuild: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Build the scene into ``folder`` unless a scene made with the same settings is there already."""
    if not rebuild and (folder / S.SCENE_FILE).exists() and (folder / S.GT_FILE).exists() and (folder / contract.JOB_MANIFEST).exists():
        try:
            info = S.load_info(folder)
            if info.get("config") == build.settings():
                log(f"{name}: cached scene in {folder}")
                return info
        except ValueError:
            pass
    log(f"{name}: building the scene")
    return S.build_scene(name, folder, build, log=log).info


def run_benchmark(config: RunConfig, estimate: EstimateFn | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build (or reuse) the scenes, run the estimator in each mode, score, and write the reports. Returns the report dict."""
    say = log or _log
    estimate = estimate or default_estimate
    out = Path(config.out)
    unknown = [s for s in config.scenes if s not in S.SCENES]
    if unknown:
        raise ValueError(f"unknown scenes {unknown}; choose from {', '.join(S.SCENES)}")
    if not config.modes:
        raise ValueError("no modes to run")
    report: dict[str, Any] = {"modes": list(config.modes), "scenes": {}, "average": {}}
    t_all = time.perf_counter()
    for si, name in enumerate(config.scenes):
        folder = out / "scenes" / name
        info = ensure_scene(name, folder, config.build, config.rebuild, say)
        job = contract.read_job(folder)
        gt = S.load_gt(folder)
        entry: dict[str, Any] = {"particles": info["particles"], "substeps_per_frame": info["substeps_per_frame"],
                                 "regions": info["regions"], "interaction": info["interaction"],
                                 "gt_torn_share": info.get("gt_torn_share")}  # the ground truth's tearing (observed, novel)
        entry["novel_error_gt_field"] = novel_error(job, gt, gt["E"], gt["nu"])
        curves: dict[str, list[float]] = {}
        for mode in config.modes:
            say(f"[{si + 1}/{len(config.scenes)}] {name}: estimating ({mode})")
            cache = out / "runs" / name / mode
            t0 = time.perf_counter()
            res = estimate(job, cache, mode, config.iterations, folder)
            wall = time.perf_counter() - t0
            E, nu = np.asarray(res.E, np.float64), np.asarray(res.nu, np.float64)
            rel = np.abs(E - gt["E"]) / gt["E"]
            contract.atomic_save_npy(cache / "benchmark_E.npy", E)
            scores = {
                "material_accuracy": material_accuracy(E, gt["E"]),
                "psnr": float(res.psnr),
                "ssim": float(res.ssim),
                "novel_error": novel_error(job, gt, E, nu),
                "seconds": float(getattr(res, "seconds", wall)),
                "seconds_per_iteration": float(res.seconds_per_iteration),
                "iterations": int(res.iterations),
                "E_median_relative_error": float(np.median(rel)),
            }
            entry[f"{mode}_warnings"] = [str(w) for w in getattr(res, "warnings", [])]  # the estimator's (grid, tearing)
            entry[mode] = scores
            curves[mode] = [float(h["loss"]) for h in getattr(res, "history", []) if "loss" in h]
            write_png(out / "plots" / f"{name}_{mode}_E_error.png", error_map(job, rel))
            say(f"{name} {mode}: MA {scores['material_accuracy']:.3f}, PSNR {scores['psnr']:.2f}, SSIM {scores['ssim']:.3f}, "
                f"novel error {100 * scores['novel_error']:.2f}%, {scores['seconds']:.1f} s")
        write_png(out / "plots" / f"{name}_loss.png", loss_plot(curves))
        report["scenes"][name] = entry
    for mode in config.modes:
        report["average"][mode] = {k: float(np.mean([report["scenes"][s][mode][k] for s in config.scenes])) for k in METRICS}
    report["seconds_total"] = round(time.perf_counter() - t_all, 2)
    report["build"] = config.build.settings()
    contract.atomic_write_json(out / "report.json", report)
    contract.atomic_write_text(out / "report.md", report_markdown(report))
    say(f"report written to {out / 'report.md'}")
    return report


def _fmt(v: float, kind: str) -> str:
    if kind == "novel_error":
        return f"{100 * v:.2f}%"
    if kind in ("material_accuracy", "ssim"):
        return f"{v:.3f}"
    if kind == "psnr":
        return f"{v:.2f}"
    return f"{v:.1f}" if not math.isnan(v) else "-"


def report_markdown(report: dict[str, Any]) -> str:
    """The paper-like table: one row per scene, MA / PSNR / SSIM / novel error / s/it per mode, then the averages."""
    modes = report["modes"]
    cols = [("material_accuracy", "MA"), ("psnr", "PSNR"), ("ssim", "SSIM"), ("novel_error", "novel err"),
            ("seconds_per_iteration", "s/it"), ("seconds", "s")]
    head = ["scene"] + [f"{label} ({m})" for m in modes for _, label in cols] + ["novel err (GT field)"]
    lines = ["# PhysInteract benchmark", "",
             "MA: share of particles with |E_pred - E_gt| / E_gt <= 0.2. Novel error: mean Gaussian position error "
             "of the re-simulated novel interaction / object size; the last column is the same with the true E field "
             "at the estimator's resolution (the discretisation floor).", "",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, e in report["scenes"].items():
        row = [name] + [_fmt(e[m][k], k) for m in modes for k, _ in cols] + [_fmt(e["novel_error_gt_field"], "novel_error")]
        lines.append("| " + " | ".join(row) + " |")
    avg = ["**average**"] + [f"**{_fmt(report['average'][m][k], k)}**" for m in modes for k, _ in cols]
    floor = float(np.mean([e["novel_error_gt_field"] for e in report["scenes"].values()])) if report["scenes"] else float("nan")
    lines.append("| " + " | ".join(avg + [_fmt(floor, "novel_error")]) + " |")
    warned = [f"- {name} ({m}): {w}" for name, e in report["scenes"].items() for m in modes for w in e.get(f"{m}_warnings", [])]
    torn = [f"- {name}: {100 * max(e['gt_torn_share']):.2f}% of the ground truth's particles came apart"
            for name, e in report["scenes"].items() if e.get("gt_torn_share") and max(e["gt_torn_share"]) > 0]
    if warned or torn:
        lines += ["", "## Warnings", "", *torn, *warned]
    lines += ["", "## Plots", "",
              "Loss curves (log10 loss vs iteration; " + ", ".join(f"{m}: rgb{MODE_COLORS.get(m)}" for m in modes) + ") "
              "and E relative-error maps (green 0, yellow 20%, red >= 100%) are in `plots/`.", ""]
    for name in report["scenes"]:
        lines.append(f"### {name}\n\n![loss](plots/{name}_loss.png) " + " ".join(
            f"![{m} E error](plots/{name}_{m}_E_error.png)" for m in modes) + "\n")
    lines.append(f"Total time: {report.get('seconds_total', 0)} s.")
    return "\n".join(lines) + "\n"


def summary_line(report: dict[str, Any]) -> str:
    return json.dumps({m: {k: round(v, 4) for k, v in a.items()} for m, a in report["average"].items()})
