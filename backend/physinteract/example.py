"""The bundled example scene: a soft rope grasped at one end, lifted and swung.

``build_example_job`` turns ``data/example/scene.json`` (+ its mesh) into a
contract Job: the mesh is filled with particles, the contact set is the
particles near the grasped end, the trajectory moves the contact centroid by
the keyed offsets, and a fixed camera looks at the rope. All in SI units,
Blender world frame (+Z up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract

EXAMPLE_DIR = Path(__file__).resolve().parent / "data" / "example"


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


def build_example_job(scene: ExampleScene, novel: bool = False, grid_resolution: int | None = None) -> contract.Job:
    """The example as a contract Job. ``novel`` uses the novel trajectory (the one baked after estimation)."""
    from physinteract.geometry import FillConfig, fill_mesh

    spec = scene.spec
    fill = spec.get("fill", {})
    particles = fill_mesh(
        scene.vertices,
        scene.faces,
        FillConfig(resolution=int(fill.get("resolution", 40)), particles_per_cell=int(fill.get("particles_per_cell", 1))),
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
