"""The job folder: what the add-on (or a script) hands to the backend.

A job folder holds ``job.json`` (the manifest) and one ``.npy`` file per array.
Units are SI (m, kg, s, Pa, N); the world frame is Blender's (right-handed,
+Z up). See CONTRACT.md beside this file for the full description.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physinteract.contract.atomic import atomic_save_npy, atomic_write_json
from physinteract.contract.errors import ContractError

JOB_SCHEMA = "physinteract.job"
JOB_VERSION = 1
JOB_MANIFEST = "job.json"

INTERACTION_TYPES = ("point_adherent", "point_non_adherent", "surface_non_adherent")
DRIVES = ("velocity", "force")
COLLIDER_SHAPES = ("none", "sphere", "capsule", "plane")
GROUND_MODES = ("sticky", "slip", "separate")
ARCHES = ("auto", "cpu", "cuda")
PRECISIONS = ("f32", "f64")
SURFACE, INTERIOR = 0, 1


@dataclass
class Interaction:
    """How the object is driven.

    type: one of INTERACTION_TYPES (the paper's point adherent = grasping,
        point non-adherent = poking, surface non-adherent = bouncing/pressing).
    drive: "velocity": the trajectory values are positions (m, world) that the
        contact particles (adherent) or the collider centre (non-adherent) follow;
        "force": the values are a total force (N, world) spread over the contact set.
    collider_shape / collider_radius (m) / collider_axis (capsule half-axis, m,
        world) / plane_normal: the kinematic collider of non-adherent types.
    friction: Coulomb coefficient between collider and object.
    """

    type: str = "point_adherent"
    drive: str = "velocity"
    collider_shape: str = "none"
    collider_radius: float = 0.01
    collider_axis: tuple[float, float, float] = (0.0, 0.0, 0.0)
    plane_normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    friction: float = 0.0


@dataclass
class Ground:
    """A ground plane z = height (m, world) or none when height is None."""

    height: float | None = None
    friction: float = 0.5
    mode: str = "separate"


@dataclass
class SolverSettings:
    """Simulation settings. Every field has a documented default.

    grid_resolution: cells along the longest side of the simulation domain.
    domain_min / domain_max: the domain box (m, world); None = the particles'
        bounding box padded by ``domain_padding`` times its largest side.
    substep_dt: fixed substep (s); None = chosen from the CFL and wave-speed limits.
    cfl: Courant number used when substep_dt is None.
    gravity: m/s^2, world.  damping: grid velocity damping rate (1/s).
    """

    grid_resolution: int = 64
    domain_min: tuple[float, float, float] | None = None
    domain_max: tuple[float, float, float] | None = None
    domain_padding: float = 0.5
    substep_dt: float | None = None
    cfl: float = 0.4
    gravity: tuple[float, float, float] = (0.0, 0.0, -9.81)
    damping: float = 0.0
    ground: Ground = field(default_factory=Ground)
    arch: str = "auto"
    precision: str = "f32"
    iterations: int = 60


@dataclass
class Camera:
    """A pinhole camera, OpenCV convention.

    K: [3, 3] intrinsics in pixels (fx, fy, cx, cy; pixel centres at +0.5).
    world_to_camera: [F, 4, 4] extrinsics, one per frame of the frame range:
        camera axes x right, y down, z forward (into the scene), metres.
    """

    width: int
    height: int
    K: np.ndarray
    world_to_camera: np.ndarray


@dataclass
class Video:
    """Paths (relative to the job folder, or absolute) of the input frames and
    silhouette masks, one per frame of the frame range. Masks may be empty."""

    frames: list[str] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)


@dataclass
class PointSet:
    """Extra points deformed with the object and baked as their own PC2.

    rest_positions: [V, 3] world metres (render-mesh vertices, Gaussian centres).
    object_to_world: [4, 4] the Blender object's matrix; the PC2 is written in
        this object's local space so a Mesh Cache modifier plays it in place.
    rest_rotations: optional [V, 4] unit quaternions (w, x, y, z), Gaussians only.
    rest_scales: optional [V, 3] Gaussian standard deviations (m).
    faces: optional [F, 3] int64 triangles over the points (a render mesh), so a
        reader can rebuild the surface; the simulation ignores them.
    colors: optional [V, 3] base colour of each Gaussian, linear RGB in [0, 1]
        (3DGS's f_dc through 0.5 + C0 f_dc); the estimator renders the set with them.
    opacities: optional [V] Gaussian opacity in (0, 1] (3DGS's sigmoid of the stored logit).
    """

    name: str
    rest_positions: np.ndarray
    object_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))
    rest_rotations: np.ndarray | None = None
    rest_scales: np.ndarray | None = None
    faces: np.ndarray | None = None
    colors: np.ndarray | None = None
    opacities: np.ndarray | None = None


# optional per-point arrays of a point set: manifest key -> PointSet attribute
_OPTIONAL_POINT_ARRAYS = {"rotations": "rest_rotations", "scales": "rest_scales", "faces": "faces", "colors": "colors",
                          "opacities": "opacities"}


@dataclass
class Job:
    """Everything the backend needs for one estimation or simulation.

    particles: [N, 3] rest positions (m, world).  labels: [N] uint8, 0 surface,
    1 interior.  volume: [N] m^3.  E: [N] Pa.  nu: [N].  density: [N] kg/m^3.
    contact: [K] int64 indices into particles.  contact_weights: optional [K] float64 in (0, 1], the
    share of each contact particle the interaction holds (a particle on the contact region's edge
    is held in part, so the edge need not fall on the particle lattice); None: all of each.
    trajectory_times: [M] seconds from frame_start; trajectory: [M, 3] m or N.
    Frames frame_start..frame_end (inclusive) play at ``fps``.
    """

    particles: np.ndarray
    labels: np.ndarray
    volume: np.ndarray
    E: np.ndarray
    nu: np.ndarray
    density: np.ndarray
    contact: np.ndarray
    trajectory_times: np.ndarray
    trajectory: np.ndarray
    interaction: Interaction = field(default_factory=Interaction)
    fps: float = 24.0
    frame_start: int = 1
    frame_end: int = 24
    solver: SolverSettings = field(default_factory=SolverSettings)
    camera: Camera | None = None
    video: Video | None = None
    point_sets: list[PointSet] = field(default_factory=list)
    name: str = "job"
    metadata: dict[str, Any] = field(default_factory=dict)
    contact_weights: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return self.frame_end - self.frame_start + 1


# --------------------------------------------------------------------------- write

_PARTICLE_ARRAYS = ("particles", "labels", "volume", "E", "nu", "density")


def write_job(job: Job, folder: str | Path) -> Path:
    """Validate ``job`` and write it into ``folder`` (created if needed).

    Arrays are written first, the manifest last, each atomically, so a reader
    that finds ``job.json`` finds every array it names. Returns the manifest path.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _validate(job, folder / JOB_MANIFEST)
    arrays: dict[str, np.ndarray] = {
        "particles": np.asarray(job.particles, np.float64),
        "labels": np.asarray(job.labels, np.uint8),
        "volume": np.asarray(job.volume, np.float64),
        "E": np.asarray(job.E, np.float64),
        "nu": np.asarray(job.nu, np.float64),
        "density": np.asarray(job.density, np.float64),
        "contact": np.asarray(job.contact, np.int64),
        "trajectory_times": np.asarray(job.trajectory_times, np.float64),
        "trajectory": np.asarray(job.trajectory, np.float64),
    }
    if job.contact_weights is not None:
        arrays["contact_weights"] = np.asarray(job.contact_weights, np.float64)
    if job.camera is not None:
        arrays["camera_K"] = np.asarray(job.camera.K, np.float64)
        arrays["camera_world_to_camera"] = np.asarray(job.camera.world_to_camera, np.float64)
    sets = []
    for ps in job.point_sets:
        base = f"pointset_{ps.name}"
        entry: dict[str, Any] = {"name": ps.name, "positions": f"{base}_positions.npy", "object_to_world": f"{base}_matrix.npy"}
        arrays[f"{base}_positions"] = np.asarray(ps.rest_positions, np.float64)
        arrays[f"{base}_matrix"] = np.asarray(ps.object_to_world, np.float64)
        for key, attr in _OPTIONAL_POINT_ARRAYS.items():
            value = getattr(ps, attr)
            if value is not None:
                arrays[f"{base}_{key}"] = np.asarray(value, np.int64).reshape(-1, 3) if key == "faces" else np.asarray(value, np.float64)
                entry[key] = f"{base}_{key}.npy"
        sets.append(entry)
    for name, arr in arrays.items():
        atomic_save_npy(folder / f"{name}.npy", arr)
    manifest: dict[str, Any] = {
        "schema": JOB_SCHEMA,
        "version": JOB_VERSION,
        "name": job.name,
        "units": {"length": "m", "mass": "kg", "time": "s", "stress": "Pa", "force": "N"},
        "world": "blender (right-handed, +Z up)",
        "num_particles": int(len(job.particles)),
        "arrays": {name: f"{name}.npy" for name in arrays if not name.startswith("pointset_")},
        "interaction": _as_dict(job.interaction),
        "fps": float(job.fps),
        "frame_start": int(job.frame_start),
        "frame_end": int(job.frame_end),
        "solver": _as_dict(job.solver),
        "camera": None
        if job.camera is None
        else {"convention": "opencv", "width": int(job.camera.width), "height": int(job.camera.height)},
        "video": None if job.video is None else {"frames": list(job.video.frames), "masks": list(job.video.masks)},
        "point_sets": sets,
        "metadata": job.metadata,
    }
    path = folder / JOB_MANIFEST
    atomic_write_json(path, manifest)
    return path


def _as_dict(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _as_dict(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


# --------------------------------------------------------------------------- read


def read_job(folder: str | Path) -> Job:
    """Read and validate the job in ``folder``. Raises ContractError naming the
    file and field at fault."""
    folder = Path(folder)
    mpath = folder / JOB_MANIFEST
    if not mpath.is_file():
        raise ContractError(mpath, "", "a job manifest", "no such file")
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ContractError(mpath, "", "valid JSON", f"a parse error ({e})") from None
    if not isinstance(m, dict):
        raise ContractError(mpath, "", "a JSON object", type(m).__name__)
    if m.get("schema") != JOB_SCHEMA:
        raise ContractError(mpath, "schema", repr(JOB_SCHEMA), repr(m.get("schema")))
    if m.get("version") != JOB_VERSION:
        raise ContractError(mpath, "version", f"schema version {JOB_VERSION}", repr(m.get("version")))

    def arr(name: str) -> np.ndarray:
        return _load_array(folder, _get(m, mpath, f"arrays.{name}", str), f"arrays.{name}")

    inter = _get(m, mpath, "interaction", dict)
    interaction = Interaction(
        type=_get(m, mpath, "interaction.type", str),
        drive=_get(m, mpath, "interaction.drive", str),
        collider_shape=_get(m, mpath, "interaction.collider_shape", str),
        collider_radius=float(_get(m, mpath, "interaction.collider_radius", (int, float))),
        collider_axis=tuple(inter.get("collider_axis", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
        plane_normal=tuple(inter.get("plane_normal", (0.0, 0.0, 1.0))),  # type: ignore[arg-type]
        friction=float(inter.get("friction", 0.0)),
    )
    s = _get(m, mpath, "solver", dict)
    g = s.get("ground") or {}
    defaults = SolverSettings()
    solver = SolverSettings(
        grid_resolution=int(s.get("grid_resolution", defaults.grid_resolution)),
        domain_min=_opt_vec(s.get("domain_min")),
        domain_max=_opt_vec(s.get("domain_max")),
        domain_padding=float(s.get("domain_padding", defaults.domain_padding)),
        substep_dt=None if s.get("substep_dt") is None else float(s["substep_dt"]),
        cfl=float(s.get("cfl", defaults.cfl)),
        gravity=tuple(s.get("gravity", defaults.gravity)),  # type: ignore[arg-type]
        damping=float(s.get("damping", defaults.damping)),
        ground=Ground(
            height=None if g.get("height") is None else float(g["height"]),
            friction=float(g.get("friction", 0.5)),
            mode=str(g.get("mode", "separate")),
        ),
        arch=str(s.get("arch", defaults.arch)),
        precision=str(s.get("precision", defaults.precision)),
        iterations=int(s.get("iterations", defaults.iterations)),
    )
    camera = None
    if m.get("camera") is not None:
        cam = _get(m, mpath, "camera", dict)
        if cam.get("convention") != "opencv":
            raise ContractError(mpath, "camera.convention", "'opencv'", repr(cam.get("convention")))
        camera = Camera(
            width=_get(m, mpath, "camera.width", int),
            height=_get(m, mpath, "camera.height", int),
            K=arr("camera_K"),
            world_to_camera=arr("camera_world_to_camera"),
        )
    video = None
    if m.get("video") is not None:
        v = _get(m, mpath, "video", dict)
        video = Video(frames=[str(p) for p in v.get("frames", [])], masks=[str(p) for p in v.get("masks", [])])
    point_sets = []
    for i, entry in enumerate(m.get("point_sets") or []):
        key = f"point_sets[{i}]"
        if not isinstance(entry, dict) or "name" not in entry or "positions" not in entry:
            raise ContractError(mpath, key, "an object with 'name' and 'positions'", repr(entry))
        point_sets.append(
            PointSet(
                name=str(entry["name"]),
                rest_positions=_load_array(folder, entry["positions"], f"{key}.positions"),
                object_to_world=_load_array(folder, entry.get("object_to_world"), f"{key}.object_to_world")
                if entry.get("object_to_world")
                else np.eye(4),
                **{attr: _load_array(folder, entry[name], f"{key}.{name}") if entry.get(name) else None
                   for name, attr in _OPTIONAL_POINT_ARRAYS.items()},
            )
        )
    job = Job(
        particles=arr("particles"),
        labels=arr("labels"),
        volume=arr("volume"),
        E=arr("E"),
        nu=arr("nu"),
        density=arr("density"),
        contact=arr("contact"),
        trajectory_times=arr("trajectory_times"),
        trajectory=arr("trajectory"),
        interaction=interaction,
        fps=float(_get(m, mpath, "fps", (int, float))),
        frame_start=_get(m, mpath, "frame_start", int),
        frame_end=_get(m, mpath, "frame_end", int),
        solver=solver,
        camera=camera,
        video=video,
        point_sets=point_sets,
        name=str(m.get("name", "job")),
        metadata=dict(m.get("metadata") or {}),
        contact_weights=arr("contact_weights") if "contact_weights" in (m.get("arrays") or {}) else None,
    )
    _validate(job, mpath, folder)
    return job


def resolve_path(folder: str | Path, p: str) -> Path:
    """A path from the manifest: relative paths are relative to the job folder."""
    q = Path(p)
    return q if q.is_absolute() else Path(folder) / q


def _opt_vec(v: Any) -> tuple[float, float, float] | None:
    return None if v is None else (float(v[0]), float(v[1]), float(v[2]))


def _get(m: dict[str, Any], mpath: Path, dotted: str, kind: Any) -> Any:
    cur: Any = m
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise ContractError(mpath, dotted, "a value", "nothing (missing)")
        cur = cur[part]
    if kind is int and isinstance(cur, bool):
        raise ContractError(mpath, dotted, "an integer", repr(cur))
    if not isinstance(cur, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ContractError(mpath, dotted, f"a {names}", f"{type(cur).__name__} {cur!r}")
    return cur


def _load_array(folder: Path, rel: Any, fieldname: str) -> np.ndarray:
    if not isinstance(rel, str):
        raise ContractError(folder / JOB_MANIFEST, fieldname, "a file name", repr(rel))
    path = resolve_path(folder, rel)
    if not path.is_file():
        raise ContractError(path, fieldname, "an .npy file", "no such file")
    return load_npy(path, fieldname)


def load_npy(path: Path, fieldname: str) -> np.ndarray:
    """An .npy array, never unpickled; a damaged file or an object array is a ContractError naming ``path`` and the field."""
    try:
        return np.load(path, allow_pickle=False)  # type: ignore[no-any-return]
    except ValueError as e:
        raise ContractError(path, fieldname, "a plain numeric .npy array (no pickles)", str(e)) from None
    except OSError as e:
        raise ContractError(path, fieldname, "a readable .npy file", str(e)) from None


def _check_array(
    file: Path, name: str, a: Any, shape: tuple[int | None, ...], kind: str = "f", finite: bool = True
) -> None:
    """shape: None entries match any length. kind: 'f' float, 'i' integer, 'u' any int."""
    a = np.asarray(a)
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ContractError(file, name, f"shape {want}", f"shape {list(a.shape)}")
    if kind == "f" and a.dtype.kind not in "fiu":
        raise ContractError(file, name, "a numeric array", f"dtype {a.dtype}")
    if kind in "iu" and a.dtype.kind not in "iu":
        raise ContractError(file, name, "an integer array", f"dtype {a.dtype}")
    if finite and a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise ContractError(file, name, "finite values", f"NaN or Inf (first at index {list(first)})")


def _validate(job: Job, mpath: Path, folder: Path | None = None) -> None:
    """Check shapes, finiteness, ranges and enumerations. ``folder`` set means the
    arrays came from files: errors then name the array's file."""

    def f(name: str) -> Path:
        return (folder / f"{name}.npy") if folder is not None else mpath

    n = len(np.asarray(job.particles))
    _check_array(f("particles"), "particles", job.particles, (None, 3))
    if n == 0:
        raise ContractError(f("particles"), "particles", "at least one particle", "none")
    _check_array(f("labels"), "labels", job.labels, (n,), "u")
    if np.any((np.asarray(job.labels) != SURFACE) & (np.asarray(job.labels) != INTERIOR)):
        raise ContractError(f("labels"), "labels", "0 (surface) or 1 (interior)", "other values")
    for name in ("volume", "E", "density"):
        a = getattr(job, name)
        _check_array(f(name), name, a, (n,))
        if np.any(np.asarray(a) <= 0):
            raise ContractError(f(name), name, "positive values (SI units)", f"min {float(np.min(a))}")
    _check_array(f("nu"), "nu", job.nu, (n,))
    nu = np.asarray(job.nu)
    if np.any((nu < 0.0) | (nu >= 0.5)):
        raise ContractError(f("nu"), "nu", "Poisson's ratio in [0, 0.5)", f"range [{nu.min()}, {nu.max()}]")
    _check_array(f("contact"), "contact", job.contact, (None,), "i")
    c = np.asarray(job.contact)
    if c.size and (c.min() < 0 or c.max() >= n):
        raise ContractError(f("contact"), "contact", f"indices in [0, {n})", f"range [{c.min()}, {c.max()}]")
    if job.contact_weights is not None:
        _check_array(f("contact_weights"), "contact_weights", job.contact_weights, (len(c),))
        w = np.asarray(job.contact_weights)
        if w.size and not np.all((w > 0.0) & (w <= 1.0)):
            raise ContractError(f("contact_weights"), "contact_weights", "the share of each contact particle held, in (0, 1]",
                                f"range [{w.min()}, {w.max()}]")
    m = len(np.asarray(job.trajectory_times))
    _check_array(f("trajectory_times"), "trajectory_times", job.trajectory_times, (m,))
    _check_array(f("trajectory"), "trajectory", job.trajectory, (m, 3))
    if m and np.any(np.diff(np.asarray(job.trajectory_times)) <= 0):
        raise ContractError(f("trajectory_times"), "trajectory_times", "strictly increasing times (s)", "repeated or decreasing times")
    it = job.interaction
    if it.type not in INTERACTION_TYPES:
        raise ContractError(mpath, "interaction.type", f"one of {list(INTERACTION_TYPES)}", repr(it.type))
    if it.drive not in DRIVES:
        raise ContractError(mpath, "interaction.drive", f"one of {list(DRIVES)}", repr(it.drive))
    if it.collider_shape not in COLLIDER_SHAPES:
        raise ContractError(mpath, "interaction.collider_shape", f"one of {list(COLLIDER_SHAPES)}", repr(it.collider_shape))
    if not (math.isfinite(it.collider_radius) and it.collider_radius >= 0):
        raise ContractError(mpath, "interaction.collider_radius", "a radius >= 0 (m)", repr(it.collider_radius))
    if job.solver.ground.mode not in GROUND_MODES:
        raise ContractError(mpath, "solver.ground.mode", f"one of {list(GROUND_MODES)}", repr(job.solver.ground.mode))
    if job.solver.arch not in ARCHES:
        raise ContractError(mpath, "solver.arch", f"one of {list(ARCHES)}", repr(job.solver.arch))
    if job.solver.precision not in PRECISIONS:
        raise ContractError(mpath, "solver.precision", f"one of {list(PRECISIONS)}", repr(job.solver.precision))
    if job.solver.grid_resolution < 4:
        raise ContractError(mpath, "solver.grid_resolution", "at least 4 cells", str(job.solver.grid_resolution))
    if not (job.fps > 0 and math.isfinite(job.fps)):
        raise ContractError(mpath, "fps", "a positive frame rate", repr(job.fps))
    if job.frame_end < job.frame_start:
        raise ContractError(mpath, "frame_end", f">= frame_start ({job.frame_start})", str(job.frame_end))
    nf = job.num_frames
    if job.camera is not None:
        _check_array(f("camera_K"), "camera_K", job.camera.K, (3, 3))
        _check_array(f("camera_world_to_camera"), "camera_world_to_camera", job.camera.world_to_camera, (nf, 4, 4))
        if job.camera.width <= 0 or job.camera.height <= 0:
            raise ContractError(mpath, "camera.width", "a positive image size", f"{job.camera.width}x{job.camera.height}")
    if job.video is not None:
        for key in ("frames", "masks"):
            paths = getattr(job.video, key)
            if paths and len(paths) != nf:
                raise ContractError(mpath, f"video.{key}", f"{nf} paths (one per frame)", f"{len(paths)} paths")
            if folder is not None:
                for i, p in enumerate(paths):
                    if not resolve_path(folder, p).is_file():
                        raise ContractError(resolve_path(folder, p), f"video.{key}[{i}]", "an image file", "no such file")
    names = set()
    for i, ps in enumerate(job.point_sets):
        key = f"point_sets[{i}]"
        if not ps.name or not ps.name.replace("_", "").replace("-", "").isalnum() or ps.name in names:
            raise ContractError(mpath, f"{key}.name", "a unique name of letters, digits, '_' or '-'", repr(ps.name))
        names.add(ps.name)
        fp = (folder / f"pointset_{ps.name}_positions.npy") if folder is not None else mpath
        _check_array(fp, f"{key}.positions", ps.rest_positions, (None, 3))
        _check_array(fp, f"{key}.object_to_world", ps.object_to_world, (4, 4))
        v = len(ps.rest_positions)
        if ps.rest_rotations is not None:
            _check_array(fp, f"{key}.rotations", ps.rest_rotations, (v, 4))
        if ps.rest_scales is not None:
            _check_array(fp, f"{key}.scales", ps.rest_scales, (v, 3))
        if ps.colors is not None:
            _check_array(fp, f"{key}.colors", ps.colors, (v, 3))
            c = np.asarray(ps.colors)
            if c.size and (c.min() < 0 or c.max() > 1):
                raise ContractError(fp, f"{key}.colors", "linear RGB in [0, 1]", f"range [{c.min()}, {c.max()}]")
        if ps.opacities is not None:
            _check_array(fp, f"{key}.opacities", ps.opacities, (v,))
            o = np.asarray(ps.opacities)
            if o.size and (o.min() <= 0 or o.max() > 1):
                raise ContractError(fp, f"{key}.opacities", "values in (0, 1]", f"range [{o.min()}, {o.max()}]")
        if ps.faces is not None:
            _check_array(fp, f"{key}.faces", ps.faces, (None, 3), "i")
            fa = np.asarray(ps.faces)
            if fa.size and (fa.min() < 0 or fa.max() >= v):
                raise ContractError(fp, f"{key}.faces", f"vertex indices in [0, {v})", f"range [{fa.min()}, {fa.max()}]")
