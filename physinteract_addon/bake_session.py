"""One backend run (bake or estimate) of a scene, driven by short ticks.

The same session serves the modal operator (one ``tick()`` per timer event),
headless runs (``run_blocking``: the CLI command, scripts, operators executed
without a window) and the tests. A tick never waits on the backend: it reads
new events, updates scene.physinteract's progress and, once the process has
ended, makes the scene play the result.

The backend writes into ``<cache>.baking``; only a finished (or cancelled with
completed frames) run replaces the previous cache, so a failing backend leaves
the scene and its previous bake exactly as they were.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import bpy
import numpy as np

from physinteract import contract

from . import backend_process, cache_to_scene, field_display, gaussian_playback, scene_to_job
from .properties import PhysInteractSceneSettings, scene_settings
from .utils import format_pascals

RUNNING, FINISHED, CANCELLED, FAILED = "RUNNING", "FINISHED", "CANCELLED", "FAILED"


def staging_dir(cache_dir: Path) -> Path:
    return cache_dir.with_name(cache_dir.name + ".baking")


def _clear_staging(path: Path) -> None:
    """Guarded delete of a staging folder: contract.clear_cache removes only the
    cache's known files (without a manifest: only the event log and log); the
    folder goes only if that left it empty."""
    if (path / contract.CACHE_MANIFEST).is_file():
        contract.clear_cache(path)
    else:  # a backend that failed before writing its manifest may leave its event log or log
        for name in (contract.EVENTS_FILE, contract.LOG_FILE):
            if (path / name).is_file():
                (path / name).unlink()
    if path.is_dir():
        for sub in (path / contract.FRAMES_DIR, path):
            try:
                sub.rmdir()
            except OSError:
                pass


def _promote(staging: Path, cache_dir: Path) -> None:
    """Replace the cache in ``cache_dir`` by the one in ``staging`` (renames only)."""
    if (cache_dir / contract.CACHE_MANIFEST).is_file():
        contract.clear_cache(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for entry in staging.iterdir():
        dst = cache_dir / entry.name
        if entry.is_dir() and dst.is_dir():  # frames/ kept because of foreign files: move file by file
            for f in entry.iterdir():
                os.replace(f, dst / f.name)
            entry.rmdir()
        else:
            os.replace(entry, dst)
    staging.rmdir()


def clear_running_flags(settings: PhysInteractSceneSettings) -> None:
    """No run goes on in this scene (any more): clear its running and cancel flags."""
    settings.is_running = False
    settings.cancel_requested = False


class BackendSession:
    """Run ``physinteract <command>`` on the scene's job and play the result.

    ``start()`` raises SceneError, ContractError or RuntimeError with a message
    for the user; afterwards ``tick()`` returns RUNNING until the run ends, then
    FINISHED, CANCELLED or FAILED, with ``message`` saying what happened.
    """

    terminate_grace_s = backend_process.TERMINATE_GRACE_S  # SIGTERM -> SIGKILL wait on cancel (s)

    def __init__(self, scene: bpy.types.Scene, python: str, command: str = "simulate") -> None:
        self.scene_name = scene.name
        self.python = python
        self.command = command
        self.message = ""
        self.state = RUNNING
        self.max_tick_ms = 0.0
        self.ticks = 0
        self.warnings: list[str] = []  # the backend's warnings (contract.WARNING_EVENTS: the grid, tearing)
        self.kept_frames: list[int] = []
        self.changed_scene = False  # whether the run's end changed the scene (an undo step)
        self.num_particles = 0
        self.info: scene_to_job.JobInfo | None = None
        self.cache_dir: Path | None = None  # where the result goes (the backend writes beside it, see staging_dir)
        self.process: backend_process.BackendProcess | None = None
        # A bake's material: the estimate folder passed as --material (None: the job's initial E, nu).
        self.use_estimate: bool | None = None  # None: scene.physinteract.use_estimated_material
        self.material_dir: Path | None = None

    @property
    def scene(self) -> bpy.types.Scene:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RuntimeError(f"scene '{self.scene_name}' is gone")
        return scene

    def _settings_if_idle(self) -> PhysInteractSceneSettings:
        """The scene's settings; RuntimeError when a run already goes on in the scene."""
        settings = scene_settings(self.scene)
        if settings.is_running:
            raise RuntimeError("A PhysInteract job is already running in this scene (Cancel it first)")
        return settings

    def _mark_started(self, settings: PhysInteractSceneSettings) -> None:
        """The process has started: set the scene's running flags and reset its progress."""
        settings.is_running = True
        settings.cancel_requested = False
        settings.progress = 0.0
        settings.max_tick_ms = 0.0
        settings.status = f"{self.command}: started"
        settings.backend_warning = ""

    def start(self) -> None:
        scene = self.scene
        settings = self._settings_if_idle()
        job, info = scene_to_job.write_scene_job(scene)
        self.cache_dir = self.result_dir(info)
        if self.command == "simulate":
            use = settings.use_estimated_material if self.use_estimate is None else self.use_estimate
            self.material_dir = estimated_material(info.cache_dir, len(job.particles)) if use else None
        staging = staging_dir(self.cache_dir)
        if staging.exists():
            self._clear_staging(staging)
            if staging.exists():
                raise RuntimeError(f"'{staging}' holds files that are not a cache; move them away")
        argv = self.command_line(info, staging)
        self.process = backend_process.BackendProcess(argv, staging, info.job_dir / f"backend_{self.command}_log.txt",
                                                      job.num_frames, grace_s=self.terminate_grace_s)
        self.process.start()
        self.info = info
        self.num_particles = len(job.particles)
        self._mark_started(settings)

    def result_dir(self, info: scene_to_job.JobInfo) -> Path:
        """The folder this run's result goes to: the scene's cache folder."""
        return info.cache_dir

    def command_line(self, info: scene_to_job.JobInfo, staging: Path) -> list[str]:
        """The backend's argument list (never a shell string)."""
        argv = backend_process.backend_command(self.python, self.command, info.job_dir, staging)
        return argv + (["--material", str(self.material_dir)] if self.material_dir is not None else [])

    def running_status(self, proc: backend_process.BackendProcess) -> tuple[float, str]:
        """(progress fraction, status line) while the backend runs."""
        p = proc.progress
        return p.fraction, f"{self.command}: frame {p.frames_done}/{p.frames_total}" + (f" ({p.message})" if p.message else "")

    @staticmethod
    def _clear_staging(path: Path) -> None:
        _clear_staging(path)

    def request_cancel(self) -> None:
        scene_settings(self.scene).cancel_requested = True

    def tick(self) -> str:
        """Advance without waiting; returns the state. Its duration is measured
        and the longest one kept in ``max_tick_ms`` (and scene.physinteract)."""
        t0 = time.perf_counter()
        try:
            if self.state == RUNNING:
                self.state = self._tick()
            return self.state
        finally:
            self.ticks += 1
            self.max_tick_ms = max(self.max_tick_ms, (time.perf_counter() - t0) * 1000.0)
            scene = bpy.data.scenes.get(self.scene_name)
            if scene is not None:
                scene_settings(scene).max_tick_ms = self.max_tick_ms

    def _tick(self) -> str:
        assert self.process is not None and self.info is not None
        settings = scene_settings(self.scene)
        proc = self.process
        if settings.cancel_requested and not proc.cancelled:
            proc.cancel()
            settings.status = f"{self.command}: cancelling"
        code = proc.poll()
        warnings = [str(w) for kind in contract.WARNING_EVENTS for w in (proc.latest.get(kind) or {}).get("warnings") or []]
        if warnings != self.warnings:  # the property only changes when an event brought news
            self.warnings = warnings
            settings.backend_warning = " ".join(warnings)
        fraction, status = self.running_status(proc)
        settings.progress = fraction
        if code is None:
            if not proc.cancelled:
                settings.status = status
            return RUNNING
        return self._finish(code)

    def _end_run(self) -> tuple[backend_process.BackendProcess, Path, PhysInteractSceneSettings]:
        """The process has ended: clear the running flags; returns (process, result folder, scene settings)."""
        assert self.process is not None and self.info is not None and self.cache_dir is not None
        settings = scene_settings(self.scene)
        clear_running_flags(settings)
        return self.process, self.cache_dir, settings

    def _end(self, state: str, message: str, status: str | None = None) -> str:
        """Record how the run ended: ``message`` (also the status line unless ``status`` is given); returns ``state``."""
        self.message = message
        scene_settings(self.scene).status = message if status is None else status
        return state

    def _finish(self, code: int) -> str:
        proc, cache_dir, settings = self._end_run()
        staging = proc.cache_dir
        try:
            if proc.cancelled:
                self.kept_frames = proc.finish_cancel()
                if not self.kept_frames:
                    _clear_staging(staging)
                    return self._end(CANCELLED, "Cancelled before any frame was completed; the previous cache is unchanged")
                _promote(staging, cache_dir)
                self._play()
                self.changed_scene = True
                return self._end(CANCELLED, f"Cancelled: kept {len(self.kept_frames)} completed frames")
            if code != 0:
                message = proc.failure_message(code)
                _clear_staging(staging)
                return self._end(FAILED, message, f"{self.command} failed: {message}")
            m = contract.read_cache_manifest(staging)
            if m.get("status") != "complete":
                message = f"the backend exited but the cache status is '{m.get('status')}': {m.get('message', '')}"
                _clear_staging(staging)
                return self._end(FAILED, message)
            self.kept_frames = contract.completed_frames(staging)
            _promote(staging, cache_dir)
            self._play()
            self.changed_scene = True
        except (contract.ContractError, OSError, ValueError) as e:
            return self._end(FAILED, f"could not load the backend's cache: {e}")
        settings.progress = 1.0
        material = " with the estimated material" if self.material_dir is not None else ""
        return self._end(FINISHED, f"{self.command}: {len(self.kept_frames)} frames baked{material} into {cache_dir}")

    def _play(self) -> None:
        assert self.info is not None and self.cache_dir is not None
        info = self.info
        target = bpy.data.objects.get(info.target)
        cache_to_scene.play_cache(self.scene, self.cache_dir, target, info.point_set, info.scale)
        if target is not None:
            target.update_tag()

    def kill(self) -> None:
        """Stop at once without loading anything (add-on disabled, file closed)."""
        if self.process is not None:
            self.process.kill()
            self.state = CANCELLED
            scene = bpy.data.scenes.get(self.scene_name)
            if scene is not None:
                scene_settings(scene).is_running = False


ESTIMATE_SUBDIR = "estimate"  # the estimate cache is <cache folder>/estimate
# Files an estimate cache holds besides the contract's known cache files (guarded delete of a discarded run).
ESTIMATE_FILES = (contract.ESTIMATE_SUMMARY_FILE, "estimate_trajectory.npy", "estimate_trajectory_times.npy", contract.CONTACT_FILE)


# The estimator's forward-only searches before and between its iterations, as the status line names them.
ESTIMATE_STAGES = {
    "scan": "scanning the stiffness", "rescan": "scanning the stiffness", "split_scan": "scanning the stiffness",
    "region_scan": "scanning the stiffness", "lag_scan": "aligning the trajectory in time",
    "contact_scan": "fitting the contact region", "grasp_fit": "tracking the grasped part",
}


def estimate_dir(cache_dir: Path) -> Path:
    """Where the estimate of the scene whose bake cache is ``cache_dir`` goes."""
    return cache_dir / ESTIMATE_SUBDIR


def has_estimate(cache_dir: Path) -> bool:
    """Whether the scene whose bake cache is ``cache_dir`` has an estimated material field."""
    return (estimate_dir(cache_dir) / "material_E.npy").is_file()


def estimated_material(cache_dir: Path, num_particles: int) -> Path | None:
    """The estimate folder to bake with (``--material``), or None when there is no estimate.

    Raises SceneError when the estimate does not fit the job (another particle count: the
    object was filled again since) or is unreadable, saying what to do."""
    folder = estimate_dir(cache_dir)
    if not has_estimate(cache_dir):
        return None
    try:
        contract.read_material(folder, num_particles)
    except contract.ContractError as e:
        raise scene_to_job.SceneError(f"The estimated material does not fit this scene ({e}): estimate again, or turn off "
                                      "'Use Estimated Material' (PhysInteract > Bake)") from None
    return folder


class EstimateSession(BackendSession):
    """Run ``physinteract estimate JOB --cache <cache>/estimate [--mode M] [--iterations N]``.

    Progress (iteration, loss, ETA) comes from the estimator's "progress" events. On success
    the material field (material_E.npy, material_nu.npy: E [N] Pa, nu [N]) is stored as point
    attributes "E" and "nu" on the particles object and the target's fill preview, where they
    exist with N vertices, and its median in scene.physinteract. A cancel keeps the estimate
    so far when the backend wrote one; a failure leaves the scene and the previous estimate as
    they were. The fitted motion is not played: the bake cache stays the scene's animation.
    """

    # an estimator iteration takes seconds on the CPU; cancel lets it finish and save its partial result
    terminate_grace_s = 60.0

    def __init__(self, scene: bpy.types.Scene, python: str, mode: str = "joint", iterations: int = 0) -> None:
        super().__init__(scene, python, "estimate")
        self.mode = mode
        self.iterations = int(iterations)
        self.E_median = math.nan
        self.stored_on: list[str] = []  # objects that received the E / nu attributes
        self.contact_problem = ""  # why the estimated contact set was not stored, if it was not

    def result_dir(self, info: scene_to_job.JobInfo) -> Path:
        return estimate_dir(info.cache_dir)

    def command_line(self, info: scene_to_job.JobInfo, staging: Path) -> list[str]:
        argv = super().command_line(info, staging) + ["--mode", self.mode, "--quiet"]
        return argv + (["--iterations", str(self.iterations)] if self.iterations > 0 else [])

    def start(self) -> None:
        super().start()
        s = scene_settings(self.scene)
        s.estimate_progress_iteration, s.estimate_progress_total = 0, self.iterations
        s.estimate_loss, s.estimate_eta_s = 0.0, 0.0

    @staticmethod
    def _clear_staging(path: Path) -> None:
        for name in ESTIMATE_FILES:
            if (path / name).is_file():
                (path / name).unlink()
        _clear_staging(path)

    def running_status(self, proc: backend_process.BackendProcess) -> tuple[float, str]:
        s = scene_settings(self.scene)
        ev = proc.latest.get("progress")
        if ev is not None:
            s.estimate_progress_iteration = int(ev.get("iteration", 0))
            s.estimate_progress_total = int(ev.get("iterations", 0))
            s.estimate_loss = float(ev.get("loss", 0.0))
            s.estimate_eta_s = float(ev.get("eta_s", 0.0))
            return (float(ev.get("fraction", 0.0)),
                    f"estimate: iteration {s.estimate_progress_iteration}/{s.estimate_progress_total}, "
                    f"loss {s.estimate_loss:.4g}, ETA {s.estimate_eta_s:.0f} s")
        for kind in reversed(list(proc.latest)):  # the most recent search the estimator reported
            if kind in ESTIMATE_STAGES:
                return 0.0, f"estimate: {ESTIMATE_STAGES[kind]} (loss {float(proc.latest[kind].get('loss', 0.0)):.4g})"
        return 0.0, "estimate: preparing"

    def _finish(self, code: int) -> str:
        proc, cache_dir, settings = self._end_run()
        staging = proc.cache_dir
        field: tuple[np.ndarray, np.ndarray] | None = None
        try:
            if proc.cancelled or code == 0:
                try:
                    status = contract.read_cache_manifest(staging).get("status")
                    if status in ("complete", "cancelled") and (status == "complete" or proc.cancelled):
                        field = contract.read_material(staging, self.num_particles)
                except contract.ContractError as e:
                    if not proc.cancelled:
                        self.message = f"the backend exited but wrote no usable estimate: {e}"
            if field is None:
                self._clear_staging(staging)
                if proc.cancelled:
                    return self._end(CANCELLED, "Cancelled before an estimate was written; the scene is unchanged")
                message = self.message or proc.failure_message(code)
                return self._end(FAILED, message, f"estimate failed: {message}")
            _promote(staging, cache_dir)
        except (contract.ContractError, OSError, ValueError) as e:
            return self._end(FAILED, f"could not keep the estimate: {e}")
        E, nu = field
        self._store(E, nu)
        self.changed_scene = True
        where = f" on {', '.join(repr(n) for n in self.stored_on)}" if self.stored_on else ""
        summary = f"median E {format_pascals(self.E_median, '.3g')}, nu {settings.estimate_nu_median:.3f}{where}{self.contact_problem}"
        if proc.cancelled:
            iteration = settings.estimate_progress_iteration
            return self._end(CANCELLED, f"Cancelled at iteration {iteration}: kept the estimate so far ({summary})")
        settings.progress = 1.0
        return self._end(FINISHED, f"estimate: {summary}, in {cache_dir}")

    def _store(self, E: np.ndarray, nu: np.ndarray) -> None:
        assert self.info is not None and self.cache_dir is not None
        settings = scene_settings(self.scene)
        self.E_median = float(np.median(E))
        settings.estimate_E_median = self.E_median
        settings.estimate_E_min, settings.estimate_E_max = float(np.min(E)), float(np.max(E))
        (_, _, c_min), (_, _, c_median), (_, _, c_max) = field_display.E_legend(E)
        settings.legend_color_min, settings.legend_color_median, settings.legend_color_max = c_min, c_median, c_max
        settings.estimate_nu_median = float(np.median(nu))
        settings.estimate_dir = str(self.cache_dir)
        self.stored_on = []
        self.contact_problem = ""
        try:
            contact = contract.read_contact(self.cache_dir, len(E))
        except contract.ContractError as e:  # the material is still good: keep it, say what was skipped
            contact = None
            self.contact_problem = f"; the estimated contact set was not stored: {e}"
        settings.estimate_contact_count = -1 if contact is None else len(contact)
        for name in (cache_to_scene.PARTICLES_OBJECT, self.info.target + cache_to_scene.FILL_PREVIEW_SUFFIX):
            obj = bpy.data.objects.get(name)
            if obj is not None and cache_to_scene.store_material(obj, E, nu):
                self.stored_on.append(name)
                if contact is not None:
                    cache_to_scene.store_contact(obj, contact)


def run_blocking(session: BackendSession, poll_s: float = 0.05, timeout_s: float | None = None,
                 report: Callable[[str], None] | None = None) -> str:
    """Start (if needed) and run a session to its end in this thread (headless use).

    ``report`` (e.g. print) receives the status line each time it changes: the progress of a headless run."""
    if session.process is None:
        session.start()
    t_end = None if timeout_s is None else time.monotonic() + timeout_s
    last = ""
    while True:
        state = session.tick()
        status = scene_settings(session.scene).status
        if report is not None and status and status != last:
            report(status)
            last = status
        if state != RUNNING:
            return state
        if t_end is not None and time.monotonic() > t_end:
            session.request_cancel()
            t_end = None
        time.sleep(poll_s)


def free_bake(scene: bpy.types.Scene) -> int:
    """Remove the PhysInteract Mesh Cache modifiers and delete the cache's known
    files (contract.clear_cache, a guarded delete). Returns the files removed."""
    settings = scene_settings(scene)
    cache_dir = scene_to_job.resolve_dir(settings.cache_dir, scene, "cache folder")
    for obj in list(scene.objects):
        if obj.type == "MESH":
            cache_to_scene.remove_mesh_cache(obj)
            gaussian_playback.detach(obj)
    particles = bpy.data.objects.get(cache_to_scene.PARTICLES_OBJECT)
    if particles is not None:
        bpy.data.objects.remove(particles)
    removed = 0
    if (cache_dir / contract.CACHE_MANIFEST).is_file():
        removed = contract.clear_cache(cache_dir)
        try:
            cache_dir.rmdir()
        except OSError:
            pass
    return removed

