"""Contact particles from a contact mask: back-projection with the rendered depth (the paper's Eq. 2).

A pixel (u, v) of the contact mask (integer indices, row v, column u) with rendered camera depth z is
lifted to the world point

    X = R^T (z K^-1 [u + 0.5, v + 0.5, 1]^T - t)

for the camera's world->camera transform [R | t] (OpenCV axes, pixel centres at +0.5 as in the
contract). The contact set is then the surface particles those points touch: the nearest surface
particles within a radius of the points, plus every surface particle that projects into the mask at
the depth the renderer saw there (so a surface patch is covered densely, not only where a pixel
happened to land). Units: metres, pixels; world frame Blender's (+Z up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from physinteract import contract


@dataclass
class ContactConfig:
    """How contact particles are picked (lengths in units of the particle spacing, the median nearest-neighbour distance).

    margin: how far (spacings, measured in the image at the particle's depth) a particle's projection must lie
        inside the contact mask; 0.75 keeps most of its share of the surface (about half a spacing around it) under the mask.
    depth_tolerance: how far (spacings) a particle may lie from the rendered depth and still count as visible
        (surface particles sit up to one spacing under the rendered surface).
    radius: reach (spacings) of the nearest-particle fallback for small masks.
    """

    margin: float = 0.75
    depth_tolerance: float = 1.5
    radius: float = 1.5


def backproject(mask: np.ndarray, depth: np.ndarray, K: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """World points [P, 3] (m) of the mask's pixels, using the rendered depth (Eq. 2).

    Args:
        mask: [H, W] bool, the pixels to lift.
        depth: [H, W] m, camera z per pixel (the renderer's depth); pixels with depth <= 0 (nothing
            rendered there) or a non-finite depth are skipped.
        K: [3, 3] intrinsics (px).  world_to_camera: [4, 4] OpenCV axes.
    Returns:
        points: [P, 3] m, world frame, in row-major pixel order.
    """
    mask = np.asarray(mask, bool)
    depth = np.asarray(depth, np.float64)
    if mask.shape != depth.shape or mask.ndim != 2:
        raise ValueError(f"backproject: mask {list(mask.shape)} and depth {list(depth.shape)} must be the same [H, W]")
    ok = mask & np.isfinite(depth) & (depth > 0)
    v, u = np.nonzero(ok)
    return contract.unproject(np.stack([u + 0.5, v + 0.5], axis=1), depth[v, u], K, world_to_camera)


def particle_spacing(particles: np.ndarray) -> float:
    """The typical distance between neighbouring particles (m): the median nearest-neighbour distance."""
    from physinteract.geometry.neighbors import knn

    x = np.asarray(particles, np.float64)
    if len(x) < 2:
        raise ValueError("particle_spacing: need at least two particles")
    dist, _ = knn(x, x, 2)
    return float(np.median(dist[:, 1]))


def select_contact(
    particles: np.ndarray,
    labels: np.ndarray,
    points: np.ndarray,
    radius: float | None = None,
    *,
    mask: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    K: np.ndarray | None = None,
    world_to_camera: np.ndarray | None = None,
    config: ContactConfig | None = None,
    weights: bool = False,
) -> Any:
    """Indices [K] (int64, sorted) of the surface particles touched by the contact region; with
    ``weights``, also the share [K] in (0, 1] of each one the region holds.

    With the view (``mask``, ``depth``, ``K``, ``world_to_camera``) a surface particle is chosen when

    * it is on the visible surface behind the mask: its camera depth is within ``depth_tolerance``
      spacings of the rendered depth at the pixel it projects to, and
    * the mask covers its share of the surface: its projection lies at least ``margin`` spacings
      (converted to pixels at the particle's depth) inside the mask. A particle's share of the
      surface reaches about half a spacing around it, while a rendered or segmented region spills
      past its particles by the footprint of their Gaussians, so this keeps the ring just outside.

    With ``weights`` the mask test is graded: a particle's footprint is the square of one spacing
    around its projection, and its share is the fraction of that square (4 x 4 samples) that lies
    at least ``margin`` - 1/2 spacings inside the mask; every particle with a share above zero is
    chosen, those the plain test chooses with a share of (nearly) one. The region's edge then need
    not fall on the particle lattice: a grasp holds the region, not whole particles around it
    (``contract.Job.contact_weights``). The nearest-particle fallback's particles weigh 1.

    This covers a surface patch densely. When it selects nothing (a point grasp whose mask is
    smaller than a particle's share), or without the view, the contact set is the nearest surface
    particle of every back-projected point within ``radius`` (default ``radius`` spacings; farther
    points are outliers of a bad depth or mask).

    Args:
        particles: [N, 3] rest positions, m, world.  labels: [N] uint8 (0 surface, 1 interior).
        points: [P, 3] back-projected contact points, m, world (see :func:`backproject`).
        radius: m, overrides ``config.radius`` x spacing.
        mask: [H, W] bool contact mask.  depth: [H, W] rendered depth, m.  K, world_to_camera: the camera.
    """
    cfg = config or ContactConfig()
    x = np.asarray(particles, np.float64)
    surface = np.flatnonzero(np.asarray(labels) == contract.SURFACE)
    if len(surface) == 0:
        raise ValueError("select_contact: the object has no surface particles (labels all 1)")
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    spacing = particle_spacing(x)
    share = np.zeros(len(x))
    view = (mask, depth, K, world_to_camera)
    if all(a is not None for a in view):
        share[surface] = _share_through_mask(x[surface], np.asarray(mask, bool), np.asarray(depth, np.float64),
                                             np.asarray(K, np.float64), np.asarray(world_to_camera, np.float64), spacing, cfg,
                                             graded=weights)
    elif any(a is not None for a in view):
        raise ValueError("select_contact: give all of mask, depth, K and world_to_camera for the mask test, or none")
    if not share.any() and len(pts):
        from physinteract.geometry.neighbors import knn

        reach = cfg.radius * spacing if radius is None else float(radius)
        d, nearest = knn(pts, x[surface], 1)  # each lifted point's nearest surface particle
        share[surface[nearest[d[:, 0] <= reach, 0]]] = 1.0
    chosen = np.flatnonzero(share > 0.0).astype(np.int64)
    return (chosen, share[chosen]) if weights else chosen


def _share_through_mask(x: np.ndarray, mask: np.ndarray, depth: np.ndarray, K: np.ndarray, w2c: np.ndarray,
                        spacing: float, cfg: ContactConfig, graded: bool) -> np.ndarray:
    """Per surface particle x [S, 3], visible at the rendered depth of the pixel it projects to: 1 where its
    projection lies at least ``cfg.margin`` spacings inside ``mask`` and 0 elsewhere, or with ``graded`` the
    share of its footprint square (one spacing, 4 x 4 samples) lying at least ``cfg.margin`` - 1/2 spacings inside."""
    import cv2

    H, W = mask.shape
    if depth.shape != mask.shape:
        raise ValueError(f"select_contact: mask {list(mask.shape)} and depth {list(depth.shape)} differ in size")
    # distance (px) from each mask pixel to the nearest pixel outside the mask
    inner = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        uv, z = contract.project(K, w2c, x)
        u, v = (np.floor(np.nan_to_num(c, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(np.int64) for c in uv.T)
    ok = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
    i = np.flatnonzero(ok)
    d = depth[v[i], u[i]]
    spacing_px = spacing * float(np.sqrt(K[0, 0] * K[1, 1])) / z[i]
    visible = (d > 0) & (np.abs(z[i] - d) <= cfg.depth_tolerance * spacing)
    out = np.zeros(len(x))
    if not graded:
        out[i] = visible & mask[v[i], u[i]] & (inner[v[i], u[i]] >= cfg.margin * spacing_px)
        return out
    inside = np.zeros(len(i))
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    for du in offsets:
        for dv in offsets:
            su = np.clip(np.floor(uv[i, 0] + du * spacing_px).astype(np.int64), 0, W - 1)
            sv = np.clip(np.floor(uv[i, 1] + dv * spacing_px).astype(np.int64), 0, H - 1)
            inside += mask[sv, su] & (inner[sv, su] >= (cfg.margin - 0.5) * spacing_px)
    out[i] = np.where(visible, inside / 16.0, 0.0)
    return out


def contact_iou(selected: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two index sets."""
    a, b = set(np.asarray(selected).tolist()), set(np.asarray(truth).tolist())
    return len(a & b) / max(len(a | b), 1)
