"""Pictures and a short markdown report of a bake: what a person looks at first.

The frames are drawn with the project's Gaussian renderer: each surface
particle is an isotropic Gaussian whose standard deviation is half the
particle spacing, seen through the job's camera.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract
from physinteract.imageio import write_png


def particle_colors(rest: np.ndarray) -> np.ndarray:
    """A colour per particle from its rest position along the longest axis, so motion reads at a glance. [N, 3]."""
    span = rest.max(0) - rest.min(0)
    axis = int(np.argmax(span))
    t = (rest[:, axis] - rest[:, axis].min()) / max(span[axis], 1e-12)
    warm, cool = np.array([0.95, 0.55, 0.2]), np.array([0.25, 0.45, 0.9])
    return (1 - t)[:, None] * cool + t[:, None] * warm


def render_particles(positions: np.ndarray, colors: np.ndarray, sigma: float, job: contract.Job, frame_index: int) -> np.ndarray:
    """Render particles [N, 3] (m, world) as isotropic Gaussians of std ``sigma`` (m) with the job's camera.
    Returns an [H, W, 3] image in [0, 1] over a light grey background."""
    import torch

    from physinteract.render import Camera, GaussianBatch, render

    if job.camera is None:
        raise ValueError("report: the job has no camera to render with")
    n = len(positions)
    g = GaussianBatch(
        means=torch.as_tensor(positions, dtype=torch.float32),
        colors=torch.as_tensor(colors, dtype=torch.float32),
        opacities=torch.full((n,), 0.9),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        scales=torch.full((n, 3), float(sigma)),
    )
    cam = Camera.from_contract(job.camera, frame_index)
    with torch.no_grad():
        out = render(g, cam, background=torch.tensor([0.93, 0.93, 0.93]))
    return out.rgb.numpy()


def write_bake_report(out: Path, job: contract.Job, cache: Path, summary: dict[str, Any], max_pictures: int = 6) -> Path:
    """Render a few frames of ``cache`` to PNG under ``out/pictures`` and write ``out/report.md``."""
    frames = contract.completed_frames(cache)
    if not frames:
        raise ValueError(f"{cache}: no completed frame to report")
    surface = job.labels == contract.SURFACE
    spacing = float(np.cbrt(np.median(job.volume)))
    colors = particle_colors(job.particles[surface])
    picks = sorted(set(np.linspace(0, len(frames) - 1, min(max_pictures, len(frames))).round().astype(int)))
    pics = []
    for i in picks:
        f = frames[i]
        pos = contract.read_frame(cache, f)["particles.positions"][surface]
        img = render_particles(pos, colors, 0.5 * spacing, job, f - job.frame_start)
        path = out / "pictures" / f"frame_{f:04d}.png"
        write_png(path, img)
        pics.append((f, path))
    lines = [
        f"# PhysInteract report: {job.name}",
        "",
        "| quantity | value |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in summary.items()]
    lines += ["", "## Frames", ""]
    lines += [f"Frame {f}:\n\n![frame {f}]({p.relative_to(out).as_posix()})\n" for f, p in pics]
    report = out / "report.md"
    contract.atomic_write_text(report, "\n".join(lines) + "\n")
    return report
