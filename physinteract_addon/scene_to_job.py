"""Blender scene -> contract job folder.

Reads scene.physinteract and the target's object.physinteract, samples the
animation once per frame (the trajectory Empty's world position, the camera's
world matrix: F-curves, parents and constraints all evaluated by
``scene.frame_set``), and writes a job with ``physinteract.contract.write_job``.

Units: Blender units are turned into metres with the target's ``scale``
(metres per unit): positions, trajectory and camera translations are
multiplied by it; the point set's ``object_to_world`` maps object-local
Blender coordinates to world metres, so its PC2 comes back in the object's
own local space and a Mesh Cache modifier plays it in place.

Filling: with "Vertices" the mesh's vertices are the particles; with "Volume"
the particles come from the backend's fill (operators/fill.py, a particle PLY
in world metres) and the mesh's vertices ride along as the job's point set
(passive tracers). Either way the point set's PC2 drives the mesh.

Gaussians (object.physinteract.representation "GAUSSIANS"): the point set is
the object's Gaussians in world metres (``gaussians.world_gaussians``: centres,
rotations, scales, colours, opacities), the set the estimator renders; its
vertices are the Gaussian centres, so its PC2 still plays on the object.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bmesh
import bpy
import numpy as np

from physinteract import contract

from . import filling, gaussians
from .preferences import addon_preferences
from .properties import object_settings, scene_settings

PARTICLES = "particles"  # the cache's point set of all particles (contract)


class SceneError(Exception):
    """The scene cannot be turned into a job; the message says what to fix."""


@dataclass
class JobInfo:
    """What the caller needs besides the job: where it went and who plays what."""

    job_dir: Path
    cache_dir: Path
    target: str  # object name
    point_set: str  # the target's point set name in the cache
    scale: float  # metres per Blender unit
    frame_start: int
    frame_end: int


def point_set_name(obj: bpy.types.Object) -> str:
    """A contract-safe point set name for an object (letters, digits, '_', '-')."""
    name = re.sub(r"[^A-Za-z0-9_\-]", "_", obj.name).strip("_") or "object"
    return "object" if name == PARTICLES else name


def resolve_dir(path: str, scene: bpy.types.Scene, what: str) -> Path:
    """An absolute folder for a setting: '//' is beside the .blend file; while the
    file is unsaved, '//' paths go to the preferences' default folder (or the temp folder)."""
    if path.startswith("//") and not bpy.data.filepath:
        prefs = addon_preferences()
        base = Path(bpy.path.abspath(prefs.default_cache_dir)) if prefs and prefs.default_cache_dir else None
        base = base or Path(tempfile.gettempdir()) / "physinteract"
        return (base / scene.name / path[2:].strip("/\\")).resolve()
    if not path:
        raise SceneError(f"The {what} is empty")
    return Path(bpy.path.abspath(path)).resolve()


def frame_range(scene: bpy.types.Scene) -> tuple[int, int]:
    s = scene_settings(scene)
    start, end = (scene.frame_start, scene.frame_end) if s.use_scene_range else (s.frame_start, s.frame_end)
    if end < start:
        raise SceneError(f"Frame range {start}..{end} is empty")
    return int(start), int(end)


def sample_matrices(scene: bpy.types.Scene, objects: list[bpy.types.Object], frames: range) -> dict[str, np.ndarray]:
    """World matrices [F, 4, 4] (Blender units) of ``objects`` at each frame, the
    scene's current frame restored afterwards."""
    out = {o.name: np.empty((len(frames), 4, 4)) for o in objects}
    cur, sub = scene.frame_current, scene.frame_subframe
    try:
        for i, f in enumerate(frames):
            scene.frame_set(f)
            for o in objects:
                out[o.name][i] = np.array(o.matrix_world)
    finally:
        scene.frame_set(cur, subframe=sub)
    return out


DOMAIN_PADDING = 0.5  # domain margin on every side, times the largest side of the particles + trajectory box
FALL_ALLOWANCE = 2.0  # extra room below (no ground), times that side, at most the free-fall drop over the clip
MARGIN_CELLS = 3  # and never less than this many grid cells between a particle and the domain's faces


def simulation_domain(points_m: np.ndarray, duration_s: float, gravity_z: float, ground_m: float | None,
                      grid_resolution: int) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The MPM domain box (m, world) holding ``points_m`` (particles and trajectory)
    with a margin, more room below for falling, and the ground plane when there is one.
    The grid has ``grid_resolution`` cells along the box's longest side."""
    core_lo, core_hi = points_m.min(axis=0), points_m.max(axis=0)
    side = max(float((core_hi - core_lo).max()), 1e-3)
    lo, hi = core_lo - DOMAIN_PADDING * side, core_hi + DOMAIN_PADDING * side
    if ground_m is None:
        lo[2] -= min(0.5 * abs(gravity_z) * duration_s**2, FALL_ALLOWANCE * side)
    else:
        lo[2] = min(lo[2], ground_m - DOMAIN_PADDING * side)
    for _ in range(20):  # widening the box widens its cells: iterate to a fixed point
        need = MARGIN_CELLS * float((hi - lo).max()) / max(grid_resolution, 2 * MARGIN_CELLS + 1)
        lo, hi = np.minimum(lo, core_lo - need), np.maximum(hi, core_hi + need)
    return (float(lo[0]), float(lo[1]), float(lo[2])), (float(hi[0]), float(hi[1]), float(hi[2]))


def mesh_arrays(obj: bpy.types.Object) -> tuple[np.ndarray, list[list[int]], float]:
    """(local vertex positions [V, 3] in Blender units, polygons, world volume in
    cubic units: the closed mesh's volume, else its world bounding box volume)."""
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    faces = [[mesh.loops[i].vertex_index for i in range(p.loop_start, p.loop_start + p.loop_total)] for p in mesh.polygons]
    bm = bmesh.new()
    try:
        bm.from_mesh(mesh)
        bm.transform(obj.matrix_world)
        closed = len(bm.faces) > 0 and all(e.is_manifold for e in bm.edges)
        volume = abs(bm.calc_volume()) if closed else 0.0
    finally:
        bm.free()
    local = co.reshape(-1, 3)
    if volume <= 0.0:
        m = np.array(obj.matrix_world)
        world = local @ m[:3, :3].T + m[:3, 3]
        ext = np.maximum(world.max(axis=0) - world.min(axis=0), 1e-6) if len(world) else np.ones(3)
        volume = float(np.prod(ext))
    return local, faces, volume


def surface_world(obj: bpy.types.Object, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The object's surface in world metres: (vertices [V, 3], triangles [F, 3])."""
    local_bu, faces, _ = mesh_arrays(obj)
    m = np.array(obj.matrix_world)
    tris = [[f[0], f[i], f[i + 1]] for f in faces for i in range(1, len(f) - 1)]
    return (local_bu @ m[:3, :3].T + m[:3, 3]) * scale, np.asarray(tris, np.int64).reshape(-1, 3)


def object_signature(obj: bpy.types.Object, scale: float) -> str:
    """A digest of what a fill depends on: world matrix, scale and vertex positions."""
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    h = hashlib.sha256(np.array(obj.matrix_world, np.float32).tobytes())
    h.update(np.float64(scale).tobytes())
    h.update(co.tobytes())
    return h.hexdigest()[:32]


def _selected_vertices(obj: bpy.types.Object) -> np.ndarray | None:
    """Vertex indices of the vertex group / selection contact sources (None for 'Nearest')."""
    s = object_settings(obj)
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    if s.contact_source == "VERTEX_GROUP":
        group = obj.vertex_groups.get(s.contact_group)
        if group is None:
            raise SceneError(f"'{obj.name}' has no vertex group '{s.contact_group}' (Interaction > Vertex Group)")
        idx = group.index
        return np.array([v.index for v in mesh.vertices if any(g.group == idx and g.weight > 0.0 for g in v.groups)], np.int64)
    if s.contact_source == "SELECTION":
        sel = np.zeros(len(mesh.vertices), bool)
        mesh.vertices.foreach_get("select", sel)
        return np.flatnonzero(sel).astype(np.int64)
    return None


def object_point_set(obj: bpy.types.Object, name: str, world_bu: np.ndarray, scale: float) -> contract.PointSet:
    """The job's point set of ``obj``: its vertices in world metres, or with Gaussians
    (representation "GAUSSIANS") its Gaussians in world metres with rotations, scales,
    colours and opacities. Raises SceneError when a Gaussian object lacks a 3DGS attribute."""
    metres = np.diag([scale, scale, scale, 1.0])
    o2w = metres @ np.array(obj.matrix_world)
    if object_settings(obj).representation != "GAUSSIANS":
        return contract.PointSet(name=name, rest_positions=world_bu * scale, object_to_world=o2w)
    try:
        g = gaussians.world_gaussians(obj, scale)
    except gaussians.GaussianObjectError as e:
        raise SceneError(f"{e}: import the object with File > Import > 3D Gaussian Splatting") from None
    return contract.PointSet(name=name, object_to_world=o2w, **g)


def fill_identity(obj: bpy.types.Object, num_particles: int) -> str:
    """What particle indices of ``obj`` refer to: its fill mode, the volume fill's signature, the count."""
    o = object_settings(obj)
    return f"{o.fill_mode}:{o.fill_signature if o.fill_mode == 'VOLUME' else ''}:{num_particles}"


def set_video_contact(obj: bpy.types.Object, contact: np.ndarray, num_particles: int, weights: np.ndarray | None = None) -> None:
    """Store the contact particles found in the video (indices into the current fill) and make them the contact;
    ``weights`` [K]: the share of each the grasp holds (None: each whole)."""
    o = object_settings(obj)
    o.contact_particles = " ".join(str(int(i)) for i in contact)
    o.contact_weights = "" if weights is None else " ".join(f"{float(w):.6g}" for w in weights)
    o.contact_particles_for = fill_identity(obj, num_particles)
    o.contact_source = "VIDEO"


def video_contact(obj: bpy.types.Object, num_particles: int) -> np.ndarray:
    """The stored contact particles of 'From Video'; SceneError when the fill changed since they were found."""
    o = object_settings(obj)
    if not o.contact_particles.strip():
        raise SceneError(f"'{obj.name}' has no contact from the video yet: press 'Initialise from Video' (PhysInteract > Interaction)")
    if o.contact_particles_for != fill_identity(obj, num_particles):
        raise SceneError(f"'{obj.name}' was filled again since its contact was found in the video: "
                         "press 'Initialise from Video' again or choose another contact source")
    idx = np.array([int(v) for v in o.contact_particles.split()], np.int64)
    if idx.min() < 0 or idx.max() >= num_particles:
        raise SceneError(f"'{obj.name}': the contact from the video indexes particles outside 0..{num_particles - 1}")
    return idx


def video_contact_weights(obj: bpy.types.Object, count: int) -> np.ndarray | None:
    """The stored share [count] of each 'From Video' contact particle held, or None (each whole); SceneError when
    they do not match the contact particles."""
    text = object_settings(obj).contact_weights.strip()
    if not text:
        return None
    try:
        w = np.array([float(v) for v in text.split()], np.float64)
    except ValueError:
        w = np.zeros(0)
    if len(w) != count or not np.all((w > 0.0) & (w <= 1.0)):
        raise SceneError(f"'{obj.name}': the contact weights from the video do not match its {count} contact particles: "
                         "press 'Initialise from Video' again")
    return w


def contact_indices(obj: bpy.types.Object, particles_bu: np.ndarray, vertices_bu: np.ndarray,
                    first_point_bu: np.ndarray | None) -> np.ndarray:
    """Indices into ``particles_bu`` of the contact region chosen by object.physinteract:
    'Nearest': particles within the contact radius of the trajectory's first point (at
    least the nearest one); vertex group / selection: the nearest particle to each chosen
    vertex plus every particle within the contact radius of one (all in Blender units)."""
    s = object_settings(obj)
    if s.contact_source == "VIDEO":
        return video_contact(obj, len(particles_bu))
    chosen = _selected_vertices(obj)
    if chosen is None:
        if first_point_bu is None:
            return np.zeros(0, np.int64)
        anchors = np.asarray(first_point_bu, np.float64)[None]
    else:
        anchors = vertices_bu[chosen]
    if len(anchors) == 0:
        return np.zeros(0, np.int64)
    picked: set[int] = set()
    for a in anchors:
        d = np.linalg.norm(particles_bu - a, axis=1)
        picked.add(int(np.argmin(d)))
        picked.update(int(i) for i in np.flatnonzero(d <= s.contact_radius))
    return np.array(sorted(picked), np.int64)


def _volume_fill(obj: bpy.types.Object, scale: float) -> dict[str, np.ndarray]:
    """The fill of ``obj`` made by the Fill operator, checked to still match the object."""
    o = object_settings(obj)
    if not o.fill_file or not Path(o.fill_file).is_file():
        raise SceneError(f"'{obj.name}' is not filled yet: press Fill (PhysInteract > Filling)")
    if o.fill_signature != object_signature(obj, scale):
        raise SceneError(f"'{obj.name}' moved or changed since it was filled: press Fill again")
    return filling.read_particles_ply(o.fill_file)


def _camera(scene: bpy.types.Scene, cam: bpy.types.Object, matrices: np.ndarray, scale: float) -> contract.Camera:
    data = cam.data
    assert isinstance(data, bpy.types.Camera)
    if data.type != "PERSP":
        raise SceneError(f"Camera '{cam.name}' must be a perspective camera")
    r = scene.render
    w = int(r.resolution_x * r.resolution_percentage / 100)
    h = int(r.resolution_y * r.resolution_percentage / 100)
    K = contract.intrinsics_from_blender(
        data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, w, h, data.shift_x, data.shift_y,
        pixel_aspect=r.pixel_aspect_y / r.pixel_aspect_x,
    )
    w2c = np.stack([contract.world_to_camera_from_blender(m) for m in matrices])
    w2c[:, :3, 3] *= scale  # camera translation in metres (rotation is unit-free)
    return contract.Camera(width=w, height=h, K=K, world_to_camera=w2c)


def _video(clip: bpy.types.MovieClip, frames: range) -> contract.Video | None:
    """Per-frame image paths of an image-sequence clip (None for a movie file)."""
    if clip.source != "SEQUENCE":
        return None
    first = Path(bpy.path.abspath(clip.filepath))
    m = re.search(r"(\d+)(?!.*\d)", first.name)
    if m is None:
        raise SceneError(f"Movie Clip '{clip.name}': no frame number in '{first.name}'")
    digits, num0 = len(m.group(1)), int(m.group(1))
    paths = []
    for f in frames:
        num = num0 + (f - clip.frame_start) + clip.frame_offset
        paths.append(str(first.with_name(first.name[: m.start()] + f"{num:0{digits}d}" + first.name[m.end() :])))
    return contract.Video(frames=paths)


def build_job(scene: bpy.types.Scene, initialise: bool = False) -> tuple[contract.Job, JobInfo, list[list[int]]]:
    """The job for the scene's target object. Raises SceneError naming what to fix.

    ``initialise``: the job for ``physinteract init``, which finds the contact and the
    trajectory itself: both are left empty (whatever the scene has keyed)."""
    s = scene_settings(scene)
    obj = s.target
    if obj is None or obj.type != "MESH":
        raise SceneError("Choose the mesh object to simulate (PhysInteract > Object)")
    o = object_settings(obj)
    start, end = frame_range(scene)
    frames = range(start, end + 1)
    fps = scene.render.fps / scene.render.fps_base
    scale = float(o.scale)

    local_bu, faces, volume_bu = mesh_arrays(obj)
    if len(local_bu) == 0:
        raise SceneError(f"'{obj.name}' has no vertices")
    m = np.array(obj.matrix_world)
    world_bu = local_bu @ m[:3, :3].T + m[:3, 3]

    traj_obj = None if initialise else o.trajectory
    cam = s.camera or scene.camera
    sampled = sample_matrices(scene, [x for x in (traj_obj, cam) if x is not None], frames)
    if traj_obj is not None:
        traj_bu = sampled[traj_obj.name][:, :3, 3]
        traj_times = (np.arange(len(frames), dtype=np.float64)) / fps
    else:
        traj_bu, traj_times = np.zeros((0, 3)), np.zeros(0)
    if o.fill_mode == "VOLUME":
        fill = _volume_fill(obj, scale)
        particles_m, labels, volume = fill["positions"], fill["labels"], fill["volume"]
    else:
        particles_m = world_bu * scale
        labels = np.full(len(world_bu), contract.SURFACE, np.uint8)
        volume = np.full(len(world_bu), volume_bu * scale**3 / len(world_bu))
    contact = np.zeros(0, np.int64) if initialise else contact_indices(obj, particles_m / scale, world_bu,
                                                                         traj_bu[0] if len(traj_bu) else None)
    if len(traj_bu) and contact.size == 0:
        raise SceneError(f"The contact region of '{obj.name}' is empty (PhysInteract > Interaction)")
    held = None  # the share of each contact particle a grasp holds: only the video's contact has one
    if not initialise and o.contact_source == "VIDEO" and o.interaction_type == "point_adherent":
        held = video_contact_weights(obj, len(contact))

    n = len(particles_m)
    inter = contract.Interaction(
        type=o.interaction_type,
        drive="velocity",
        collider_shape="none" if o.interaction_type == "point_adherent" else "sphere",
        collider_radius=float(o.contact_radius) * scale,
    )
    ground = float(s.ground_height) * scale if s.use_ground else None
    solver = contract.SolverSettings(grid_resolution=int(s.grid_resolution), ground=contract.Ground(height=ground))
    solver.domain_min, solver.domain_max = simulation_domain(
        np.concatenate([particles_m, world_bu * scale, traj_bu * scale]), (end - start) / fps, solver.gravity[2], ground,
        solver.grid_resolution)
    name = point_set_name(obj)
    job = contract.Job(
        particles=particles_m,
        labels=labels,
        volume=volume,
        E=np.full(n, float(o.youngs_modulus)),
        nu=np.full(n, float(o.poisson_ratio)),
        density=np.full(n, float(o.density)),
        contact=contact,
        contact_weights=held,
        trajectory_times=traj_times,
        trajectory=traj_bu * scale,
        interaction=inter,
        fps=fps,
        frame_start=start,
        frame_end=end,
        solver=solver,
        camera=_camera(scene, cam, sampled[cam.name], scale) if cam is not None else None,
        video=_video(s.clip, frames) if s.clip is not None else None,
        point_sets=[object_point_set(obj, name, world_bu, scale)],
        name=f"{scene.name}_{name}",
        metadata={
            "blender": {"scene": scene.name, "object": obj.name, "point_set": name, "metres_per_unit": scale},
            "fill": o.fill_mode.lower(),
            "representation": o.representation.lower(),
            **({"movie_clip": bpy.path.abspath(s.clip.filepath)} if s.clip is not None else {}),
        },
    )
    info = JobInfo(
        job_dir=resolve_dir(s.job_dir, scene, "job folder"),
        cache_dir=resolve_dir(s.cache_dir, scene, "cache folder"),
        target=obj.name, point_set=name, scale=scale, frame_start=start, frame_end=end,
    )
    return job, info, faces


def write_scene_job(scene: bpy.types.Scene, initialise: bool = False) -> tuple[contract.Job, JobInfo]:
    """Build the scene's job and write it to scene.physinteract.job_dir.

    The mesh's triangles travel as the point set's optional ``faces`` so scripts
    can rebuild the surface from the job alone.
    """
    job, info, faces = build_job(scene, initialise)
    if info.job_dir == info.cache_dir:
        raise SceneError("The job and cache folders must differ")
    tris = [[f[0], f[i], f[i + 1]] for f in faces for i in range(1, len(f) - 1)]
    for ps in job.point_sets:
        if ps.name == info.point_set and tris:
            ps.faces = np.asarray(tris, np.int64).reshape(-1, 3)
    contract.write_job(job, info.job_dir)
    return job, info
