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

import os
import time
from pathlib import Path

import bpy

from physinteract import contract

from . import backend_process, cache_to_scene, scene_to_job
from .properties import scene_settings

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


class BackendSession:
    """Run ``physinteract <command>`` on the scene's job and play the result.

    ``start()`` raises SceneError, ContractError or RuntimeError with a message
    for the user; afterwards ``tick()`` returns RUNNING until the run ends, then
    FINISHED, CANCELLED or FAILED, with ``message`` saying what happened.
    """

    def __init__(self, scene: bpy.types.Scene, python: str, command: str = "simulate") -> None:
        self.scene_name = scene.name
        self.python = python
        self.command = command
        self.message = ""
        self.state = RUNNING
        self.max_tick_ms = 0.0
        self.ticks = 0
        self.kept_frames: list[int] = []
        self.info: scene_to_job.JobInfo | None = None
        self.process: backend_process.BackendProcess | None = None

    @property
    def scene(self) -> bpy.types.Scene:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise RuntimeError(f"scene '{self.scene_name}' is gone")
        return scene

    def start(self) -> None:
        scene = self.scene
        settings = scene_settings(scene)
        if settings.is_running:
            raise RuntimeError("A PhysInteract job is already running in this scene (Cancel it first)")
        job, info = scene_to_job.write_scene_job(scene)
        staging = staging_dir(info.cache_dir)
        if staging.exists():
            _clear_staging(staging)
            if staging.exists():
                raise RuntimeError(f"'{staging}' holds files that are not a cache; move them away")
        argv = backend_process.backend_command(self.python, self.command, info.job_dir, staging)
        self.process = backend_process.BackendProcess(argv, staging, info.job_dir / "backend_log.txt", job.num_frames)
        self.process.start()
        self.info = info
        settings.is_running = True
        settings.cancel_requested = False
        settings.progress = 0.0
        settings.max_tick_ms = 0.0
        settings.status = f"{self.command}: started"

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
        p = proc.progress
        settings.progress = p.fraction
        if code is None:
            if not proc.cancelled:
                settings.status = f"{self.command}: frame {p.frames_done}/{p.frames_total}" + (f" ({p.message})" if p.message else "")
            return RUNNING
        return self._finish(code)

    def _finish(self, code: int) -> str:
        assert self.process is not None and self.info is not None
        proc, info = self.process, self.info
        settings = scene_settings(self.scene)
        settings.is_running = False
        settings.cancel_requested = False
        staging = proc.cache_dir
        try:
            if proc.cancelled:
                self.kept_frames = proc.finish_cancel()
                if not self.kept_frames:
                    _clear_staging(staging)
                    self.message = "Cancelled before any frame was completed; the previous cache is unchanged"
                    settings.status = self.message
                    return CANCELLED
                _promote(staging, info.cache_dir)
                self._play()
                self.message = f"Cancelled: kept {len(self.kept_frames)} completed frames"
                settings.status = self.message
                return CANCELLED
            if code != 0:
                self.message = proc.failure_message(code)
                _clear_staging(staging)
                settings.status = f"{self.command} failed: {self.message}"
                return FAILED
            m = contract.read_cache_manifest(staging)
            if m.get("status") != "complete":
                self.message = f"the backend exited but the cache status is '{m.get('status')}': {m.get('message', '')}"
                _clear_staging(staging)
                settings.status = self.message
                return FAILED
            self.kept_frames = contract.completed_frames(staging)
            _promote(staging, info.cache_dir)
            self._play()
        except (contract.ContractError, OSError, ValueError) as e:
            self.message = f"could not load the backend's cache: {e}"
            settings.status = self.message
            return FAILED
        settings.progress = 1.0
        self.message = f"{self.command}: {len(self.kept_frames)} frames baked into {info.cache_dir}"
        settings.status = self.message
        return FINISHED

    def _play(self) -> None:
        assert self.info is not None
        info = self.info
        target = bpy.data.objects.get(info.target)
        cache_to_scene.play_cache(self.scene, info.cache_dir, target, info.point_set, info.scale)
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


def run_blocking(session: BackendSession, poll_s: float = 0.05, timeout_s: float | None = None) -> str:
    """Start (if needed) and run a session to its end in this thread (headless use)."""
    if session.process is None:
        session.start()
    t_end = None if timeout_s is None else time.monotonic() + timeout_s
    while session.tick() == RUNNING:
        if t_end is not None and time.monotonic() > t_end:
            session.request_cancel()
            t_end = None
        time.sleep(poll_s)
    return session.state


def free_bake(scene: bpy.types.Scene) -> int:
    """Remove the PhysInteract Mesh Cache modifiers and delete the cache's known
    files (contract.clear_cache, a guarded delete). Returns the files removed."""
    settings = scene_settings(scene)
    cache_dir = scene_to_job.resolve_dir(settings.cache_dir, scene, "cache folder")
    for obj in list(scene.objects):
        if obj.type == "MESH":
            cache_to_scene.remove_mesh_cache(obj)
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

