"""Estimate Material with the REAL estimator ('physinteract estimate' in a subprocess) on a tiny scene built in Blender:
a Gaussian beam, a camera, a Movie Clip image sequence (frames drawn by the test) and a keyed grasp."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import bpy
import mathutils
import numpy as np
import pytest
from helpers import add_grip, set_prefs_python, use_target

from physinteract import contract
from physinteract.geometry.gaussians import GaussianCloud
from physinteract.imageio import write_png

SH_C0 = 0.28209479177387814
SPACING = 0.012  # m between Gaussian centres (= particles: the Vertices fill)
SHAPE = (10, 4, 4)  # 160 Gaussians: a 0.12 x 0.048 x 0.048 m beam
CENTER = np.array([0.0, 0.0, 0.3])
FRAMES = (1, 4)
WIDTH, HEIGHT = 80, 60

pytestmark = pytest.mark.skipif(importlib.util.find_spec("physinteract.estimate") is None
                                or importlib.util.find_spec("torch") is None, reason="the real estimator needs torch")


def _beam() -> GaussianCloud:
    """A lattice of Gaussians (sigma 6 mm, opacity 0.95) striped orange / blue along x, so motion shows in the frames."""
    idx = np.stack(np.meshgrid(*[np.arange(k) for k in SHAPE], indexing="ij"), -1).reshape(-1, 3)
    means = (idx - (np.array(SHAPE) - 1) / 2) * SPACING + CENTER
    colors = np.where((idx[:, :1] // 2) % 2 == 0, [0.85, 0.35, 0.15], [0.2, 0.45, 0.8])
    n, f = len(means), np.float32
    return GaussianCloud(means=means.astype(f), f_dc=((colors - 0.5) / SH_C0).astype(f), f_rest=np.zeros((n, 0), f),
                         opacity_logit=np.full(n, np.log(0.95 / 0.05), f), log_scales=np.full((n, 3), np.log(0.006), f),
                         rotations=np.tile(np.array([1, 0, 0, 0], f), (n, 1)))


def _draw_frame(job: contract.Job, cloud: GaussianCloud, frame_index: int, lift: np.ndarray) -> np.ndarray:
    """[H, W, 3] a frame: each Gaussian as an isotropic splat (its projected sigma) composited front to back over grey,
    the beam's contact end lifted by ``lift`` (m) - a stand-in video, not a physical one (this test checks plumbing)."""
    cam = job.camera
    x = np.asarray(cloud.means, np.float64)
    w = np.clip((x[:, 0] - x[:, 0].min()) / np.ptp(x[:, 0]), 0, 1)[:, None]  # 0 at the free end, 1 at the grasped end
    uv, z = contract.project(cam.K, cam.world_to_camera[frame_index], x + w * lift)
    sigma_px = 0.006 * cam.K[0, 0] / z
    colors = np.clip(0.5 + SH_C0 * cloud.f_dc.astype(np.float64), 0, 1)
    yy, xx = np.mgrid[0:cam.height, 0:cam.width] + 0.5
    rgb, transmittance = np.zeros((cam.height, cam.width, 3)), np.ones((cam.height, cam.width))
    for i in np.argsort(z):
        a = 0.95 * np.exp(-0.5 * ((xx - uv[i, 0]) ** 2 + (yy - uv[i, 1]) ** 2) / sigma_px[i] ** 2)
        rgb += (transmittance * a)[..., None] * colors[i]
        transmittance *= 1 - a
    return rgb + transmittance[..., None] * np.array([0.92, 0.92, 0.9])


def _tiny_scene(scene: bpy.types.Scene, tmp: Path, addon: str) -> bpy.types.Object:
    props, gaussians, s2j = (sys.modules[f"{addon}.{m}"] for m in ("properties", "gaussians", "scene_to_job"))
    cloud = _beam()
    obj = gaussians.create_gaussian_object(bpy.context, "Beam", cloud)
    grasp = cloud.means[cloud.means[:, 0] > cloud.means[:, 0].max() - 1e-6].mean(0)
    empty = add_grip(scene, grasp, FRAMES, lift=0.02)
    use_target(props, scene, obj, tmp)
    o = props.object_settings(obj)
    o.trajectory, o.contact_source, o.contact_radius = empty, "NEAREST", 0.02
    o.youngs_modulus, o.poisson_ratio, o.density = 3.0e4, 0.3, 500.0
    cam_data = bpy.data.cameras.new("Cam")
    cam_data.lens, cam_data.sensor_width = 35.0, 36.0
    cam = bpy.data.objects.new("Cam", cam_data)
    scene.collection.objects.link(cam)
    cam.location = (0.02, -0.45, 0.33)
    cam.rotation_euler = (mathutils.Vector(CENTER.tolist()) - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = WIDTH, HEIGHT, 100
    scene.render.fps, scene.render.fps_base = 24, 1.0
    bpy.context.view_layer.update()
    job, _, _ = s2j.build_job(scene)  # the camera as the job will carry it, to draw the frames through
    video = tmp / "video"
    for i in range(job.num_frames):
        lift = np.array([0.0, 0.0, 0.02 * i / (job.num_frames - 1)])
        write_png(video / f"frame_{FRAMES[0] + i:04d}.png", _draw_frame(job, cloud, i, lift))
    clip = bpy.data.movieclips.load(str(video / f"frame_{FRAMES[0]:04d}.png"))
    clip.frame_start = FRAMES[0]
    assert clip.source == "SEQUENCE"
    props.scene_settings(scene).clip = clip
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    return obj


def test_real_estimate_lands_the_backend_field_on_the_particles(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Real estimator, 2 iterations on 160 particles: the job carries the clip's frames and the camera, the estimate cache
    is complete, and its material_E.npy / material_nu.npy are the E / nu point attributes of the particles (the fill
    preview) in particle order, with the median, range and colours in the panel; E stays positive and finite."""
    props = sys.modules[f"{addon}.properties"]
    set_prefs_python(addon, sys.executable)
    _tiny_scene(empty_scene, tmp_path, addon)
    s = props.scene_settings(empty_scene)
    s.estimate_mode, s.estimate_iterations = "material_only", 2
    t0 = time.perf_counter()
    assert bpy.ops.physinteract.estimate() == {"FINISHED"}, s.status
    print(f"real estimate from Blender: {time.perf_counter() - t0:.1f} s wall")
    job = contract.read_job(tmp_path / "job")
    assert len(job.video.frames) == job.num_frames == FRAMES[1] - FRAMES[0] + 1
    assert job.camera is not None and job.camera.width == WIDTH and job.point_sets[0].colors is not None
    est = tmp_path / "cache" / "estimate"
    assert contract.read_cache_manifest(est)["status"] == "complete"
    E, nu = contract.read_material(est, len(job.particles))
    assert np.all(np.isfinite(E)) and np.all(E > 0)
    preview = bpy.data.objects["Beam Fill Preview"].data
    got_E, got_nu = np.empty(len(E), np.float32), np.empty(len(E), np.float32)
    preview.attributes["E"].data.foreach_get("value", got_E)
    preview.attributes["nu"].data.foreach_get("value", got_nu)
    np.testing.assert_allclose(got_E, E, rtol=1e-6)
    np.testing.assert_allclose(got_nu, nu, rtol=1e-6)
    assert s.estimate_E_median == pytest.approx(float(np.median(E)), rel=1e-6)
    assert (s.estimate_E_min, s.estimate_E_max) == (pytest.approx(E.min(), rel=1e-6), pytest.approx(E.max(), rel=1e-6))
    assert "E_color" in preview.color_attributes
