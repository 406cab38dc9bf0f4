"""Scene -> job (camera, trajectory, units) and cache -> .blend (scripts/example_blend.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bpy
import mathutils
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import REPO

from physinteract import contract


def _pixels_blender(scene: bpy.types.Scene, cam: bpy.types.Object, pts: np.ndarray) -> np.ndarray:
    """Blender's own projection: normalised view coords (y up) -> pixels (OpenCV: v down)."""
    r = scene.render
    w, h = r.resolution_x * r.resolution_percentage / 100, r.resolution_y * r.resolution_percentage / 100
    out = []
    for p in pts:
        v = world_to_camera_view(scene, cam, mathutils.Vector(p.tolist()))
        out.append((v.x * w, (1.0 - v.y) * h))
    return np.array(out)


@pytest.mark.parametrize("fit,res", [("AUTO", (640, 480)), ("VERTICAL", (300, 500))])
def test_job_camera_projects_like_blender(empty_scene: bpy.types.Scene, addon: str, fit: str, res: tuple[int, int]) -> None:
    """Known answer: the job's OpenCV camera (K, per-frame world_to_camera in metres, 0.5 m per
    unit) maps points to the same pixels as Blender's world_to_camera_view, at every frame."""
    s2j, props = sys.modules[f"{addon}.scene_to_job"], sys.modules[f"{addon}.properties"]
    scene = empty_scene
    scene.render.resolution_x, scene.render.resolution_y = res
    scene.render.resolution_percentage = 100
    mesh = bpy.data.meshes.new("m")
    mesh.from_pydata([(0, 0, 0), (0.1, 0, 0), (0, 0.1, 0), (0, 0, 0.1)], [], [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)])
    obj = bpy.data.objects.new("Tet", mesh)
    scene.collection.objects.link(obj)
    cam_data = bpy.data.cameras.new("cam")
    cam_data.lens, cam_data.sensor_fit = 28.0, fit
    cam_data.shift_x, cam_data.shift_y = 0.05, -0.03
    cam = bpy.data.objects.new("Cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.location, cam.rotation_euler = (1.0, -2.0, 0.8), (1.2, 0.0, 0.4)
    cam.keyframe_insert("location", frame=1)
    cam.keyframe_insert("rotation_euler", frame=1)
    cam.location, cam.rotation_euler = (1.5, -1.5, 1.0), (1.1, 0.1, 0.7)
    cam.keyframe_insert("location", frame=3)
    cam.keyframe_insert("rotation_euler", frame=3)
    scene.frame_start, scene.frame_end = 1, 3
    props.scene_settings(scene).target = obj
    props.object_settings(obj).scale = 0.5
    scene.frame_set(2)
    job, info, faces = s2j.build_job(scene)
    assert scene.frame_current == 2  # sampling restored the frame
    assert len(faces) == 4 and job.camera is not None
    assert (job.camera.width, job.camera.height) == res
    rng = np.random.default_rng(0)
    pts = rng.uniform(-0.3, 0.3, size=(20, 3))
    for i, frame in enumerate(range(1, 4)):
        scene.frame_set(frame)
        uv, z = contract.project(job.camera.K, job.camera.world_to_camera[i], pts * 0.5)
        assert np.all(z > 0)
        np.testing.assert_allclose(uv, _pixels_blender(scene, cam, pts), atol=1e-3)
    np.testing.assert_allclose(job.particles, np.array([v.co[:] for v in mesh.vertices]) * 0.5, atol=1e-7)
    assert job.volume.sum() == pytest.approx((0.1**3 / 6) * 0.5**3, rel=1e-5)  # closed tetrahedron


def _make_cache(tmp: Path) -> tuple[Path, Path, np.ndarray]:
    """A job with one point set (a tetrahedron at 2 m per unit, translated) and a cache whose
    frames 3..7 move it up by 0.1 m a frame; returns (job, cache, world positions [5, 4, 3])."""
    rest_local = np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], float) * 0.1
    o2w = np.diag([2.0, 2.0, 2.0, 1.0]) @ np.array([[1, 0, 0, 0.3], [0, 1, 0, -0.2], [0, 0, 1, 0.5], [0, 0, 0, 1.0]])
    rest_world = rest_local @ o2w[:3, :3].T + o2w[:3, 3]
    n = len(rest_world)
    job = contract.Job(
        particles=rest_world, labels=np.zeros(n, np.uint8), volume=np.full(n, 1e-4), E=np.full(n, 1e5),
        nu=np.full(n, 0.3), density=np.full(n, 1000.0), contact=np.array([0]), trajectory_times=np.zeros(0),
        trajectory=np.zeros((0, 3)), frame_start=3, frame_end=7, fps=12.0,
        camera=contract.Camera(640, 480, np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]),
                               np.stack([contract.world_to_camera_from_blender(np.array(
                                   [[1, 0, 0, 0.5], [0, 0, -1, -3.0 - 0.1 * i], [0, 1, 0, 1.0], [0, 0, 0, 1]], float))
                                   for i in range(5)])),
        point_sets=[contract.PointSet("Tet", rest_world, o2w, faces=np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))],
        metadata={"blender": {"metres_per_unit": 2.0}},
    )
    job_dir, cache_dir = tmp / "job", tmp / "cache"
    contract.write_job(job, job_dir)
    w = contract.CacheWriter(cache_dir, "simulate", 12.0, 3, 7,
                             [contract.PointSetInfo("Tet", n, np.linalg.inv(o2w)), contract.PointSetInfo("particles", n)])
    world = np.stack([rest_world + [0, 0, 0.1 * i] for i in range(5)])
    for i, f in enumerate(range(3, 8)):
        w.write_frame(f, {"Tet": {"positions": world[i]}, "particles": {"positions": world[i]}})
    w.finish()
    return job_dir, cache_dir, world


def test_example_blend_writes_blend_that_plays_the_cache(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: the saved .blend, reopened, shows at frame 3+k the cache's k-th world
    positions (mesh and particles), through '//'-relative PC2 paths, at the cache's fps."""
    job_dir, cache_dir, world = _make_cache(tmp_path)
    out = tmp_path / "blend" / "example.blend"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_USER")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "example_blend.py"), "--cache", str(cache_dir),
                           "--job", str(job_dir), "--out", str(out)], capture_output=True, text=True, env=env, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert Path(proc.stdout.strip().splitlines()[-1]) == out.resolve()
    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (3, 7)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(12.0)
    tet, particles = bpy.data.objects["Tet"], bpy.data.objects["PhysInteract Particles"]
    for obj in (tet, particles):
        md = obj.modifiers[0]
        assert md.type == "MESH_CACHE" and md.filepath.startswith("//"), md.filepath
        assert Path(bpy.path.abspath(md.filepath)).resolve() == (cache_dir / f"{'Tet' if obj is tet else 'particles'}.pc2").resolve()
    assert len(tet.data.polygons) == 4
    for k in (0, 2, 4):
        scene.frame_set(3 + k)
        dg = bpy.context.evaluated_depsgraph_get()
        for obj in (tet, particles):
            ev = obj.evaluated_get(dg)
            got = np.array([(ev.matrix_world @ v.co)[:] for v in ev.data.vertices])
            np.testing.assert_allclose(got * 2.0, world[k], atol=1e-5)  # units -> metres (2 m per unit)
    assert scene.camera is not None
    cam = scene.camera
    scene.frame_set(5)
    pts = np.array([[0.3, 0.1, 0.9], [0.6, -0.2, 1.2]])
    job = contract.read_job(job_dir)
    uv, _ = contract.project(job.camera.K, job.camera.world_to_camera[2], pts * 2.0)
    np.testing.assert_allclose(_pixels_blender(scene, cam, pts), uv, atol=1e-3)
