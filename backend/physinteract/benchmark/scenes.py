"""Synthetic benchmark scenes with a known material field and interaction (issue 5, the paper's Tables 1-3).

Each scene is a soft object built as a union of simple solids (a signed distance function,
SDF), a ground-truth Young's modulus E(X) (Pa) of the rest position X (several scenes have
stiffness regions 2-4x apart), a Poisson's ratio and density, and an interaction of the
contract (point_adherent grasp, point_non_adherent poke, surface_non_adherent bounce).
Material and motion keep each ground truth elastic: at most 0.2 % of its particles come apart
from a rest neighbour (``mpm.resolution.Tearing``; scene.json's ``gt_torn_share``). Softer, several
scenes tore at the grip or under their own weight, and the video showed MPM's numerical fracture.

To avoid an inverse crime the video is made by a finer simulation than the estimator runs:
the ground-truth (GT) particles are filled independently at ``gt_factor`` x the estimator's
resolution, on a ``gt_factor`` x finer grid, with their own CFL substeps; the object's surface
Gaussians (a colour pattern in rest coordinates) are carried by the GT particles
(``interpolate_from_particles``; covariances F Sigma F^T) and rendered at 2x supersampling,
box-downsampled like a camera integrating over its pixels, plus mild seeded noise.

The estimator's input is a contract job folder (``job.json``) whose particles are filled at the
estimator's resolution with a homogeneous initial guess of E and nu, the contact set, a trajectory
T0 perturbed the way a tracker errs (noise, a lag of about a frame, a slow drift), the camera, the
video (PNG frames and masks) and the Gaussians as a point set. Beside it, ``gt.npz`` (plain arrays)
holds the truth: E/nu at the estimator's particles, the true and a novel trajectory, and the GT
Gaussian centres over the novel interaction's frames. Units SI, world frame Blender's (+Z up).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physinteract import contract
from physinteract.geometry.fill import Particles
from physinteract.geometry.shapes import SDF, capsule, ellipsoid, fill_sdf, rounded_box, sphere, union
from physinteract.imageio import write_png

GT_FILE = "gt.npz"
SCENE_FILE = "scene.json"
BACKGROUND = (0.12, 0.12, 0.14)  # linear RGB behind the object in the videos (job.metadata["background"])


# --------------------------------------------------------------------------- scene description


@dataclass
class SceneSpec:
    """One benchmark scene (SI units, world frame, +Z up).

    sdf / lo / hi: the object's solid and a box holding it (m).
    E: E(X) [P] Pa of rest positions [P, 3]; regions: region label [P] of rest positions (0 = one region).
    nu, density: Poisson's ratio and kg/m^3 (homogeneous).
    interaction: a contract interaction type. contact: rest positions -> bool [P] (the grasped or touched part).
    times_frac / path: keyframes at ``times_frac`` x duration; ``path`` [K, 3] is the displacement of the contact
        centroid (point_adherent) or the absolute collider centre / plane point (non-adherent), m.
    novel_path: the same for the novel interaction (same keyframe times).
    collider_radius: m (poke sphere).  friction: collider Coulomb coefficient.  ground: solver ground or None.
    domain: (lo, hi) simulation box (m).  grid_resolution: estimator cells along the longest side.
    particles: the estimator's particle count to aim for.  view: direction from the object to the camera.
    colors: two linear RGB colours of the stripe pattern.  stripe_axis: 0/1/2, the axis the stripes run across.
    """

    name: str
    description: str
    sdf: SDF
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    E: Callable[[np.ndarray], np.ndarray]
    regions: Callable[[np.ndarray], np.ndarray]
    nu: float
    density: float
    interaction: str
    contact: Callable[[np.ndarray], np.ndarray]
    times_frac: tuple[float, ...]
    path: np.ndarray
    novel_path: np.ndarray
    domain: tuple[tuple[float, float, float], tuple[float, float, float]]
    grid_resolution: int = 36
    particles: int = 1800
    collider_radius: float = 0.03
    friction: float = 0.3
    ground: contract.Ground | None = None
    view: tuple[float, float, float] = (0.35, -1.0, 0.45)
    colors: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.9, 0.6, 0.25), (0.35, 0.2, 0.1))
    stripe_axis: int = 0


def _homogeneous(E: float) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    return (lambda X: np.full(len(X), E)), (lambda X: np.zeros(len(X), np.int64))


def _two_regions(inside: Callable[[np.ndarray], np.ndarray], E_out: float, E_in: float):
    def E(X: np.ndarray) -> np.ndarray:
        return np.where(inside(X), E_in, E_out)

    def regions(X: np.ndarray) -> np.ndarray:
        return inside(X).astype(np.int64)

    return E, regions


def _path(*rows: tuple[float, float, float]) -> np.ndarray:
    return np.asarray(rows, np.float64)


def hemp_rope() -> SceneSpec:
    """A 30 cm rope held at both ends by two hands moving together: it sags between them and swings as they move.

    Held at one end only, the rope folded over the grip under its own weight (a cantilever of rubber
    at 20 kPa strains about 200 % at the root) and tore there in the ground truth's simulation; held
    at both ends it strains about a quarter of that."""
    E, regions = _homogeneous(2.0e4)
    z = 0.30
    return SceneSpec(
        "hemp_rope", "rope held at both ends, lifted and swung (homogeneous)",
        capsule((-0.15, 0, z), (0.15, 0, z), 0.018), (-0.17, -0.02, z - 0.02), (0.17, 0.02, z + 0.02),
        E, regions, nu=0.3, density=500.0, interaction="point_adherent",
        contact=lambda X: np.abs(X[:, 0]) > 0.12,
        times_frac=(0.0, 0.3, 0.6, 1.0),
        path=_path((0, 0, 0), (0, 0.03, 0.04), (0, 0.07, 0.05), (0, 0.04, 0.03)),
        novel_path=_path((0, 0, 0), (-0.03, -0.04, 0.02), (-0.05, -0.02, 0.06), (-0.02, 0.03, 0.03)),
        domain=((-0.24, -0.16, 0.0), (0.24, 0.2, 0.42)), particles=1500,
        colors=((0.85, 0.7, 0.4), (0.45, 0.33, 0.15)),
    )


def bow_tie() -> SceneSpec:
    """A bow tie held at its knot: the soft left wing droops more than the stiff right wing; shaken up and down."""
    wings = union(ellipsoid((-0.062, 0, 0.3), (0.062, 0.03, 0.048)), ellipsoid((0.062, 0, 0.3), (0.062, 0.03, 0.048)))
    knot = rounded_box((0, 0, 0.3), (0.02, 0.03, 0.027), 0.006)
    E, regions = _two_regions(lambda X: X[:, 0] > 0.0, 3.0e4, 9.0e4)
    return SceneSpec(
        "bow_tie", "bow tie grasped at the knot and shaken; wings 3x apart in stiffness",
        union(wings, knot), (-0.15, -0.035, 0.25), (0.15, 0.035, 0.35),
        E, regions, nu=0.3, density=1000.0, interaction="point_adherent",
        contact=lambda X: np.abs(X[:, 0]) < 0.03,
        times_frac=(0.0, 0.25, 0.5, 0.75, 1.0),
        path=_path((0, 0, 0), (0, 0, 0.025), (0, 0.015, -0.005), (0, 0, 0.02), (0, 0, 0.0)),
        novel_path=_path((0, 0, 0), (0.02, 0, 0.015), (-0.02, 0, 0.02), (0.015, 0, -0.01), (0, 0, 0.01)),
        domain=((-0.22, -0.12, 0.14), (0.22, 0.14, 0.4)), particles=1800,
        colors=((0.75, 0.15, 0.2), (0.95, 0.85, 0.8)),
    )


def tow_rope() -> SceneSpec:
    """A thick rope lying on the ground, one end grasped and pulled up and along; its two halves differ 3x in stiffness."""
    z = 0.026
    E, regions = _two_regions(lambda X: X[:, 0] > 0.0, 1.2e4, 3.6e4)
    return SceneSpec(
        "tow_rope", "rope on the ground, one end lifted and dragged; halves 3x apart in stiffness",
        capsule((-0.18, 0, z), (0.18, 0, z), 0.024), (-0.21, -0.03, 0.0), (0.21, 0.03, 0.052),
        E, regions, nu=0.3, density=800.0, interaction="point_adherent",
        contact=lambda X: X[:, 0] > 0.15,
        times_frac=(0.0, 0.35, 0.7, 1.0),
        path=_path((0, 0, 0), (0.01, 0.0, 0.08), (0.04, 0.03, 0.14), (0.06, 0.05, 0.15)),
        novel_path=_path((0, 0, 0), (0.0, -0.04, 0.06), (-0.02, -0.06, 0.12), (-0.03, -0.03, 0.16)),
        domain=((-0.27, -0.12, -0.03), (0.3, 0.14, 0.26)), particles=1800,
        ground=contract.Ground(height=0.0, friction=0.4, mode="separate"),
        colors=((0.25, 0.45, 0.8), (0.9, 0.9, 0.85)),
    )


def glove() -> SceneSpec:
    """A glove held at the wrist, palm horizontal: the soft fingers (0.4 of the palm's stiffness) droop and wave.

    Rubber-glove stiffness (30 and 75 kPa): at 10 and 25 kPa the glove folded onto itself and the
    fingers tore off in the ground truth's simulation, which no material field can fit."""
    z = 0.3
    palm = rounded_box((0.0, 0, z), (0.055, 0.05, 0.018), 0.012)
    fingers = [capsule((0.045, y, z), (0.045 + L, y, z), 0.0135)
               for y, L in ((-0.036, 0.065), (-0.012, 0.08), (0.012, 0.075), (0.036, 0.06))]
    thumb = capsule((0.0, 0.05, z), (0.035, 0.085, z), 0.0145)
    E, regions = _two_regions(lambda X: X[:, 0] < 0.045, 6.0e4, 1.5e5)
    return SceneSpec(
        "glove", "glove held at the wrist and waved; palm 2.5x stiffer than the fingers",
        union(palm, thumb, *fingers), (-0.07, -0.065, z - 0.03), (0.14, 0.1, z + 0.03),
        E, regions, nu=0.3, density=1200.0, interaction="point_adherent",
        contact=lambda X: X[:, 0] < -0.02,
        times_frac=(0.0, 0.3, 0.65, 1.0),
        path=_path((0, 0, 0), (0, 0.0, 0.04), (0, 0.03, 0.02), (0, 0.0, 0.05)),
        novel_path=_path((0, 0, 0), (0, -0.03, 0.02), (0.02, 0, 0.05), (0, 0.02, 0.0)),
        domain=((-0.14, -0.12, 0.12), (0.24, 0.16, 0.4)), particles=1800,
        colors=((0.3, 0.6, 0.35), (0.9, 0.85, 0.4)), stripe_axis=1,
    )


def balloon_dog() -> SceneSpec:
    """A balloon dog lifted by its head: body, legs and tail swing and stretch."""
    z = 0.3
    parts = [
        ellipsoid((0, 0, z), (0.07, 0.022, 0.022)),  # body
        ellipsoid((0.075, 0, z + 0.045), (0.03, 0.027, 0.06)),  # neck, sunk into the body and the head
        ellipsoid((0.1, 0, z + 0.09), (0.035, 0.02, 0.02)),  # head
        ellipsoid((-0.08, 0, z + 0.03), (0.02, 0.016, 0.04)),  # tail, sunk into the body's end
    ]
    parts += [ellipsoid((x, y, z - 0.038), (0.019, 0.019, 0.042)) for x in (-0.05, 0.05) for y in (-0.014, 0.014)]
    E, regions = _homogeneous(3.0e4)
    return SceneSpec(
        "balloon_dog", "balloon dog lifted by its head and swung (homogeneous)",
        union(*parts), (-0.12, -0.05, z - 0.09), (0.14, 0.05, z + 0.115),
        E, regions, nu=0.3, density=400.0, interaction="point_adherent",
        contact=lambda X: (X[:, 2] > z + 0.065) & (X[:, 0] > 0.03),  # the head, not the tail's tip
        times_frac=(0.0, 0.35, 0.7, 1.0),
        path=_path((0, 0, 0), (0.0, 0.03, 0.05), (0.03, 0.06, 0.04), (0.02, 0.03, 0.06)),
        novel_path=_path((0, 0, 0), (-0.04, 0.0, 0.03), (-0.06, -0.03, 0.05), (-0.03, -0.02, 0.02)),
        domain=((-0.26, -0.22, -0.04), (0.28, 0.26, 0.5)), particles=1800,
        colors=((0.95, 0.45, 0.6), (0.7, 0.2, 0.45)),
    )


def bouncing_ball() -> SceneSpec:
    """A soft ball dropped from 4 cm onto the ground plane: it squashes and bounces (surface non-adherent)."""
    r = 0.06
    zc = r + 0.04
    E, regions = _homogeneous(2.0e4)
    plane = _path((0, 0, 0), (0, 0, 0), (0, 0, 0))
    novel = _path((0, 0, 0), (0, 0, 0.02), (0, 0, 0.045))  # the plane rises into the ball like a paddle
    return SceneSpec(
        "bouncing_ball", "ball dropped onto the ground plane (surface non-adherent)",
        sphere((0, 0, zc), r), (-r, -r, zc - r), (r, r, zc + r),
        E, regions, nu=0.3, density=700.0, interaction="surface_non_adherent",
        contact=lambda X: X[:, 2] < zc - 0.5 * r,
        times_frac=(0.0, 0.5, 1.0), path=plane, novel_path=novel,
        domain=((-0.12, -0.12, -0.04), (0.12, 0.12, 0.36)), particles=1500, friction=0.4,
        view=(0.3, -1.0, 0.25), colors=((0.95, 0.8, 0.2), (0.2, 0.4, 0.85)), stripe_axis=2,
    )


def balloon() -> SceneSpec:
    """A balloon resting on the ground, poked from above by a 3 cm sphere: it squashes and recovers."""
    rad = (0.07, 0.07, 0.09)
    zc = rad[2] + 0.002
    E, regions = _homogeneous(1.0e4)
    top = zc + rad[2]
    R = 0.03
    start = (0.0, 0.0, top + R + 0.01)
    poke = _path(start, (0.0, 0.0, top + R - 0.035), (0.0, 0.0, top + R - 0.05), (0.0, 0.0, top + R + 0.01))
    novel = _path((0.03, 0.0, top + R + 0.0), (0.03, 0.0, top + R - 0.06), (0.02, 0.0, top + R - 0.03), (0.0, 0.0, top + R))
    return SceneSpec(
        "balloon", "balloon on the ground poked from above (point non-adherent, homogeneous)",
        ellipsoid((0, 0, zc), rad), (-rad[0], -rad[1], zc - rad[2]), (rad[0], rad[1], zc + rad[2]),
        E, regions, nu=0.3, density=500.0, interaction="point_non_adherent",
        contact=lambda X: X[:, 2] > top - 0.03,
        times_frac=(0.0, 0.4, 0.7, 1.0), path=poke, novel_path=novel,
        domain=((-0.14, -0.14, -0.03), (0.14, 0.14, 0.37)), particles=1800, collider_radius=R, friction=0.2,
        ground=contract.Ground(height=0.0, friction=0.5, mode="separate"),
        colors=((0.85, 0.2, 0.2), (0.95, 0.95, 0.95)), stripe_axis=2,
    )


def flower() -> SceneSpec:
    """A flower held upside down at the end of its stem and shaken: the stem (2.5x stiffer) bends, the blossom swings and wobbles.

    Held upright, the soft stem buckled under the blossom (its weight is about 100x the Euler load of
    a clamped rubber stem 1.2 cm thick and 20 cm long) and tore at the grip in the ground truth's
    simulation; hanging, the stem is in tension."""
    stem = capsule((0, 0, 0.34), (0, 0, 0.14), 0.012)
    blossom = union(sphere((0, 0, 0.12), 0.028), *[
        ellipsoid((0.04 * math.cos(a), 0.04 * math.sin(a), 0.12), (0.03 + 0.02 * abs(math.cos(a)), 0.03 + 0.02 * abs(math.sin(a)), 0.01))
        for a in (0.0, math.pi / 2, math.pi, 3 * math.pi / 2)
    ])
    E, regions = _two_regions(lambda X: X[:, 2] > 0.13, 2.0e4, 5.0e4)  # the stem and the blossom's neck
    return SceneSpec(
        "flower", "flower held upside down at the stem and shaken; stem 2.5x stiffer than the blossom",
        union(stem, blossom), (-0.09, -0.09, 0.09), (0.09, 0.09, 0.352),
        E, regions, nu=0.3, density=900.0, interaction="point_adherent",
        contact=lambda X: X[:, 2] > 0.31,
        times_frac=(0.0, 0.3, 0.6, 1.0),
        path=_path((0, 0, 0), (0.05, 0, 0.01), (-0.02, 0.02, 0.02), (0.03, 0.0, 0.0)),
        novel_path=_path((0, 0, 0), (0, 0.05, 0.0), (0.02, -0.03, 0.02), (0, 0.02, 0.0)),
        domain=((-0.2, -0.17, 0.0), (0.22, 0.19, 0.42)), particles=1500,
        view=(0.4, -1.0, 0.3), colors=((0.9, 0.3, 0.7), (0.3, 0.7, 0.3)), stripe_axis=2,
    )


SCENES: dict[str, Callable[[], SceneSpec]] = {
    "hemp_rope": hemp_rope,
    "bow_tie": bow_tie,
    "tow_rope": tow_rope,
    "glove": glove,
    "balloon_dog": balloon_dog,
    "bouncing_ball": bouncing_ball,
    "balloon": balloon,
    "flower": flower,
}


# --------------------------------------------------------------------------- building


@dataclass
class BuildConfig:
    """How a scene is made.

    scale: multiplies each scene's particle count (quick tests use ~0.15); the grid follows the cube
        root. 2 puts about 4 cells across the thinnest parts (ropes, stems, fingers): at 2-3 cells
        the coarse MPM bends and sags measurably unlike the finer ground truth (the loss minimum of
        the true field sat at 1.8x the true E for tow_rope at scale 1, at 1.1x at scale 2).
    frames: simulated frames after the rest frame (video has frames + 1 images).
    fps: frames per second.  gt_factor: GT resolution / estimator resolution (particles per axis and grid).
    width / height: image size (px); supersample: render at this factor, then box-downsample.
    noise: std of the Gaussian pixel noise added to the video.  gaussians: surface Gaussians to aim for.
    guess_factor: the initial E guess is the GT mean times guess_factor (or divided by it).
    guess_above: None = alternate above/below by the scene's index in SCENES.
    lag_frames / drift / track_noise: T0's tracker errors (frames; m/s; m std per keyframe).
    seed: random seed (lattice offsets, pixel noise, tracker errors).
    """

    scale: float = 2.0
    frames: int = 14
    fps: float = 24.0
    gt_factor: float = 1.25
    width: int = 160
    height: int = 120
    supersample: int = 2
    noise: float = 0.005
    gaussians: int = 4000
    guess_factor: float = 5.0
    guess_above: bool | None = None
    lag_frames: float = 1.0
    drift: float = 0.01
    track_noise: float = 0.002
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def quick() -> BuildConfig:
        """A tiny version for tests: few particles, coarse grid, 4 frames, 64x48 px."""
        return BuildConfig(scale=0.15, frames=4, width=64, height=48, gaussians=600)

    def settings(self) -> dict[str, Any]:
        """The fields that decide what a build makes (all but ``extra``): written to scene.json, compared to reuse a cache."""
        return {k: v for k, v in self.__dict__.items() if k != "extra"}


def solid_volume(sdf: SDF, lo: np.ndarray, hi: np.ndarray) -> float:
    h = float(np.max(np.asarray(hi) - np.asarray(lo))) / 80.0
    return len(fill_sdf(sdf, lo, hi, h, np.full(3, 0.5))) * h**3


def _gradient(sdf: SDF, p: np.ndarray, eps: float) -> np.ndarray:
    g = np.stack([sdf(p + eps * e) - sdf(p - eps * e) for e in np.eye(3)], -1)
    return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)


def surface_gaussians(spec: SceneSpec, count: int, seed: int) -> dict[str, np.ndarray]:
    """Flat Gaussians on the solid's surface with a colour pattern in rest coordinates.

    Returns positions [V, 3] m, rotations [V, 4] (w, x, y, z), scales [V, 3] m (std), colors [V, 3], opacities [V].
    The pattern: stripes across ``spec.stripe_axis`` (period ~ 1/6 of the object's length) in the two colours,
    with brightness patches from a coarse 3D checker, so motion inside the silhouette shows.
    """
    from physinteract.geometry.deform import quaternion_from_matrix

    lo, hi = np.asarray(spec.lo), np.asarray(spec.hi)
    size = float(np.max(hi - lo))
    rng = np.random.default_rng(seed)

    def shell(s: float) -> np.ndarray:
        return fill_sdf(lambda p: np.abs(spec.sdf(p)) - 0.5 * s, lo, hi, s, rng.random(3)).positions

    s = size / 40.0
    for _ in range(3):  # pick the lattice spacing so the shell holds about ``count`` points
        found = len(shell(s))
        s = 0.5 * s if found == 0 else s * math.sqrt(found / count)
    pts = shell(s)
    pts = pts + rng.normal(scale=0.15 * s, size=pts.shape)
    for _ in range(2):  # project onto the surface
        n = _gradient(spec.sdf, pts, 1e-4)
        pts = pts - spec.sdf(pts)[:, None] * n
    n = _gradient(spec.sdf, pts, 1e-4)
    helper = np.where(np.abs(n[:, [0]]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    rot = quaternion_from_matrix(np.stack([t1, t2, n], axis=2))
    v = len(pts)
    scales = np.tile([0.75 * s, 0.75 * s, 0.15 * s], (v, 1))
    colors = pattern_colors(pts, lo, hi, spec.stripe_axis, spec.colors)
    return {"positions": pts, "rotations": rot, "scales": scales, "colors": colors, "opacities": np.full(v, 0.95)}


def pattern_colors(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int, colors: tuple[Any, Any],
                   checker: float = 4.0, contrast: float = 0.35) -> np.ndarray:
    """Linear-RGB colours [P] x 3 of rest points x [P, 3] (m) in the object's box lo..hi: six stripes
    across ``axis`` in the two ``colors``, brightened by ``contrast`` on a 3D checker of cells
    size / ``checker`` (size = the box's longest side), so motion inside the silhouette shows."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    extent = max(float(hi[axis] - lo[axis]), 1e-6)
    size = float(np.max(hi - lo))
    stripe = (np.floor((x[:, axis] - lo[axis]) / (extent / 6.0)) % 2).astype(np.float64)
    c1, c2 = np.asarray(colors[0], np.float64), np.asarray(colors[1], np.float64)
    col = (1 - stripe)[:, None] * c1 + stripe[:, None] * c2
    cell = np.floor((x - lo) / (size / checker)).astype(np.int64).sum(1) % 2
    return np.clip(col * (0.8 + contrast * cell)[:, None], 0.0, 1.0)


def scene_domain(spec: SceneSpec, resolution: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The simulation box: ``spec.domain``, widened where a coarse grid leaves the object under 4 cells from its side."""
    lo, hi = np.asarray(spec.domain[0], np.float64), np.asarray(spec.domain[1], np.float64)
    for _ in range(3):
        dx = float(np.max(hi - lo)) / resolution
        lo = np.minimum(lo, np.asarray(spec.lo) - 4 * dx)
        hi = np.maximum(hi, np.asarray(spec.hi) + 4 * dx)
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


def _solver_config(spec: SceneSpec, resolution: int, domain_resolution: int | None = None) -> Any:
    """SolverConfig at ``resolution`` over the scene's box (sized for ``domain_resolution``, default the same)."""
    from physinteract.mpm.config import GroundConfig, SolverConfig

    g = spec.ground
    ground = GroundConfig() if g is None else GroundConfig(height=g.height, friction=g.friction, mode=g.mode)
    lo, hi = scene_domain(spec, domain_resolution or resolution)
    return SolverConfig(grid_resolution=resolution, domain_min=lo, domain_max=hi, ground=ground, arch="cpu")  # type: ignore[arg-type]


def contact_share(region: Callable[[np.ndarray], np.ndarray], positions: np.ndarray, spacing: float, samples: int = 4) -> np.ndarray:
    """The share [P] of each particle's cube (side ``spacing``, m, centred on ``positions`` [P, 3]) that lies
    in ``region`` (rest positions -> bool), from samples^3 points spread evenly over the cube."""
    u = ((np.arange(samples) + 0.5) / samples - 0.5) * spacing
    offsets = np.stack(np.meshgrid(u, u, u, indexing="ij"), -1).reshape(-1, 3)
    x = np.asarray(positions, np.float64)
    return np.mean([np.asarray(region(x + d), bool) for d in offsets], axis=0)


def _control(spec: SceneSpec, contact: np.ndarray, x0: np.ndarray, times: np.ndarray, path: np.ndarray,
             grip: np.ndarray | None = None) -> Any:
    """The Control of the interaction: positions of the contact centroid (grasp) or of the collider;
    ``grip`` [K] the share of each contact particle a grasp holds (None: all of it)."""
    from physinteract.mpm.model import Control

    values = x0[contact].mean(0) + path if spec.interaction == "point_adherent" else path
    collider = {"point_adherent": "none", "point_non_adherent": "sphere", "surface_non_adherent": "plane"}[spec.interaction]
    return Control(interaction=spec.interaction, drive="velocity", contact=contact, grip=grip, times=times, values=values,
                   collider=collider, radius=spec.collider_radius, normal=(0.0, 0.0, 1.0), friction=spec.friction)


def simulate(model: Any, control: Any, frame_dt: float, frames: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Run the MPM; returns positions [frames + 1, N, 3], deformation gradients [frames + 1, N, 3, 3], substeps per frame."""
    from physinteract.mpm.rollout import Rollout

    sim = Rollout(model, control, frame_dt=frame_dt, num_frames=frames)
    try:
        xs = sim.forward()
    finally:
        sim.solver.release()  # the suite simulates many scenes in one process
    return xs, np.stack([s.F for s in sim.checkpoints]), sim.substeps[0]


def carry(query: np.ndarray, rest: np.ndarray, xs: np.ndarray, Fs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points ``query`` [V, 3] (m, at rest) carried by particles with rest positions ``rest`` [N, 3], positions
    xs [F, N, 3] and deformation gradients Fs [F, N, 3, 3]: positions [F, V, 3] and F [F, V, 3, 3] of the points."""
    from physinteract.geometry.deform import interpolate_from_particles

    moved = [interpolate_from_particles(query, rest, xs[f], Fs[f]) for f in range(len(xs))]
    return np.stack([m[0] for m in moved]), np.stack([m[1] for m in moved])


def look_at_camera(points: np.ndarray, view: np.ndarray, width: int, height: int, fov_deg: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """K [3, 3] and world->camera [4, 4] (OpenCV) of a camera along ``view`` that frames all ``points``."""
    from physinteract.example import look_at_world_to_camera

    lo, hi = points.min(0), points.max(0)
    target = 0.5 * (lo + hi)
    radius = 0.5 * float(np.linalg.norm(hi - lo))
    fx = 0.5 * width / math.tan(math.radians(fov_deg) / 2)
    half_v = math.atan(0.5 * height / fx)
    d = radius / math.sin(half_v) * 0.95
    view = view / np.linalg.norm(view)
    K = np.array([[fx, 0.0, 0.5 * width], [0.0, fx, 0.5 * height], [0.0, 0.0, 1.0]])
    return K, look_at_world_to_camera(target + d * view, target)


def render_frames(means: np.ndarray, F: np.ndarray, gauss: dict[str, np.ndarray], K: np.ndarray, w2c: np.ndarray,
                  width: int, height: int, *, supersample: int, noise: float, rng: np.random.Generator,
                  background: tuple[float, float, float], double: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Render moved Gaussians like a camera: at ``supersample`` x the pixels, box-filtered down, plus pixel noise.

    means [F, V, 3] m and F [F, V, 3, 3] per frame (covariances F Sigma F^T); gauss: rest "rotations" [V, 4]
    (w, x, y, z), "scales" [V, 3] m (std), "colors" [V, 3], "opacities" [V]. K [3, 3] px; w2c [4, 4] or [F, 4, 4]
    (OpenCV); background linear RGB; double: render in float64 (else float32). noise: std of the Gaussian noise.
    Returns images [F, H, W, 3] (noisy, clipped to [0, 1]) and alpha [F, H, W] (box-filtered coverage).
    """
    import torch

    from physinteract.geometry.deform import covariance
    from physinteract.render import Camera, GaussianBatch, render

    dtype = torch.float64 if double else torch.float32
    ss = supersample
    K2 = np.array(K, np.float64)
    K2[:2] *= ss
    w2c = np.broadcast_to(w2c, (len(means), 4, 4)).copy()
    cov0 = covariance(gauss["rotations"], np.log(gauss["scales"]))
    colors = torch.as_tensor(gauss["colors"], dtype=dtype)
    opacities = torch.as_tensor(gauss["opacities"], dtype=dtype)
    bg = torch.tensor(background, dtype=dtype)
    images, alphas = [], []
    for f in range(len(means)):
        cov = F[f] @ cov0 @ np.swapaxes(F[f], 1, 2)
        g = GaussianBatch(means=torch.as_tensor(means[f], dtype=dtype), colors=colors, opacities=opacities,
                          covariances=torch.as_tensor(cov, dtype=dtype))
        cam = Camera.from_numpy(K2, w2c[f], width * ss, height * ss, dtype=dtype)
        with torch.no_grad():
            out = render(g, cam, background=bg)
        rgb = out.rgb.numpy().astype(np.float64).reshape(height, ss, width, ss, 3).mean((1, 3))
        alpha = out.alpha.numpy().astype(np.float64).reshape(height, ss, width, ss).mean((1, 3))
        images.append(np.clip(rgb + rng.normal(scale=noise, size=rgb.shape), 0.0, 1.0))
        alphas.append(alpha)
    return np.stack(images), np.stack(alphas)


def tracker_trajectory(times: np.ndarray, values: np.ndarray, duration: float, config: BuildConfig,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """T0: the true trajectory as a tracker reports it: keyframes every 2 frames, late by ``lag_frames``,
    drifting at ``drift`` m/s in a random direction, with ``track_noise`` m of noise per keyframe."""
    from physinteract.mpm import spline

    frame_dt = 1.0 / config.fps
    t0 = np.arange(0.0, duration + 1e-9, 2 * frame_dt)
    if t0[-1] < duration - 1e-9:
        t0 = np.append(t0, duration)
    lagged = np.clip(t0 - config.lag_frames * frame_dt, 0.0, duration)
    pos, _ = spline.evaluate(times, values, lagged)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    pos = pos + config.drift * t0[:, None] * direction + rng.normal(scale=config.track_noise, size=pos.shape)
    return t0, pos


@dataclass
class BuiltScene:
    """Where a scene was written and what it holds."""

    name: str
    folder: Path  # the job folder (job.json, frames/, masks/, gt.npz, scene.json)
    info: dict[str, Any]


def scene_names() -> list[str]:
    return list(SCENES)


def estimator_discretisation(spec: SceneSpec, cfg: BuildConfig) -> tuple[float, int]:
    """The estimator's particle spacing (m, a cubic lattice holding about ``spec.particles x cfg.scale``
    particles) and grid resolution (cells along the domain's longest side) for ``spec`` built with ``cfg``."""
    target = max(150, int(spec.particles * cfg.scale))
    spacing = (solid_volume(spec.sdf, np.asarray(spec.lo), np.asarray(spec.hi)) / target) ** (1.0 / 3.0)
    return spacing, max(12, int(round(spec.grid_resolution * cfg.scale ** (1.0 / 3.0))))


def scene_lattices(name: str, cfg: BuildConfig) -> tuple[Particles, Particles, float, int, np.random.Generator]:
    """The particles ``build_scene`` simulates for scene ``name``: the estimator's lattice and an
    independently offset ``cfg.gt_factor`` x finer one for the ground truth, the estimator's spacing (m)
    and grid resolution, and the scene's random generator after those draws (the tracker's errors come next)."""
    spec = SCENES[name]()
    rng = np.random.default_rng(cfg.seed * 1000 + list(SCENES).index(name))
    lo, hi = np.asarray(spec.lo), np.asarray(spec.hi)
    spacing, res_est = estimator_discretisation(spec, cfg)
    est = fill_sdf(spec.sdf, lo, hi, spacing, rng.random(3))
    gt = fill_sdf(spec.sdf, lo, hi, spacing / cfg.gt_factor, rng.random(3))
    return est, gt, spacing, res_est, rng


def build_scene(name: str, folder: str | Path, config: BuildConfig | None = None, log: Callable[[str], None] | None = None) -> BuiltScene:
    """Simulate, render and write scene ``name`` into ``folder`` (a contract job folder plus gt.npz and scene.json)."""
    from physinteract.mpm.model import make_model
    from physinteract.mpm.resolution import Tearing
    from physinteract.mpm.solver import cfl_substeps

    if name not in SCENES:
        raise ValueError(f"unknown benchmark scene {name!r}; choose from {', '.join(SCENES)}")
    cfg = config or BuildConfig()
    say = log or (lambda s: None)
    folder = Path(folder)
    spec = SCENES[name]()
    index = list(SCENES).index(name)
    t_start = time.perf_counter()

    # particles: estimator lattice, and an independent finer GT lattice
    est, gt, spacing, res_est, rng = scene_lattices(name, cfg)
    res_gt = int(round(res_est * cfg.gt_factor))
    E_est, E_gt = spec.E(est.positions), spec.E(gt.positions)
    grip_gt = grip_est = None
    if spec.interaction == "point_adherent":
        # the truth holds the region itself, not whole particles of its lattice; the estimator's job is given the
        # same region on its own lattice (the share of each particle in it), as perception gives it from a mask
        share = contact_share(spec.contact, gt.positions, spacing / cfg.gt_factor)
        contact_gt = np.flatnonzero(share > 0.0)
        grip_gt = share[contact_gt]
        share = contact_share(spec.contact, est.positions, spacing)
        contact_est = np.flatnonzero(share > 0.0)
        grip_est = share[contact_est]
    else:  # a collider's contact set only marks where it touches
        contact_est, contact_gt = np.flatnonzero(spec.contact(est.positions)), np.flatnonzero(spec.contact(gt.positions))
    if len(contact_est) == 0 or len(contact_gt) == 0:
        raise ValueError(f"scene {name}: the contact region holds no particle")

    frame_dt = 1.0 / cfg.fps
    duration = cfg.frames * frame_dt
    times = np.asarray(spec.times_frac) * duration

    # ground truth: the fine simulation, observed and novel
    gt_model = make_model(gt.positions, gt.volume, spec.density, E_gt, spec.nu, _solver_config(spec, res_gt, res_est))
    t = time.perf_counter()
    xs, Fs, sub_gt = simulate(gt_model, _control(spec, contact_gt, gt.positions, times, spec.path, grip_gt), frame_dt, cfg.frames)
    xs_n, Fs_n, _ = simulate(gt_model, _control(spec, contact_gt, gt.positions, times, spec.novel_path, grip_gt), frame_dt, cfg.frames)
    t_sim = time.perf_counter() - t
    torn = [Tearing.of_run(x).share for x in (xs, xs_n)]  # an elastic ground truth must not tear
    if max(torn) > 0.0:
        say(f"{name}: warning: {max(torn):.2%} of the GT particles came apart from a rest neighbour")
    say(f"{name}: GT simulated ({len(gt.positions)} particles, grid {res_gt}, {sub_gt} substeps/frame) in {t_sim:.1f} s")

    # the estimator's discretisation
    est_model = make_model(est.positions, est.volume, spec.density, E_est, spec.nu, _solver_config(spec, res_est))
    true_control = _control(spec, contact_est, est.positions, times, spec.path, grip_est)
    novel_control = _control(spec, contact_est, est.positions, times, spec.novel_path, grip_est)
    sub_est = cfl_substeps(est_model, true_control, frame_dt, duration, est_model.config)

    # the video
    gauss = surface_gaussians(spec, cfg.gaussians, cfg.seed + index)
    K, w2c = look_at_camera(xs.reshape(-1, 3), np.asarray(spec.view, np.float64), cfg.width, cfg.height)
    t = time.perf_counter()
    centres, F_centres = carry(gauss["positions"], gt.positions, xs, Fs)
    images, alpha = render_frames(centres, F_centres, gauss, K, w2c, cfg.width, cfg.height, supersample=cfg.supersample,
                                  noise=cfg.noise, rng=np.random.default_rng(cfg.seed + 17), background=BACKGROUND)
    novel_centres = carry(gauss["positions"], gt.positions, xs_n, Fs_n)[0]
    t_render = time.perf_counter() - t
    frames, masks = [], []
    for i in range(len(images)):
        f = f"frames/frame_{i:04d}.png"
        m = f"masks/mask_{i:04d}.png"
        write_png(folder / f, images[i])
        write_png(folder / m, (alpha[i] > 0.5).astype(np.float64))
        frames.append(f)
        masks.append(m)

    # the estimator's job
    above = cfg.guess_above if cfg.guess_above is not None else index % 2 == 0
    E_guess = float(np.mean(E_est)) * (cfg.guess_factor if above else 1.0 / cfg.guess_factor)
    t0_times, t0_values = tracker_trajectory(true_control.times, true_control.values, duration, cfg, rng)
    it = {"point_adherent": contract.Interaction(type="point_adherent", drive="velocity"),
          "point_non_adherent": contract.Interaction(type="point_non_adherent", drive="velocity", collider_shape="sphere",
                                                     collider_radius=spec.collider_radius, friction=spec.friction),
          "surface_non_adherent": contract.Interaction(type="surface_non_adherent", drive="velocity", collider_shape="plane",
                                                       plane_normal=(0.0, 0.0, 1.0), friction=spec.friction)}[spec.interaction]
    n = len(est.positions)
    job = contract.Job(
        particles=est.positions, labels=est.labels, volume=est.volume,
        E=np.full(n, E_guess), nu=np.full(n, 0.3), density=np.full(n, spec.density),
        contact=contact_est, contact_weights=grip_est, trajectory_times=t0_times, trajectory=t0_values, interaction=it,
        fps=cfg.fps, frame_start=1, frame_end=1 + cfg.frames,
        solver=contract.SolverSettings(grid_resolution=res_est, domain_min=est_model.config.domain_min,
                                       domain_max=est_model.config.domain_max,
                                       ground=spec.ground or contract.Ground()),
        camera=contract.Camera(cfg.width, cfg.height, K, np.tile(w2c, (cfg.frames + 1, 1, 1))),
        video=contract.Video(frames=frames, masks=masks),
        point_sets=[contract.PointSet("gaussians", gauss["positions"], np.eye(4), rest_rotations=gauss["rotations"],
                                      rest_scales=gauss["scales"], colors=gauss["colors"], opacities=gauss["opacities"])],
        name=f"benchmark-{name}",
        metadata={"benchmark": name, "background": list(BACKGROUND), "description": spec.description},
    )
    contract.write_job(job, folder)
    size = float(np.linalg.norm(est.positions.max(0) - est.positions.min(0)))
    gt_arrays = {
        "E": E_est, "nu": np.full(n, spec.nu), "regions": spec.regions(est.positions),
        "trajectory_times": true_control.times, "trajectory": true_control.values,
        "novel_trajectory_times": novel_control.times, "novel_trajectory": novel_control.values,
        "observed_gaussians": centres, "novel_gaussians": novel_centres,
        "alpha": alpha, "object_size": np.array(size),
    }
    contract.atomic_save_npz(folder / GT_FILE, gt_arrays)
    info = {
        "name": name, "description": spec.description, "interaction": spec.interaction,
        "particles": n, "gt_particles": len(gt.positions), "gaussians": len(gauss["positions"]),
        "grid_resolution": res_est, "gt_grid_resolution": res_gt,
        "substeps_per_frame": int(sub_est), "gt_substeps_per_frame": int(sub_gt),
        "regions": int(len(np.unique(gt_arrays["regions"]))),
        "E_range": [float(E_est.min()), float(E_est.max())], "E_guess": E_guess, "nu": spec.nu, "density": spec.density,
        "frames": cfg.frames + 1, "object_size": size,
        "gt_torn_share": [round(v, 5) for v in torn],  # observed, novel: particles that came apart (mpm.resolution.Tearing)
        "seconds_simulate": round(t_sim, 2), "seconds_render": round(t_render, 2),
        "seconds": round(time.perf_counter() - t_start, 2),
        "config": cfg.settings(),
    }
    contract.atomic_write_text(folder / SCENE_FILE, json.dumps(info, indent=2) + "\n")
    say(f"{name}: written to {folder} in {info['seconds']} s ({n} particles, {sub_est} substeps/frame at grid {res_est})")
    return BuiltScene(name, folder, info)


def load_gt(folder: str | Path) -> dict[str, np.ndarray]:
    """The ground truth written beside a scene's job (plain arrays, no pickles)."""
    path = Path(folder) / GT_FILE
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the benchmark ground truth: {e}") from e


def load_info(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / SCENE_FILE
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read the scene summary: {e}") from e
