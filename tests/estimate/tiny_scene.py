"""A tiny grasped-beam scene for estimation tests, with a ground truth made independently.

A soft beam (0.16 x 0.04 x 0.04 m) is grasped at its +x end and moved; gravity makes it sag
and swing. The "video" comes from a finer simulation (about 3x the particles, a 1.5x finer grid,
its own substeps) whose particles carry the object's Gaussians, rendered at 2x supersampling and
box-filtered to the camera's pixels with mild noise: not the discretisation or the pixel sampling
the estimator uses, so recovering E is not an inverse crime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physinteract import contract

SIZE = (0.16, 0.04, 0.04)
CENTER = np.array([0.0, 0.0, 0.30])
FPS = 24.0


def _camera(width: int, height: int, frames: int) -> contract.Camera:
    from physinteract.example import look_at_world_to_camera

    w2c = look_at_world_to_camera(np.array([0.02, -0.42, 0.33]), CENTER + np.array([0.02, 0.0, -0.01]))
    f = 1.15 * width
    K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    return contract.Camera(width, height, K, np.tile(w2c, (frames, 1, 1)))


def _gaussians(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surface Gaussians of the beam: means, quats, scales, colours (stripes along x), opacities."""
    from physinteract.geometry import shapes

    v, f = shapes.box(SIZE)
    cloud = shapes.surface_gaussians(v + CENTER, f, spacing=0.007, seed=seed, thickness=0.3, opacity=0.95)
    x = cloud.means.astype(np.float64)
    stripe = (np.floor((x[:, 0] - CENTER[0]) / 0.02) % 2).astype(bool)
    colors = np.where(stripe[:, None], [0.85, 0.35, 0.15], [0.2, 0.45, 0.8])
    colors = colors * (0.85 + 0.15 * ((x[:, 2] - CENTER[2]) / SIZE[2] + 0.5))[:, None]
    return x, cloud.rotations.astype(np.float64), np.exp(cloud.log_scales.astype(np.float64)), np.clip(colors, 0, 1), \
        np.full(len(x), 0.95)


def _particles(resolution: int):
    from physinteract.geometry import FillConfig, fill_mesh, shapes

    v, f = shapes.box(SIZE)
    return fill_mesh(v + CENTER, f, FillConfig(resolution=resolution, particles_per_cell=8))


def trajectory(frames: int, novel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Keyframe times (s) and the grasp-centroid offsets (m) of the observed or a novel motion."""
    t = np.linspace(0.0, frames / FPS, 5)
    s = t / t[-1]
    if novel:
        off = np.stack([-0.02 * s, 0.0 * s, -0.05 * np.sin(np.pi * s)], 1)
    else:
        off = np.stack([0.03 * np.sin(np.pi * s), 0.0 * s, 0.04 * s], 1)
    return t, off


def path_error(times: np.ndarray, keys: np.ndarray, true_times: np.ndarray, true_keys: np.ndarray,
               ray: np.ndarray | None = None, along: bool = False) -> float:
    """RMS (m) over the frames of the error of the hand's displacement p(t) - p(0) along the spline through
    (``times``, ``keys``) against the one through (``true_times``, ``true_keys``); with a unit ``ray``, its part
    off the ray (or along it, ``along``)."""
    from physinteract.mpm import spline

    t = np.arange(0.0, float(true_times[-1]) + 1e-9, 1.0 / FPS)
    p, q = spline.evaluate(times, keys, t)[0], spline.evaluate(true_times, true_keys, t)[0]
    d = (p - p[0]) - (q - q[0])
    if ray is not None:
        d = np.outer(d @ ray, ray) if along else d - np.outer(d @ ray, ray)
    return float(np.sqrt((d**2).sum(1).mean()))


def E_field(x: np.ndarray, E: float, ratio: float) -> np.ndarray:
    """Young's modulus (Pa) at rest positions [N, 3]: E on the free half (x < 0), ratio * E on the grasped half."""
    return np.where(np.asarray(x)[:, 0] < CENTER[0], E, E * ratio)


def simulate_gaussians(particles, E: np.ndarray, nu: float, density: float, times: np.ndarray, keys: np.ndarray,
                       frames: int, grid: int, means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a filled beam grasped at +x and return the Gaussians' positions [F+1, G, 3] and F [F+1, G, 3, 3]."""
    from physinteract.benchmark.scenes import carry, simulate
    from physinteract.mpm import Control, SolverConfig, make_model

    x = particles.positions
    contact = np.flatnonzero(x[:, 0] > CENTER[0] + 0.06)
    model = make_model(x, particles.volume, density, E, nu, SolverConfig(grid_resolution=grid))
    ctrl = Control("point_adherent", "velocity", contact, times, x[contact].mean(0) + keys)
    xs, Fs, _ = simulate(model, ctrl, 1.0 / FPS, frames)
    return carry(means, x, xs, Fs)


def render_video(gx: np.ndarray, gF: np.ndarray, quats: np.ndarray, scales: np.ndarray, colors: np.ndarray,
                 opacities: np.ndarray, camera: contract.Camera, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames [F+1, H, W, 3] and masks [F+1, H, W] rendered at 2x and box-filtered down, plus noise (float64)."""
    from physinteract.benchmark.scenes import render_frames

    gauss = {"rotations": quats, "scales": scales, "colors": colors, "opacities": opacities}
    rgb, alpha = render_frames(gx, gF, gauss, camera.K, camera.world_to_camera, camera.width, camera.height, supersample=2,
                               noise=noise, rng=np.random.default_rng(seed), background=(0.92, 0.92, 0.9), double=True)
    return rgb, (alpha > 0.5).astype(np.float64)


def build(folder: Path, E_true: float = 1.2e4, E_guess: float = 6.0e4, nu: float = 0.3, density: float = 500.0,
          frames: int = 10, width: int = 112, height: int = 72, resolution: int = 16, grid: int = 24,
          noise: float = 0.005, traj_error: float = 0.004, ratio: float = 1.0) -> dict:
    """Write the estimator's job (with its video) to ``folder`` and return the ground truth."""
    from physinteract.imageio import write_png

    means, quats, scales, colors, opac = _gaussians()
    times, off = trajectory(frames)
    fine = _particles(int(round(resolution * 1.5)))
    E_fine = E_field(fine.positions, E_true, ratio)
    gx, gF = simulate_gaussians(fine, E_fine, nu, density, times, off, frames, int(round(grid * 1.5)), means)
    cam = _camera(width, height, frames + 1)
    rgb, mask = render_video(gx, gF, quats, scales, colors, opac, cam, noise, seed=1)
    folder.mkdir(parents=True, exist_ok=True)
    paths, mpaths = [], []
    for i in range(frames + 1):
        write_png(folder / "video" / f"frame_{i:03d}.png", rgb[i])
        write_png(folder / "video" / f"mask_{i:03d}.png", mask[i])
        paths.append(f"video/frame_{i:03d}.png")
        mpaths.append(f"video/mask_{i:03d}.png")
    coarse = _particles(resolution)
    x = coarse.positions
    contact = np.flatnonzero(x[:, 0] > CENTER[0] + 0.06)
    rng = np.random.default_rng(3)
    # a tracker's error: a lag of a fraction of the motion, plus noise
    T0 = x[contact].mean(0) + 0.85 * off + traj_error * rng.normal(size=off.shape)
    T0[0] = x[contact].mean(0)
    n = len(x)
    job = contract.Job(
        particles=x, labels=coarse.labels, volume=coarse.volume, E=np.full(n, E_guess), nu=np.full(n, nu),
        density=np.full(n, density), contact=contact.astype(np.int64), trajectory_times=times, trajectory=T0,
        interaction=contract.Interaction(type="point_adherent"), fps=FPS, frame_start=1, frame_end=frames + 1,
        solver=contract.SolverSettings(grid_resolution=grid, arch="cpu", precision="f32", iterations=20),
        camera=cam, video=contract.Video(paths, mpaths),
        point_sets=[contract.PointSet("gaussians", means, rest_rotations=quats, rest_scales=scales, colors=colors,
                                      opacities=opac)],
        name="tiny-beam",
    )
    contract.write_job(job, folder)
    return {"E": E_field(x, E_true, ratio), "nu": nu, "trajectory": x[contact].mean(0) + off, "times": times}
