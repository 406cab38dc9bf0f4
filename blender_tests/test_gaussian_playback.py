"""A baked Gaussian object plays its cache per frame: positions (Mesh Cache) and rotations and scales (frame handler),
also after the .blend is saved and reopened, and freeing the bake gives back the Gaussians at rest."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
import fake_backend
import numpy as np
import pytest
from helpers import expected_local
from test_gaussian_job import _covariances, _gaussian_scene

from physinteract import contract


def _attributes(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """(rotations [V, 4] from rot_0..3, log scales [V, 3] from scale_0..2) as stored on the object (object space)."""
    mesh = obj.data
    n = len(mesh.vertices)

    def col(name: str) -> np.ndarray:
        a = np.empty(n, np.float32)
        mesh.attributes[name].data.foreach_get("value", a)
        return a.astype(np.float64)

    return np.stack([col(f"rot_{i}") for i in range(4)], 1), np.stack([col(f"scale_{i}") for i in range(3)], 1)


def _world_covariances(obj: bpy.types.Object, cache: Path, point_set: str) -> np.ndarray:
    """The object's Gaussians' covariances mapped to world metres with the cache's object_to_world (inverse world_to_object)."""
    rot, log_s = _attributes(obj)
    m = contract.read_cache_manifest(cache)
    w2o = np.asarray(next(p for p in m["point_sets"] if p["name"] == point_set)["world_to_object"])
    B = np.linalg.inv(w2o)[:3, :3]
    return B @ _covariances(rot, np.exp(log_s)) @ B.T


def _cache_covariances(cache: Path, frame: int, point_set: str) -> np.ndarray:
    data = contract.read_frame(cache, frame)
    return _covariances(data[f"{point_set}.rotations"], data[f"{point_set}.scales"])


def _evaluated_positions(obj: bpy.types.Object) -> np.ndarray:
    """Object-space centres of the displayed points (the Mesh Cache modifier, then the display modifier)."""
    bpy.context.view_layer.update()
    geometry = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    points = geometry.pointcloud
    co = np.empty(len(points.points) * 3, np.float32)
    points.attributes["position"].data.foreach_get("vector", co)
    return co.reshape(-1, 3).astype(np.float64)


def _check_frame(scene: bpy.types.Scene, obj: bpy.types.Object, cache: Path, frame: int, point_set: str) -> None:
    scene.frame_set(frame)
    np.testing.assert_allclose(_evaluated_positions(obj), expected_local(cache, frame, point_set), atol=1e-5)
    got, want = _world_covariances(obj, cache, point_set), _cache_covariances(cache, frame, point_set)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def test_gaussians_play_positions_rotations_and_scales_of_every_frame(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Known answer (fake bake: each Gaussian turns 0.1 rad/frame about world z and grows 5%/frame): at frame N the
    displayed centres are the cache's frame-N positions and the object's rot/scale attributes, mapped to world with the
    object's matrix, give the cache's frame-N covariances, on a rotated, scaled object; the same after saving and
    reopening the .blend (relative cache path); a frame change reads no cache manifest; the job still sees the rest
    Gaussians; Free Bake restores them."""
    props, s2j, gp = (sys.modules[f"{addon}.{m}"] for m in ("properties", "scene_to_job", "gaussian_playback"))
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # saved first: the cache path is stored '//'-relative
    obj, _ = _gaussian_scene(empty_scene, tmp_path, addon)
    rest_rot, rest_log_s = _attributes(obj)
    job_before, _, _ = s2j.build_job(empty_scene)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}, props.scene_settings(empty_scene).status
    cache = tmp_path / "cache"
    point_set = s2j.point_set_name(obj)
    assert contract.read_cache_manifest(cache)["point_sets"][0]["rotations"]
    o = props.object_settings(obj)
    assert o.gaussian_cache.startswith("//") and o.gaussian_point_set == point_set
    for frame in (4, 2, 1, 3):
        _check_frame(empty_scene, obj, cache, frame, point_set)
    # the frame handler reads only each frame's arrays: no manifest read per frame change
    manifest_reads: list[Path] = []
    read_manifest = contract.read_cache_manifest
    monkeypatch.setattr(contract, "read_cache_manifest", lambda folder: manifest_reads.append(folder) or read_manifest(folder))
    for frame in (1, 2, 3, 4):
        empty_scene.frame_set(frame)
    monkeypatch.undo()
    assert manifest_reads == []
    # the fake's answer, independently: frame 4 is 3 frames after rest
    want_rot, want_s = fake_backend.gaussian_frame(job_before.point_sets[0].rest_rotations, job_before.point_sets[0].rest_scales, 3)
    empty_scene.frame_set(4)
    np.testing.assert_allclose(_world_covariances(obj, cache, point_set), _covariances(want_rot, want_s), rtol=1e-4,
                               atol=1e-9)
    # a job built while a bake plays still holds the rest Gaussians
    job_playing, _, _ = s2j.build_job(empty_scene)
    np.testing.assert_allclose(job_playing.point_sets[0].rest_scales, job_before.point_sets[0].rest_scales, rtol=1e-6)

    empty_scene.frame_set(2)
    name = obj.name
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene, obj = bpy.context.scene, bpy.data.objects[name]
    for frame in (3, 4):
        _check_frame(scene, obj, cache, frame, point_set)
    assert gp.on_frame_change in bpy.app.handlers.frame_change_post

    assert bpy.ops.physinteract.free_bake(confirm=False) == {"FINISHED"}
    rot, log_s = _attributes(obj)
    np.testing.assert_array_equal(rot, rest_rot)
    np.testing.assert_array_equal(log_s, rest_log_s)
    assert not [a.name for a in obj.data.attributes if a.name.startswith(".physinteract_rest_")]
    assert props.object_settings(obj).gaussian_cache == ""
