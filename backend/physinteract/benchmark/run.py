"""Run the estimator over the benchmark scenes and score it like the paper's Tables 1-3.

For each scene (built once and cached under ``OUT/scenes``) and each mode ('joint',
'material_only') the estimator runs on the scene's job; the scores are

- Material Accuracy: share of particles with |E_pred - E_gt| / E_gt <= 0.2;
- PSNR / SSIM of the final fit on the input frames (as the estimator reports them);
- novel error: the novel interaction re-simulated with the estimated field at the estimator's
  resolution, the Gaussians carried by the particles, mean |x - x_gt| over Gaussians and frames
  divided by the object's bounding-box diagonal (x_gt from the finer ground-truth simulation);
- seconds and seconds per iteration.

With ``RunConfig.jobs`` > 1 the estimates run that many at a time, each in its own
``physinteract estimate`` process (the CPU simulator runs its loops serially, so one estimate keeps
about one core busy); the runner reads each result back from its cache folder and scores it here.

Writes ``OUT/report.json``, ``OUT/report.md`` and plots (loss curves, E relative-error maps) under ``OUT/plots``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
    jobs: int = 1  # estimates at once, each in its own process (1: one after another, in this process)

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError(f"RunConfig.jobs: expected >= 1, got {self.jobs}")


ESTIMATE_MEMORY = 8 * 2**30  # bytes: room for one benchmark estimate (a suite run in one process peaked at 6.8 GB resident)


def _cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_jobs(units: int) -> int:
    """Estimates to run at once on this machine: one per CPU core (the CPU simulator's loops run
    serially, so an estimate keeps about one core busy), at most one per ``ESTIMATE_MEMORY`` of
    physical memory, at most ``units`` (the estimates there are), at least 1."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        memory = ESTIMATE_MEMORY
    return max(1, min(_cores(), memory // ESTIMATE_MEMORY, units))


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


@dataclass(frozen=True)
class Unit:
    """One estimate of the suite: scene ``name`` (its job folder) in ``mode``, written to ``cache``.
    cost: a guess of its run time (particles x substeps per frame), to start the longest first."""

    name: str
    mode: str
    folder: Path
    cache: Path
    cost: float


@dataclass
class CachedEstimate:
    """An estimate read back from the cache folder its ``physinteract estimate`` process wrote."""

    E: np.ndarray  # [N] Pa
    nu: np.ndarray  # [N]
    history: list[dict[str, Any]]
    seconds: float
    seconds_per_iteration: float
    iterations: int
    psnr: float
    ssim: float
    warnings: list[str]


def read_estimate(cache: Path, count: int) -> CachedEstimate:
    """The material field (``contract.read_material``) and the summary (``contract.ESTIMATE_SUMMARY_FILE``)
    of the estimate cache ``cache`` of ``count`` particles."""
    path = cache / contract.ESTIMATE_SUMMARY_FILE
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise contract.ContractError(path, "summary", "the JSON summary `physinteract estimate` writes", str(e)) from e
    E, nu = contract.read_material(cache, count)
    values: dict[str, Any] = {}
    for key, kind in (("seconds", float), ("seconds_per_iteration", float), ("iterations", int), ("psnr", float), ("ssim", float)):
        if not isinstance(summary.get(key), (int, float)):
            raise contract.ContractError(path, key, "a number", repr(summary.get(key)))
        values[key] = kind(summary[key])
    return CachedEstimate(E=E, nu=nu, history=list(summary.get("history", [])), warnings=[str(w) for w in summary.get("warnings", [])],
                          **values)


def estimate_command(unit: Unit, iterations: int | None) -> list[str]:
    """The argument list of the process that estimates ``unit`` (the same estimate as ``default_estimate``)."""
    cmd = [sys.executable, "-m", "physinteract", "estimate", str(unit.folder), "--cache", str(unit.cache), "--mode", unit.mode, "--quiet"]
    return cmd + (["--iterations", str(iterations)] if iterations is not None else [])


WORKER_LOG = "benchmark_worker.log"  # a worker's stdout and stderr, in its cache folder


def _in_processes(units: list[Unit], workers: int, jobs: dict[str, contract.Job], iterations: int | None,
                  say: Callable[[str], None], poll: float = 0.5) -> Iterator[tuple[Unit, CachedEstimate]]:
    """Run the units ``workers`` at a time, longest first, each in its own process; yield each as it ends.
    A failed unit raises RuntimeError (naming it and its log) once the others have ended; on any exit
    the processes still running are stopped (their checkpoints let a rerun resume)."""
    pending = sorted(units, key=lambda u: -u.cost)
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, _cores() // workers)))  # torch's share of the cores
    running: dict[subprocess.Popen[bytes], Unit] = {}
    failed: list[str] = []
    try:
        while pending or running:
            while pending and len(running) < workers:
                unit = pending.pop(0)
                unit.cache.mkdir(parents=True, exist_ok=True)
                with open(unit.cache / WORKER_LOG, "wb") as log:
                    proc = subprocess.Popen(estimate_command(unit, iterations), stdout=log, stderr=subprocess.STDOUT, env=env)
                running[proc] = unit
                say(f"{unit.name}: estimating ({unit.mode}) in process {proc.pid}, log {unit.cache / WORKER_LOG}")
            time.sleep(poll)
            for proc in [q for q in running if q.poll() is not None]:
                unit = running.pop(proc)
                if proc.returncode != 0:
                    tail = (unit.cache / WORKER_LOG).read_text(errors="replace").strip().splitlines()[-3:]
                    failed.append(f"{unit.name} ({unit.mode}): exit status {proc.returncode}, log {unit.cache / WORKER_LOG}: "
                                  + " | ".join(tail))
                    say(f"{unit.name} {unit.mode}: failed (exit status {proc.returncode})")
                    continue
                yield unit, read_estimate(unit.cache, len(jobs[unit.name].particles))
    finally:
        for proc in running:
            proc.terminate()
        for proc in running:
            proc.wait()
    if failed:
        raise RuntimeError("benchmark estimates failed:\n" + "\n".join(failed))


def run_benchmark(config: RunConfig, estimate: EstimateFn | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build (or reuse) the scenes, run the estimator in each mode, score, and write the reports. Returns the report dict.

    ``estimate`` replaces the project's estimator (in this process, one unit after another); with the
    default estimator and ``config.jobs`` > 1 the units run in that many ``physinteract estimate`` processes."""
    say = log or _log
    out = Path(config.out)
    unknown = [s for s in config.scenes if s not in S.SCENES]
    if unknown:
        raise ValueError(f"unknown scenes {unknown}; choose from {', '.join(S.SCENES)}")
    if not config.modes:
        raise ValueError("no modes to run")
    report: dict[str, Any] = {"modes": list(config.modes), "scenes": {}, "average": {}}
    t_all = time.perf_counter()
    jobs: dict[str, contract.Job] = {}
    scenes: dict[str, dict[str, np.ndarray]] = {}
    units: list[Unit] = []
    for name in config.scenes:
        folder = out / "scenes" / name
        info = ensure_scene(name, folder, config.build, config.rebuild, say)
        jobs[name] = contract.read_job(folder)
        scenes[name] = S.load_gt(folder)
        report["scenes"][name] = {"particles": info["particles"], "substeps_per_frame": info["substeps_per_frame"],
                                  "regions": info["regions"], "interaction": info["interaction"],
                                  "gt_torn_share": info.get("gt_torn_share")}  # the ground truth's tearing (observed, novel)
        units += [Unit(name, mode, folder, out / "runs" / name / mode, float(info["particles"] * info["substeps_per_frame"]))
                  for mode in config.modes]
    workers = config.jobs if estimate is None else 1
    if workers > 1:
        results = _in_processes(units, workers, jobs, config.iterations, say)
    else:
        results = _one_by_one(units, estimate or default_estimate, jobs, config.iterations, say)
    curves: dict[str, dict[str, list[float]]] = {name: {} for name in config.scenes}
    for done, (unit, res) in enumerate(results, 1):
        name, mode, gt = unit.name, unit.mode, scenes[unit.name]
        E, nu = np.asarray(res.E, np.float64), np.asarray(res.nu, np.float64)
        rel = np.abs(E - gt["E"]) / gt["E"]
        contract.atomic_save_npy(unit.cache / "benchmark_E.npy", E)
        scores = {
            "material_accuracy": material_accuracy(E, gt["E"]),
            "psnr": float(res.psnr),
            "ssim": float(res.ssim),
            "novel_error": novel_error(jobs[name], gt, E, nu),
            "seconds": float(res.seconds),
            "seconds_per_iteration": float(res.seconds_per_iteration),
            "iterations": int(res.iterations),
            "E_median_relative_error": float(np.median(rel)),
        }
        entry = report["scenes"][name]
        if "novel_error_gt_field" not in entry:  # the floor of the novel error: the true field at the estimator's resolution
            entry["novel_error_gt_field"] = novel_error(jobs[name], gt, gt["E"], gt["nu"])
        entry[f"{mode}_warnings"] = [str(w) for w in getattr(res, "warnings", [])]  # the estimator's (grid, tearing)
        entry[mode] = scores
        curves[name][mode] = [float(h["loss"]) for h in getattr(res, "history", []) if "loss" in h]
        write_png(out / "plots" / f"{name}_{mode}_E_error.png", error_map(jobs[name], rel))
        say(f"[{done}/{len(units)}] {name} {mode}: MA {scores['material_accuracy']:.3f}, PSNR {scores['psnr']:.2f}, "
            f"SSIM {scores['ssim']:.3f}, novel error {100 * scores['novel_error']:.2f}%, {scores['seconds']:.1f} s")
    for name in config.scenes:
        write_png(out / "plots" / f"{name}_loss.png", loss_plot(curves[name]))
    for mode in config.modes:
        report["average"][mode] = {k: float(np.mean([report["scenes"][s][mode][k] for s in config.scenes])) for k in METRICS}
    report["seconds_total"] = round(time.perf_counter() - t_all, 2)
    report["jobs"] = workers
    report["build"] = config.build.settings()
    contract.atomic_write_json(out / "report.json", report)
    contract.atomic_write_text(out / "report.md", report_markdown(report))
    say(f"report written to {out / 'report.md'}")
    return report


def _one_by_one(units: list[Unit], estimate: EstimateFn, jobs: dict[str, contract.Job], iterations: int | None,
                say: Callable[[str], None]) -> Iterator[tuple[Unit, Any]]:
    """Run the units in this process, in the order given, and yield each with its result."""
    for i, unit in enumerate(units):
        say(f"[{i + 1}/{len(units)}] {unit.name}: estimating ({unit.mode})")
        yield unit, estimate(jobs[unit.name], unit.cache, unit.mode, iterations, unit.folder)


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
    jobs = report.get("jobs", 1)
    lines.append(f"Total time: {report.get('seconds_total', 0)} s" + (f", {jobs} estimates at a time." if jobs > 1 else "."))
    return "\n".join(lines) + "\n"


def summary_line(report: dict[str, Any]) -> str:
    return json.dumps({m: {k: round(v, 4) for k, v in a.items()} for m, a in report["average"].items()})
