"""Volume filling through the backend's 'physinteract fill', and baking a filled object."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import bmesh
import bpy
import numpy as np
import pytest
from helpers import add_grip, eval_local, expected_local, set_prefs_python, use_target

from physinteract import contract

RADIUS = 0.05  # m (1 m per unit)


def _has_fill() -> bool:
    try:
        return importlib.util.find_spec("physinteract.commands.fill") is not None
    except ImportError:
        return False


needs_fill = pytest.mark.skipif(not _has_fill(), reason="physinteract.commands.fill is not importable yet")


def _sphere_scene(scene: bpy.types.Scene, tmp: Path, addon: str) -> tuple[bpy.types.Object, bpy.types.Object]:
    """A closed icosphere (radius 5 cm) grasped at its top by an Empty lifted 2 cm over frames 1..6."""
    props = sys.modules[f"{addon}.properties"]
    mesh = bpy.data.meshes.new("Ball")
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=3, radius=RADIUS)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Ball", mesh)
    obj.location = (0.0, 0.1, 0.2)
    scene.collection.objects.link(obj)
    empty = add_grip(scene, (0.0, 0.1, 0.2 + RADIUS), (1, 6))
    use_target(props, scene, obj, tmp)
    o = props.object_settings(obj)
    o.trajectory, o.contact_source, o.contact_radius, o.material_preset = empty, "NEAREST", 0.015, "JELLY"
    o.fill_mode, o.fill_resolution = "VOLUME", 8
    bpy.context.view_layer.objects.active = obj
    return obj, empty


@needs_fill
def test_volume_fill_particles_fill_the_sphere_volume(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: the backend's fill of a closed icosphere has total particle volume within 15% of
    the mesh's volume (~4/3 pi r^3), surface and interior particles, all within r + one cell of the centre."""
    set_prefs_python(addon, sys.executable)
    props = sys.modules[f"{addon}.properties"]
    obj, _ = _sphere_scene(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.fill() == {"FINISHED"}
    o = props.object_settings(obj)
    fill = sys.modules[f"{addon}.filling"].read_particles_ply(o.fill_file)
    assert o.fill_count == len(fill["labels"]) > 50
    bm = bmesh.new()
    bm.from_mesh(obj.data)
    mesh_volume = bm.calc_volume()
    bm.free()
    assert mesh_volume == pytest.approx(4 / 3 * math.pi * RADIUS**3, rel=0.05)
    assert fill["volume"].sum() == pytest.approx(mesh_volume, rel=0.15)
    assert set(np.unique(fill["labels"]).tolist()) == {contract.SURFACE, contract.INTERIOR}
    cell = 2 * RADIUS / 8
    assert np.linalg.norm(fill["positions"] - [0.0, 0.1, 0.2], axis=1).max() < RADIUS + cell


@needs_fill
def test_filled_object_bakes_and_mesh_follows_its_point_set(empty_scene: bpy.types.Scene, addon: str, backend: str,
                                                            tmp_path: Path) -> None:
    """Known answer: after Fill + Bake the job's particles are the fill, the mesh (a passive point set)
    plays the cache's positions at each frame, and the particles object has one vertex per particle."""
    set_prefs_python(addon, sys.executable)  # the fill always runs on the real backend
    props, c2s = sys.modules[f"{addon}.properties"], sys.modules[f"{addon}.cache_to_scene"]
    obj, _ = _sphere_scene(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.fill() == {"FINISHED"}
    set_prefs_python(addon, backend)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}, props.scene_settings(empty_scene).status
    job = contract.read_job(tmp_path / "job")
    n = props.object_settings(obj).fill_count
    assert len(job.particles) == n and job.metadata["fill"] == "volume"
    assert len(job.point_sets[0].rest_positions) == len(obj.data.vertices)
    assert 0 < len(job.contact) < n
    cache = tmp_path / "cache"
    for frame in (1, 4, 6):
        empty_scene.frame_set(frame)
        np.testing.assert_allclose(eval_local(obj), expected_local(cache, frame, "Ball"), atol=1e-5)
    assert len(bpy.data.objects[c2s.PARTICLES_OBJECT].data.vertices) == n


@needs_fill
def test_bake_refuses_a_stale_fill(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Moving the object after filling makes the fill stale: the bake is refused with advice, nothing runs."""
    set_prefs_python(addon, sys.executable)
    obj, _ = _sphere_scene(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.fill() == {"FINISHED"}
    obj.location.x += 0.01
    with pytest.raises(RuntimeError, match="Fill again"):
        bpy.ops.physinteract.bake()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("binary", [True, False])
def test_particle_ply_reader_matches_the_backend_writer(addon: str, tmp_path: Path, binary: bool) -> None:
    """The add-on's numpy PLY reader returns what physinteract.geometry wrote (binary and ascii)."""
    geometry = pytest.importorskip("physinteract.geometry")
    rng = np.random.default_rng(3)
    n = 37
    p = geometry.Particles(positions=rng.normal(size=(n, 3)), volume=rng.uniform(1e-9, 1e-6, n),
                           labels=rng.integers(0, 2, n).astype(np.uint8), cell_size=0.01)
    path = tmp_path / "p.ply"
    geometry.write_particles_ply(path, p, binary=binary)
    got = sys.modules[f"{addon}.filling"].read_particles_ply(path)
    np.testing.assert_allclose(got["positions"], p.positions, rtol=1e-6 if binary else 1e-5)
    np.testing.assert_allclose(got["volume"], p.volume, rtol=1e-6 if binary else 1e-5)
    np.testing.assert_array_equal(got["labels"], p.labels)


@needs_fill
def test_fill_preview_adds_a_point_cloud_with_the_reported_count(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Preview filling creates '<object> Fill Preview' holding one vertex per particle, as many as the panel reports."""
    set_prefs_python(addon, sys.executable)
    props = sys.modules[f"{addon}.properties"]
    obj, _ = _sphere_scene(empty_scene, tmp_path, addon)
    bpy.context.view_layer.objects.active = obj
    with pytest.raises(RuntimeError, match="Fill the object first"):
        bpy.ops.physinteract.fill_preview()
    assert bpy.ops.physinteract.fill() == {"FINISHED"}
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    preview = bpy.data.objects[obj.name + " Fill Preview"]
    o = props.object_settings(obj)
    fill = sys.modules[f"{addon}.filling"].read_particles_ply(o.fill_file)
    assert o.fill_count == len(fill["labels"]) == len(preview.data.vertices) > 50
    pos = np.empty(3 * len(preview.data.vertices), np.float32)
    preview.data.vertices.foreach_get("co", pos)
    world = np.asarray(preview.matrix_world)
    pts = pos.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    np.testing.assert_allclose(np.sort(pts[:, 2]), np.sort(fill["positions"][:, 2]), atol=1e-5)
