"""Initialise from Video: ``physinteract init JOB_DIR`` out of process, then the result in the scene.

The backend (issue 6: vision-language model, SAM 2, pose fit, back-projection,
tracking) reads the scene's job (its video, camera and particles; contact and
trajectory left empty) and updates it in place: the interaction type, the contact
particles and the initial trajectory T0. Its progress comes as JSON lines in
``JOB_DIR/init_events.jsonl`` ({"event": "start" | "stage" | "progress" | "done" |
"error", "time", "stage", "fraction", "message", ...}; "done" carries
interaction_type, contact_count, keyframes).

Once it is done the add-on reads the job back (``contract.read_job``) and, only
if everything in it fits the scene, changes the scene at once:

- the target's Interaction type;
- its contact source becomes "From Video" with the found particle indices, shown
  as the point object "<target> Contact" (the particles' rest positions);
- the trajectory Empty (the target's, or a new "<target> Trajectory") gets one
  location keyframe per T0 sample at frame ``frame_start + t * fps`` (linear
  interpolation, as the backend interpolates), editable in the Graph Editor.

A failed, cancelled or unusable run changes nothing in the scene.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import mathutils
import numpy as np

from physinteract import contract

from . import backend_process, scene_to_job
from .bake_session import CANCELLED, FAILED, FINISHED, BackendSession
from .properties import object_settings
from .properties.object import INTERACTION_ITEMS

INIT_EVENTS = "init_events.jsonl"
CONTACT_SUFFIX = " Contact"  # the contact display object of X is "X Contact"
TRAJECTORY_SUFFIX = " Trajectory"  # a trajectory Empty made for X is "X Trajectory"


def init_command(python: str, job_dir: Path, interaction: str | None = None,
                 contact_box: tuple[int, int, int, int] | None = None) -> list[str]:
    """The argument list of ``physinteract init JOB_DIR [--interaction T] [--contact-box X0,Y0,X1,Y1]`` (box in px)."""
    argv = [str(python), "-m", "physinteract", "init", str(job_dir)]
    if interaction:
        argv += ["--interaction", interaction]
    if contact_box is not None:
        argv += ["--contact-box", ",".join(str(int(v)) for v in contact_box)]
    return argv


class InitSession(BackendSession):
    """One ``physinteract init`` run of the scene's job (driven by ticks like a bake)."""

    terminate_grace_s = 10.0  # the backend may finish its current stage

    def __init__(self, scene: bpy.types.Scene, python: str) -> None:
        super().__init__(scene, python, "init")
        self.contact_count = 0
        self.keyframes = 0
        self.interaction = ""

    def start(self) -> None:
        scene = self.scene
        settings = self._settings_if_idle()
        if settings.clip is None:
            raise scene_to_job.SceneError("Choose the video to initialise from (PhysInteract > Video & Camera)")
        job, info = scene_to_job.write_scene_job(scene, initialise=True)
        events = info.job_dir / INIT_EVENTS
        if events.is_file():
            events.unlink()  # a previous run's events
        box = tuple(settings.contact_box) if settings.use_contact_box else None
        if box is not None and (box[2] <= box[0] or box[3] <= box[1]):
            raise scene_to_job.SceneError(f"The contact box {box} is empty: x1 > x0 and y1 > y0 (PhysInteract > Interaction)")
        interaction = None if settings.init_interaction == "AUTO" else settings.init_interaction
        argv = init_command(self.python, info.job_dir, interaction, box)  # type: ignore[arg-type]
        self.process = backend_process.BackendProcess(argv, info.job_dir, info.job_dir / "backend_init_log.txt",
                                                      grace_s=self.terminate_grace_s, events_path=events)
        self.process.start()
        self.info, self.cache_dir = info, info.job_dir
        self.num_particles = len(job.particles)
        self._mark_started(settings)

    def running_status(self, proc: backend_process.BackendProcess) -> tuple[float, str]:
        ev = proc.latest.get("progress") or proc.latest.get("stage") or proc.latest.get("start") or {}
        fraction = float(ev.get("fraction", 0.0) or 0.0)
        stage = str(ev.get("stage") or "")
        message = str(ev.get("message") or "")
        text = "init: " + (stage or "starting") + (f" ({fraction:.0%})" if fraction else "") + (f": {message}" if message else "")
        return fraction, text

    def _finish(self, code: int) -> str:
        proc, _, settings = self._end_run()
        if proc.cancelled:
            return self._end(CANCELLED, "Initialisation cancelled: the scene is unchanged")
        if code != 0:
            message = proc.failure_message(code)  # its error event or its log's last line (a job folder has no cache manifest)
            return self._end(FAILED, message, f"init failed: {message}")
        done = proc.latest.get("done")
        if done is None:
            return self._end(FAILED, "init: the backend exited without a 'done' event; the scene is unchanged")
        assert self.info is not None
        try:
            job = contract.read_job(self.info.job_dir)
            self.contact_count, self.keyframes = apply_initialisation(self.scene, job, self.info, self.num_particles)
        except (contract.ContractError, scene_to_job.SceneError, OSError, ValueError) as e:
            return self._end(FAILED, f"init: the backend's job cannot be used: {e}; the scene is unchanged")
        self.interaction = job.interaction.type
        self.changed_scene = True
        settings.progress = 1.0
        return self._end(FINISHED, f"init: {self.interaction}, {self.contact_count} contact particles, "
                                   f"{self.keyframes} trajectory keyframes")


def _checked(job: contract.Job, obj: bpy.types.Object,
             num_particles: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """(contact [K], the share of each held [K] or None, times [M] s, trajectory [M, 3] m) of the backend's job,
    checked against the scene's fill."""
    types = {item[0] for item in INTERACTION_ITEMS}
    if job.interaction.type not in types:
        raise scene_to_job.SceneError(f"interaction type '{job.interaction.type}' is not one of {sorted(types)}")
    if len(job.particles) != num_particles:
        raise scene_to_job.SceneError(f"the job has {len(job.particles)} particles, '{obj.name}' has {num_particles}")
    contact = np.asarray(job.contact, np.int64)
    if contact.size == 0:
        raise scene_to_job.SceneError("the backend found no contact particles")
    times, traj = np.asarray(job.trajectory_times, np.float64), np.asarray(job.trajectory, np.float64)
    if len(times) == 0 or traj.shape != (len(times), 3):
        raise scene_to_job.SceneError("the backend wrote no trajectory")
    if np.any(np.diff(times) <= 0):
        raise scene_to_job.SceneError("the trajectory's times do not increase")
    held = None if job.contact_weights is None else np.asarray(job.contact_weights, np.float64)  # read_job checked them
    return contact, held, times, traj


def apply_initialisation(scene: bpy.types.Scene, job: contract.Job, info: scene_to_job.JobInfo, num_particles: int) -> tuple[int, int]:
    """Put the backend's interaction into the scene (see the module docstring); returns (contact particles,
    keyframes). Everything is checked before the first change, so a SceneError leaves the scene as it was."""
    obj = bpy.data.objects.get(info.target)
    if obj is None:
        raise scene_to_job.SceneError(f"the target '{info.target}' is gone")
    contact, held, times, traj = _checked(job, obj, num_particles)
    o = object_settings(obj)
    empty = o.trajectory
    if empty is not None and empty.parent is not None:
        raise scene_to_job.SceneError(f"the trajectory Empty '{empty.name}' has a parent: unparent it (its keys are world positions)")
    scale = float(info.scale)
    o.interaction_type = job.interaction.type
    scene_to_job.set_video_contact(obj, contact, num_particles, held)
    show_contact(scene, obj, np.asarray(job.particles, np.float64)[contact] / scale)
    if empty is None:
        empty = bpy.data.objects.new(obj.name + TRAJECTORY_SUFFIX, None)
        empty.empty_display_type = "SPHERE"
        empty.empty_display_size = max(float(o.contact_radius), 1e-3)
        scene.collection.objects.link(empty)
        o.trajectory = empty
    key_trajectory(empty, info.frame_start + times * job.fps, traj / scale)
    return len(contact), len(times)


def show_contact(scene: bpy.types.Scene, obj: bpy.types.Object, points_bu: np.ndarray) -> bpy.types.Object:
    """The point object "<obj> Contact" at ``points_bu`` [K, 3] (world, Blender units), drawn in front."""
    name = obj.name + CONTACT_SUFFIX
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(points_bu))
    mesh.vertices.foreach_set("co", np.ascontiguousarray(points_bu, np.float32).ravel())
    mesh.update()
    shown = bpy.data.objects.get(name)
    if shown is None:
        shown = bpy.data.objects.new(name, mesh)
        scene.collection.objects.link(shown)
    else:
        old = shown.data
        shown.data = mesh
        if isinstance(old, bpy.types.Mesh) and old.users == 0:
            bpy.data.meshes.remove(old)
    shown.matrix_world = mathutils.Matrix.Identity(4)
    shown.show_in_front, shown.hide_select = True, True
    return shown


def location_fcurves(obj: bpy.types.Object) -> list[Any]:
    """The F-curves animating ``obj.location`` (the action's slot for ``obj`` in Blender 4.4+)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return []
    action: Any = ad.action
    try:
        from bpy_extras import anim_utils

        bag = anim_utils.action_get_channelbag_for_slot(action, ad.action_slot)
        fcurves: Any = bag.fcurves if bag is not None else []
    except (ImportError, AttributeError):  # before slotted actions
        fcurves = action.fcurves
    return [fc for fc in fcurves if fc.data_path == "location"]


def key_trajectory(empty: bpy.types.Object, frames: np.ndarray, positions_bu: np.ndarray) -> None:
    """Replace the Empty's location keys by one linear key per (frame, position) (world, Blender units)."""
    for fc in location_fcurves(empty):
        fc.keyframe_points.clear()
    for frame, p in zip(frames, positions_bu):
        empty.location = mathutils.Vector(p.tolist())
        empty.keyframe_insert("location", frame=float(frame))
    for fc in location_fcurves(empty):
        for kp in fc.keyframe_points:
            kp.interpolation = "LINEAR"
        fc.update()

