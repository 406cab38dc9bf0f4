"""The bundled example: its input video and the `physinteract example` main job (estimate, then bake)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from physinteract import contract
from physinteract.example import EstimateSetup, build_estimate_job, load_example, load_example_video
from physinteract.imageio import read_png


def test_bundled_video_matches_its_camera_and_the_estimate_job_validates(tmp_path: Path) -> None:
    """The rest frame's silhouette is where camera.json projects the rest Gaussians (same box within 3 px),
    every frame/mask has the camera's size, T0 starts at the grasp centroid (within the tracker's few mm),
    and the estimator's job (E guess = truth / 5) round-trips through the contract."""
    scene = load_example()
    video = load_example_video()
    spec = scene.spec
    n_frames = int(spec["frame_end"]) - int(spec["frame_start"]) + 1
    assert len(video.frames) == len(video.masks) == n_frames
    W, H = video.camera.width, video.camera.height
    for f, m in zip(video.frames, video.masks, strict=True):
        assert read_png(f).shape[:2] == (H, W)
        assert read_png(m).shape[:2] == (H, W)
    g = video.gaussians
    G = len(g["positions"])
    assert g["rotations"].shape == (G, 4) and g["scales"].shape == (G, 3) and g["colors"].shape == (G, 3)
    np.testing.assert_allclose(np.linalg.norm(g["rotations"], axis=1), 1.0, atol=1e-4)
    assert np.all(g["scales"] > 0) and np.all((g["opacities"] > 0) & (g["opacities"] <= 1))
    # the Gaussians lie on the rope's surface: inside its bounding box, grown by a few of their own scales
    lo, hi = scene.vertices.min(0), scene.vertices.max(0)
    assert np.all(g["positions"] >= lo - 0.002) and np.all(g["positions"] <= hi + 0.002)

    mask = read_png(video.masks[0])
    mask = mask.mean(axis=2) if mask.ndim == 3 else mask
    rows, cols = np.nonzero(mask > 0.5)
    uv, z = contract.project(video.camera.K, video.camera.world_to_camera[0], g["positions"])
    assert np.all(z > 0)
    assert abs(cols.min() - uv[:, 0].min()) < 3 and abs(cols.max() - uv[:, 0].max()) < 3
    assert abs(rows.min() - uv[:, 1].min()) < 3 and abs(rows.max() - uv[:, 1].max()) < 3
    # later frames differ from the rest frame (the rope moves) and stay inside the picture
    last = read_png(video.masks[-1])
    last = last.mean(axis=2) if last.ndim == 3 else last
    assert np.abs(last - mask).mean() > 0.01
    assert not last[[0, -1], :].any() and not last[:, [0, -1]].any()

    job = build_estimate_job(scene, video, EstimateSetup(fill_resolution=12, grid_resolution=28), video_prefix=str(video.folder))
    E_true = float(spec["material"]["E"])
    np.testing.assert_allclose(job.E, E_true / 5.0)
    assert video.tracked_times[0] == 0.0 and abs(video.tracked_times[-1] - (n_frames - 1) / float(spec["fps"])) < 1e-6
    centroid = job.particles[job.contact].mean(0)
    assert np.linalg.norm(video.tracked_positions[0] - centroid) < 0.01
    np.testing.assert_array_equal(job.trajectory, video.tracked_positions)
    assert job.point_sets[0].colors is not None and len(job.point_sets[0].rest_positions) == G
    assert job.point_sets[1].name == "rope" and job.point_sets[1].faces is not None
    contract.write_job(job, tmp_path / "job")
    back = contract.read_job(tmp_path / "job")
    assert back.video is not None and len(back.video.frames) == n_frames
    np.testing.assert_allclose(back.E, job.E)


def _run_example(out: Path, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "physinteract", "example", "--out", str(out), "--quick", "--arch", "cpu", *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dict(json.loads((out / "summary.json").read_text()))


def test_example_estimates_then_bakes_the_novel_interaction_with_the_estimate(tmp_path: Path) -> None:
    """`physinteract example --quick`: the estimate cache holds a material field that moved off the 5x-off guess,
    the novel bake uses exactly that field, starts at the rest state and its grasp follows the novel path."""
    out = tmp_path / "ex"
    s = _run_example(out)
    E, nu = contract.read_material(out / "estimate", s["estimate_particles"])
    assert s["E_initial_pa"] == s["E_true_pa"] / 5.0
    assert abs(np.log(s["E_estimated_median_pa"] / s["E_initial_pa"])) > 0.1  # the scan and the iterations moved it
    np.testing.assert_allclose(s["E_estimated_median_pa"], float(np.median(E)))
    assert 0.0 <= s["material_accuracy"] <= 1.0 and np.isfinite(s["psnr_db"]) and s["estimate_iterations"] >= 1
    job = contract.read_job(out / "job")
    np.testing.assert_array_equal(job.E, E)  # the novel bake used the estimated field
    np.testing.assert_array_equal(job.nu, nu)
    frames = contract.completed_frames(out / "cache", verify=True)
    assert len(frames) == job.num_frames == s["frames"]
    first = contract.read_frame(out / "cache", frames[0])["particles.positions"]
    np.testing.assert_allclose(first, job.particles, atol=1e-6)  # frame_start is the rest state
    # the grasped particles follow the keyed novel path (point_adherent, velocity drive) to its end
    last = contract.read_frame(out / "cache", frames[-1])["particles.positions"]
    assert abs(job.trajectory_times[-1] - (job.num_frames - 1) / job.fps) < 1e-9
    assert np.linalg.norm(job.trajectory[-1] - job.trajectory[0]) > 0.01
    np.testing.assert_allclose(last[job.contact].mean(0), job.trajectory[-1], atol=0.003)
    assert (out / "report.md").is_file() and "E_estimated_median_pa" in (out / "report.md").read_text()
    est_job = contract.read_job(out / "estimate_job")
    assert est_job.video is not None and all((out / "estimate_job" / p).is_file() for p in est_job.video.frames)


def test_example_no_estimate_bakes_with_the_known_material(tmp_path: Path) -> None:
    """`physinteract example --no-estimate --quick` bakes with scene.json's true E and writes no estimate."""
    out = tmp_path / "known"
    s = _run_example(out, "--no-estimate")
    job = contract.read_job(out / "job")
    np.testing.assert_allclose(job.E, float(load_example().spec["material"]["E"]))
    assert s["material"].startswith("known") and not (out / "estimate").exists()
    assert len(contract.completed_frames(out / "cache", verify=True)) == job.num_frames
