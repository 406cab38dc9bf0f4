"""Make the bundled example's input video (run once; its output is committed).

    python scripts/make_example_video.py [--out backend/physinteract/data/example/video]

The video is what a camera would have seen of the example rope (data/example/scene.json):
the rope is filled at 1.5x the estimator's resolution per axis (an independent, finer lattice)
and simulated on a 1.5x finer grid with the scene's ground-truth material and its observed
``trajectory``; the rope's surface Gaussians (a colour pattern in rest coordinates) are carried
by the fine particles (covariances F Sigma F^T) and rendered at 2x supersampling, box-filtered
to the camera's pixels, with mild noise (the benchmark's ``carry`` and ``render_frames``). The
silhouettes are alpha > 0.5. T0 is the grasp trajectory as a tracker reports it (the benchmark's
``tracker_trajectory``: a lag of a frame, a slow drift, noise).

Writes frames/frame_XXXX.png, masks/mask_XXXX.png, gaussians.npz, tracked_trajectory.json,
camera.json and README.md into the output folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FACTOR = 1.5  # fine / estimator resolution, per axis (particles and grid)
GAUSSIAN_SPACING = 0.004  # m between the Gaussians on the surface
COLORS = ((0.85, 0.62, 0.3), (0.35, 0.22, 0.1))  # linear RGB stripes of the rope
SEED = 7


def main(argv: list[str] | None = None) -> int:
    from physinteract import contract
    from physinteract.benchmark.scenes import BACKGROUND, BuildConfig, carry, render_frames, simulate, tracker_trajectory
    from physinteract.example import VIDEO_DIR, build_example_job, load_example, mesh_gaussians
    from physinteract.imageio import write_png
    from physinteract.mpm import config_from_settings, control_from_job, ensure_taichi, model_from_job

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=VIDEO_DIR)
    args = p.parse_args(argv)
    out: Path = args.out
    t_start = time.perf_counter()
    scene = load_example()
    spec = scene.spec
    est = spec["estimate"]
    fine_fill = int(round(FACTOR * est["fill_resolution"]))
    fine_grid = int(round(FACTOR * est["grid_resolution"]))
    job = build_example_job(scene, novel=False, grid_resolution=fine_grid, fill_resolution=fine_fill)
    cfg = config_from_settings(job.solver)
    cfg.arch = "cpu"
    ensure_taichi(cfg.arch, cfg.precision)
    model = model_from_job(job, cfg)
    control = control_from_job(job)
    frames = job.num_frames - 1
    frame_dt = 1.0 / job.fps
    xs, Fs, substeps = simulate(model, control, frame_dt, frames)
    print(f"make_example_video: {len(job.particles)} fine particles, grid {fine_grid}, {substeps} substeps/frame, "
          f"{time.perf_counter() - t_start:.1f} s", flush=True)

    gauss = mesh_gaussians(scene.vertices, scene.faces, GAUSSIAN_SPACING, COLORS, seed=SEED)
    centres, F_centres = carry(gauss["positions"], job.particles, xs, Fs)
    assert job.camera is not None
    K, w2c = job.camera.K, job.camera.world_to_camera[0]
    W, H = job.camera.width, job.camera.height
    uv, _ = contract.project(K, w2c, centres.reshape(-1, 3))
    lo, hi = uv.min(0), uv.max(0)
    print(f"make_example_video: the rope spans x {lo[0]:.0f}..{hi[0]:.0f} of {W} px, y {lo[1]:.0f}..{hi[1]:.0f} of {H} px "
          f"over all frames", flush=True)
    if lo[0] < 2 or lo[1] < 2 or hi[0] > W - 2 or hi[1] > H - 2:
        print("make_example_video: the rope leaves the picture; adjust scene.json's camera", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)
    images, alpha = render_frames(centres, F_centres, gauss, K, w2c, W, H, supersample=2, noise=0.005,
                                  rng=np.random.default_rng(SEED + 1), background=BACKGROUND)
    for i in range(len(images)):
        write_png(out / "frames" / f"frame_{i:04d}.png", images[i])
        write_png(out / "masks" / f"mask_{i:04d}.png", (alpha[i] > 0.5).astype(np.float64))
    contract.atomic_save_npz(out / "gaussians.npz", {k: v.astype(np.float32) for k, v in gauss.items()})

    track = BuildConfig(fps=job.fps, lag_frames=1.0, drift=0.01, track_noise=0.002)
    t0_times, t0_pos = tracker_trajectory(control.times, control.values, frames * frame_dt, track, rng)
    contract.atomic_write_json(out / "tracked_trajectory.json", {
        "description": "grasp centroid as a tracker reported it (lag 1 frame, drift 0.01 m/s, noise 0.002 m); world m, Blender +Z up",
        "times": [round(float(t), 6) for t in t0_times],
        "positions": [[round(float(v), 6) for v in row] for row in t0_pos],
    })
    contract.atomic_write_json(out / "camera.json", {
        "description": "pinhole camera of the video: K in px, world_to_camera OpenCV axes (x right, y down, z forward), m",
        "K": K.tolist(), "world_to_camera": w2c.tolist(), "width": W, "height": H,
    })
    mat = spec["material"]
    readme = f"""# The example's input video

Made by `scripts/make_example_video.py` (run once; the output is committed). It is what a camera
would have seen of the rope of `../scene.json`, made so that the estimator's own discretisation is
not the one that made the video (no inverse crime):

- the rope mesh (`../rope.obj`) filled at {FACTOR}x the estimator's resolution per axis (fill resolution
  {fine_fill}, {len(job.particles)} particles, an independent lattice) and simulated by the MPM on a grid
  of {fine_grid} cells ({substeps} substeps per frame) with the **ground-truth material of scene.json:
  E = {mat['E']:g} Pa, nu = {mat['nu']}, density = {mat['density']} kg/m^3**, grasped at the +x end and moved
  along scene.json's `trajectory` ({job.num_frames} frames at {job.fps:g} fps, the first one the rest state);
- {len(gauss['positions'])} flat Gaussians on the mesh surface with a striped colour pattern in rest
  coordinates (`gaussians.npz`: positions [V,3] m, rotations [V,4] w,x,y,z, scales [V,3] m (std),
  colors [V,3] linear RGB, opacities [V]; world metres, Blender axes +Z up), carried by the fine
  particles (covariances F Sigma F^T), rendered at 2x supersampling, box-filtered to {W}x{H} px,
  plus Gaussian pixel noise of std 0.005 over a plain background;
- `frames/frame_XXXX.png`: the images; `masks/mask_XXXX.png`: the silhouettes (alpha > 0.5);
- `tracked_trajectory.json`: T0, the grasp centroid as a tracker reports it (keyframes every 2
  frames, late by 1 frame, drifting 0.01 m/s, 2 mm of noise), times in s, positions in m;
- `camera.json`: the camera (K in px, world_to_camera in OpenCV axes), scene.json's camera.

The material used here (scene.json `material`, E = {mat['E']:g} Pa) is the truth that
`physinteract example` checks its estimate against.
"""
    contract.atomic_write_text(out / "README.md", readme)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"make_example_video: wrote {out} ({size / 1e6:.2f} MB) in {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
