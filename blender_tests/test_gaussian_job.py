"""3D Gaussian objects in the job (their Gaussians as the point set) and their volume fill."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
import mathutils
import numpy as np
import pytest
from helpers import add_grip, set_prefs_python, use_target
from test_fill import needs_fill

from physinteract import contract
from physinteract.geometry.gaussians import GaussianCloud, read_gaussian_ply

SH_C0 = 0.28209479177387814
N = 80
MPU = 0.5  # metres per Blender unit
OBJ_SCALE = 2.0  # the object's own (uniform) scale


def _cloud(seed: int = 0) -> GaussianCloud:
    """A blob of N Gaussians (centres in a ball of radius 0.04 units, sigma ~ 5 mm units), all fairly opaque."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(N, 3))
    means = 0.04 * d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(0.2, 1.0, (N, 1)) ** (1 / 3)
    f = np.float32
    return GaussianCloud(means=means.astype(f), f_dc=rng.normal(0.0, 1.5, (N, 3)).astype(f), f_rest=np.zeros((N, 0), f),
                         opacity_logit=rng.uniform(0.5, 3.0, N).astype(f),
                         log_scales=np.log(rng.uniform(0.003, 0.008, (N, 3))).astype(f),
                         rotations=rng.normal(size=(N, 4)).astype(f))


def _gaussian_scene(scene: bpy.types.Scene, tmp: Path, addon: str) -> tuple[bpy.types.Object, GaussianCloud]:
    """A Gaussian object (rotated 30 deg about z, scale 2, MPU m per unit) grasped at its top, frames 1..4."""
    props, gaussians = sys.modules[f"{addon}.properties"], sys.modules[f"{addon}.gaussians"]
    cloud = _cloud()
    obj = gaussians.create_gaussian_object(bpy.context, "Splat", cloud)
    obj.location = (0.1, -0.2, 0.3)
    obj.rotation_euler = (0.0, 0.0, np.pi / 6)
    obj.scale = (OBJ_SCALE,) * 3
    bpy.context.view_layer.update()
    top = max((obj.matrix_world @ mathutils.Vector(p.tolist()) for p in cloud.means), key=lambda p: p.z)
    empty = add_grip(scene, top, (1, 4))
    use_target(props, scene, obj, tmp)
    o = props.object_settings(obj)
    o.scale, o.trajectory, o.contact_source, o.contact_radius = MPU, empty, "NEAREST", 0.02
    bpy.context.view_layer.objects.active = obj
    return obj, cloud


def _covariances(rotations: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """[N, 3, 3] R diag(s^2) R^T from (w, x, y, z) quaternions and standard deviations."""
    from physinteract.geometry.deform import matrix_from_quaternion

    R = matrix_from_quaternion(np.asarray(rotations, np.float64))
    return R @ (np.asarray(scales, np.float64)[:, :, None] ** 2 * np.swapaxes(R, -1, -2))


def test_gaussian_object_job_point_set_is_its_gaussians_in_world_metres(empty_scene: bpy.types.Scene, addon: str,
                                                                        tmp_path: Path) -> None:
    """Known answer: the job's point set holds the Gaussians in world metres: centres M x, covariances
    (MPU M) Sigma (MPU M)^T for the object's matrix M, colours clamp(0.5 + C0 f_dc), opacities sigmoid(logit);
    with the Vertices fill the particles are the centres, and the PC2 maps back to the object's local space."""
    obj, cloud = _gaussian_scene(empty_scene, tmp_path, addon)
    s2j = sys.modules[f"{addon}.scene_to_job"]
    s2j.write_scene_job(empty_scene)
    job = contract.read_job(tmp_path / "job")
    (ps,) = job.point_sets
    m = np.array(obj.matrix_world)
    centres = (cloud.means.astype(np.float64) @ m[:3, :3].T + m[:3, 3]) * MPU
    np.testing.assert_allclose(ps.rest_positions, centres, atol=1e-6)
    np.testing.assert_allclose(job.particles, centres, atol=1e-6)
    A = MPU * m[:3, :3]
    want = A @ _covariances(cloud.rotations / np.linalg.norm(cloud.rotations, axis=1, keepdims=True),
                            np.exp(cloud.log_scales.astype(np.float64))) @ A.T
    got = _covariances(ps.rest_rotations, ps.rest_scales)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(np.sort(ps.rest_scales, axis=1),
                               np.sort(np.exp(cloud.log_scales.astype(np.float64)) * OBJ_SCALE * MPU, axis=1), rtol=1e-4)
    np.testing.assert_allclose(ps.colors, np.clip(0.5 + SH_C0 * cloud.f_dc.astype(np.float64), 0, 1), atol=1e-6)
    np.testing.assert_allclose(ps.opacities, 1 / (1 + np.exp(-cloud.opacity_logit.astype(np.float64))), rtol=1e-6)
    local = ps.rest_positions @ np.linalg.inv(ps.object_to_world)[:3, :3].T + np.linalg.inv(ps.object_to_world)[:3, 3]
    np.testing.assert_allclose(local, cloud.means, atol=1e-6)
    assert ps.faces is None and job.metadata["representation"] == "gaussians"


def test_gaussian_object_without_3dgs_attributes_is_refused_with_advice(empty_scene: bpy.types.Scene, addon: str,
                                                                        tmp_path: Path) -> None:
    """A mesh marked as Gaussians but lacking the 3DGS attributes: the job is refused naming the attribute, nothing written."""
    obj, _ = _gaussian_scene(empty_scene, tmp_path, addon)
    obj.data.attributes.remove(obj.data.attributes["rot_2"])
    s2j = sys.modules[f"{addon}.scene_to_job"]
    with pytest.raises(s2j.SceneError, match="rot_2"):
        s2j.write_scene_job(empty_scene)
    assert not (tmp_path / "job").exists()


@needs_fill
def test_fill_of_gaussian_object_fills_its_world_gaussians(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: Fill on a Gaussian object writes its Gaussians in world metres as a 3DGS PLY (centres M x MPU),
    runs 'physinteract fill --gaussians' on it, and the particles (surface and interior) lie within the centres' box
    grown by 3 sigma and one cell; the job then uses the fill as particles and keeps the Gaussians as its point set."""
    set_prefs_python(addon, sys.executable)
    props = sys.modules[f"{addon}.properties"]
    obj, cloud = _gaussian_scene(empty_scene, tmp_path, addon)
    o = props.object_settings(obj)
    o.fill_mode, o.fill_resolution = "VOLUME", 8
    assert bpy.ops.physinteract.fill() == {"FINISHED"}
    written = read_gaussian_ply(tmp_path / "job" / "fill" / "Splat_gaussians.ply")
    m = np.array(obj.matrix_world)
    centres = (cloud.means.astype(np.float64) @ m[:3, :3].T + m[:3, 3]) * MPU
    np.testing.assert_allclose(written.means, centres, atol=1e-6)
    np.testing.assert_array_equal(written.f_dc, cloud.f_dc)
    assert "--gaussians" in (tmp_path / "job" / "fill" / "Splat_fill_log.txt").read_text()
    fill = sys.modules[f"{addon}.filling"].read_particles_ply(o.fill_file)
    assert o.fill_count == len(fill["labels"]) > 20
    assert set(np.unique(fill["labels"]).tolist()) == {contract.SURFACE, contract.INTERIOR}
    sigma = float(np.exp(cloud.log_scales).max()) * OBJ_SCALE * MPU
    cell = float(np.ptp(centres, axis=0).max()) / 8
    x = fill["positions"]
    assert np.all(x >= centres.min(0) - 3 * sigma - cell) and np.all(x <= centres.max(0) + 3 * sigma + cell)
    sys.modules[f"{addon}.scene_to_job"].write_scene_job(empty_scene)
    job = contract.read_job(tmp_path / "job")
    assert len(job.particles) == o.fill_count and job.point_sets[0].colors is not None
    np.testing.assert_allclose(job.point_sets[0].rest_positions, centres, atol=1e-6)
