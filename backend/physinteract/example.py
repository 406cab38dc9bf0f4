"""The bundled example scene: a soft rope grasped at one end, lifted and swung.

``build_example_job`` turns ``data/example/scene.json`` (+ its mesh) into a
contract Job: the mesh is filled with particles, the contact set is the
particles near the grasped end, the trajectory moves the contact centroid by
the keyed offsets, and a fixed camera looks at the rope. All in SI units,
Blender world frame (+Z up).

``data/example/video/`` is the example's input as a camera saw it (made once by
scripts/make_example_video.py from the scene's ground-truth material): PNG frames
and silhouettes, the rope's Gaussians, the tracker's grasp trajectory T0 and the
camera. ``load_example_video`` reads it; ``build_estimate_job`` turns it into the
estimator's job (an initial material guess off the truth, T0 as the trajectory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract

EXAMPLE_DIR = Path(__file__).resolve().parent / "data" / "example"
VIDEO_DIR = EXAMPLE_DIR / "video"
GAUSSIAN_KEYS = ("positions", "rotations", "scales", "colors", "opacities")


@dataclass
class ExampleScene:
    """The parsed scene description (see data/example/scene.json)."""

    spec: dict[str, Any]
    vertices: np.ndarray  # [V, 3] m, world (object placed at its location)
    faces: np.ndarray  # [F, 3] vertex indices
    object_to_world: np.ndarray  # [4, 4]


def load_example(folder: Path = EXAMPLE_DIR) -> ExampleScene:
    from physinteract.geometry import read_mesh

    spec_path = folder / "scene.json"
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    verts, faces = read_mesh(folder / spec["mesh"])
    m = np.eye(4)
    m[:3, 3] = spec["object_location"]
    return ExampleScene(spec, verts + m[:3, 3], faces, m)


def look_at_world_to_camera(location: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV world->camera [4, 4] for a camera at ``location`` looking at ``target`` (m, world, +Z up)."""
    up = np.array([0.0, 0.0, 1.0])
    z = target - location
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)  # image y points down
    r = np.stack([x, y, z])
    w2c = np.eye(4)
    w2c[:3, :3] = r
    w2c[:3, 3] = -r @ location
    return w2c


def build_example_job(scene: ExampleScene, novel: bool = False, grid_resolution: int | None = None,
                      fill_resolution: int | None = None) -> contract.Job:
    """The example as a contract Job with the scene's (true) material. ``novel`` uses the novel
    trajectory (the one baked after estimation); the resolutions override the scene's fill and grid."""
    from physinteract.geometry import FillConfig, fill_mesh

    spec = scene.spec
    fill = spec.get("fill", {})
    particles = fill_mesh(
        scene.vertices,
        scene.faces,
        FillConfig(resolution=int(fill_resolution or fill.get("resolution", 40)),
                   particles_per_cell=int(fill.get("particles_per_cell", 1))),
    )
    x = particles.positions
    n = len(x)
    mat = spec["material"]
    local = x - scene.object_to_world[:3, 3]
    contact = np.flatnonzero(local[:, 0] >= spec["interaction"]["contact_x_min"]).astype(np.int64)
    if contact.size == 0:
        raise ValueError("example: the contact region holds no particle; lower interaction.contact_x_min")
    traj_spec = spec["novel_trajectory" if novel else "trajectory"]
    centroid = x[contact].mean(axis=0)
    trajectory = centroid + np.asarray(traj_spec["offsets"], np.float64)
    fps = float(spec["fps"])
    f0, f1 = int(spec["frame_start"]), int(spec["frame_end"])
    cam = spec["camera"]
    w2c = look_at_world_to_camera(np.asarray(cam["location"], float), np.asarray(cam["target"], float))
    K = contract.intrinsics_from_blender(cam["lens_mm"], cam["sensor_mm"], cam["sensor_mm"], "AUTO", cam["width"], cam["height"])
    solver_spec = spec.get("solver", {})
    ground = solver_spec.get("ground", {})
    solver = contract.SolverSettings(
        grid_resolution=int(grid_resolution or solver_spec.get("grid_resolution", 48)),
        ground=contract.Ground(height=ground.get("height"), friction=float(ground.get("friction", 0.5)),
                               mode=str(ground.get("mode", "separate"))),
    )
    return contract.Job(
        particles=x,
        labels=particles.labels,
        volume=particles.volume,
        E=np.full(n, float(mat["E"])),
        nu=np.full(n, float(mat["nu"])),
        density=np.full(n, float(mat["density"])),
        contact=contact,
        trajectory_times=np.asarray(traj_spec["times"], np.float64),
        trajectory=trajectory,
        interaction=contract.Interaction(type=spec["interaction"]["type"], drive="velocity"),
        fps=fps,
        frame_start=f0,
        frame_end=f1,
        solver=solver,
        camera=contract.Camera(int(cam["width"]), int(cam["height"]), K, np.tile(w2c, (f1 - f0 + 1, 1, 1))),
        point_sets=[contract.PointSet("rope", scene.vertices, scene.object_to_world, faces=scene.faces)],
        name=spec["name"] + ("-novel" if novel else ""),
        metadata={"example": spec["name"], "trajectory": "novel" if novel else "observed"},
    )


def mesh_gaussians(vertices: np.ndarray, faces: np.ndarray, spacing: float, colors: tuple[Any, Any],
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Flat surface Gaussians of a mesh with a colour pattern in rest coordinates (the mesh twin of
    the benchmark's SDF ``surface_gaussians``): stripes across the longest axis (period 1/6 of the
    length) in the two linear-RGB ``colors``, brightened in a coarse 3D checker so motion inside
    the silhouette shows. About one Gaussian per ``spacing``^2 of area (m).

    Returns positions [V, 3] m, rotations [V, 4] (w, x, y, z), scales [V, 3] m (std), colors [V, 3],
    opacities [V], all float64.
    """
    from physinteract.benchmark.scenes import pattern_colors
    from physinteract.geometry import shapes

    cloud = shapes.surface_gaussians(vertices, faces, spacing=spacing, seed=seed, thickness=0.2, opacity=0.95)
    x = cloud.means.astype(np.float64)
    lo, hi = vertices.min(0), vertices.max(0)
    col = pattern_colors(x, lo, hi, int(np.argmax(hi - lo)), colors, checker=8.0, contrast=0.3)
    rot = cloud.rotations.astype(np.float64)
    rot /= np.linalg.norm(rot, axis=1, keepdims=True)
    return {"positions": x, "rotations": rot, "scales": cloud.scales, "colors": col, "opacities": cloud.opacity}


@dataclass
class ExampleVideo:
    """The bundled input video (data/example/video): what the estimator sees.

    frames / masks: PNG paths, one per frame of the scene's frame range (the first is the rest state).
    gaussians: the rope's Gaussians at rest (see ``GAUSSIAN_KEYS``; world metres).
    tracked_times [M] s / tracked_positions [M, 3] m, world: the grasp centroid as a tracker reported it (T0).
    camera: the camera the video was taken with (one pose for every frame).
    """

    folder: Path
    frames: list[Path]
    masks: list[Path]
    gaussians: dict[str, np.ndarray]
    tracked_times: np.ndarray
    tracked_positions: np.ndarray
    camera: contract.Camera


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the example video's description: {e}") from e


def _array(path: Path, d: dict[str, Any], key: str, shape: tuple[int | None, ...]) -> np.ndarray:
    if key not in d:
        raise ValueError(f"{path}: field '{key}': missing")
    a = np.asarray(d[key], np.float64)
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape, strict=True)) or not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: field '{key}': expected finite numbers of shape {list(shape)}, got {list(a.shape)}")
    return a


def load_example_video(folder: Path = VIDEO_DIR) -> ExampleVideo:
    """Read the bundled video folder (frames/, masks/, gaussians.npz, tracked_trajectory.json, camera.json)."""
    frames = sorted((folder / "frames").glob("frame_*.png"))
    masks = sorted((folder / "masks").glob("mask_*.png"))
    if not frames:
        raise ValueError(f"{folder / 'frames'}: field 'frames': no frame_XXXX.png (run scripts/make_example_video.py)")
    if len(masks) != len(frames):
        raise ValueError(f"{folder / 'masks'}: field 'masks': expected {len(frames)} mask_XXXX.png, got {len(masks)}")
    gpath = folder / "gaussians.npz"
    try:
        with np.load(gpath, allow_pickle=False) as z:
            gauss = {k: np.asarray(z[k], np.float64) for k in GAUSSIAN_KEYS if k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{gpath}: cannot read the example's Gaussians: {e}") from e
    for k in GAUSSIAN_KEYS:
        if k not in gauss:
            raise ValueError(f"{gpath}: field '{k}': missing")
    g = len(gauss["positions"])
    for k, width in (("positions", 3), ("rotations", 4), ("scales", 3), ("colors", 3), ("opacities", None)):
        want = (g,) if width is None else (g, width)
        if gauss[k].shape != want:
            raise ValueError(f"{gpath}: field '{k}': expected shape {list(want)}, got {list(gauss[k].shape)}")
    tpath = folder / "tracked_trajectory.json"
    t = _read_json(tpath)
    times = _array(tpath, t, "times", (None,))
    positions = _array(tpath, t, "positions", (len(times), 3))
    cpath = folder / "camera.json"
    c = _read_json(cpath)
    K = _array(cpath, c, "K", (3, 3))
    w2c = _array(cpath, c, "world_to_camera", (4, 4))
    cam = contract.Camera(int(c["width"]), int(c["height"]), K, np.tile(w2c, (len(frames), 1, 1)))
    return ExampleVideo(folder, frames, masks, gauss, times, positions, cam)


def trim_trajectory(times: np.ndarray, values: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes times [M] s / values [M, 3] m cut at ``duration`` s, ending with the spline's value there."""
    keep = times <= duration + 1e-9
    t, v = times[keep], values[keep]
    if t[-1] < duration - 1e-9:
        from physinteract.mpm import spline

        end, _ = spline.evaluate(times, values, np.array([duration]))
        t, v = np.append(t, duration), np.concatenate([v, end])
    return t, v


@dataclass
class EstimateSetup:
    """How the example's estimation job is discretised (SI units).

    guess_factor: the initial homogeneous E is the true E divided by this (5x off the truth).
    fill_resolution / grid_resolution: the estimator's particles and grid (None = the scene's ``estimate`` block).
    frames: video frames used after the rest frame (None = all).
    """

    guess_factor: float = 5.0
    fill_resolution: int | None = None
    grid_resolution: int | None = None
    frames: int | None = None


def build_estimate_job(scene: ExampleScene, video: ExampleVideo, setup: EstimateSetup | None = None,
                       video_prefix: str = "video") -> contract.Job:
    """The estimator's job: the rope filled at the estimator's resolution with a homogeneous E guess
    (true E / ``guess_factor``), the tracker's T0 as trajectory, the bundled camera and video (paths
    ``video_prefix``/frames/...: a folder relative to the job folder, or absolute), the Gaussians
    (point set "gaussians") and the rope mesh (point set "rope", for the Mesh Cache)."""
    s = setup or EstimateSetup()
    est = scene.spec.get("estimate", {})
    job = build_example_job(scene, novel=False, grid_resolution=s.grid_resolution or est.get("grid_resolution"),
                            fill_resolution=s.fill_resolution or est.get("fill_resolution"))
    n_video = len(video.frames)
    if n_video != job.num_frames:
        raise ValueError(f"{video.folder}: field 'frames': expected {job.num_frames} frames "
                         f"({job.frame_start}..{job.frame_end} of scene.json), got {n_video}")
    used = n_video - 1 if s.frames is None else min(int(s.frames), n_video - 1)
    if used < 1:
        raise ValueError(f"example: EstimateSetup.frames: expected at least 1 frame after the rest frame, got {used}")
    job.frame_end = job.frame_start + used
    job.trajectory_times, job.trajectory = trim_trajectory(video.tracked_times, video.tracked_positions, used / job.fps)
    n = len(job.particles)
    job.E = np.full(n, float(scene.spec["material"]["E"]) / s.guess_factor)
    job.camera = contract.Camera(video.camera.width, video.camera.height, video.camera.K,
                                 video.camera.world_to_camera[: job.num_frames])
    job.video = contract.Video(frames=[f"{video_prefix}/frames/{p.name}" for p in video.frames[: job.num_frames]],
                               masks=[f"{video_prefix}/masks/{p.name}" for p in video.masks[: job.num_frames]])
    g = video.gaussians
    job.point_sets = [contract.PointSet("gaussians", g["positions"], np.eye(4), rest_rotations=g["rotations"],
                                        rest_scales=g["scales"], colors=g["colors"], opacities=g["opacities"]),
                      *job.point_sets]
    job.name = scene.spec["name"] + "-estimate"
    job.metadata = {**job.metadata, "E_true": float(scene.spec["material"]["E"]), "E_guess_factor": s.guess_factor}
    return job
