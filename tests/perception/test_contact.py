"""Contact particles from a contact mask: back-projection (the paper's Eq. 2) and the selected set's IoU."""

from __future__ import annotations

import numpy as np
import pytest

from physinteract import contract
from physinteract.geometry.neighbors import knn
from physinteract.perception.contact import backproject, contact_iou, particle_spacing, select_contact
from tests.perception import synthetic as syn

W, H = 128, 96


def test_backproject_inverts_the_pinhole_projection():
    """Eq. 2 with the true depth returns the world points whose projections are the pixel centres."""
    rng = np.random.default_rng(0)
    K = np.array([[150.0, 0.0, 64.0], [0.0, 140.0, 48.0], [0.0, 0.0, 1.0]])
    w2c = np.eye(4)
    w2c[:3, :3] = syn.rotation(np.array([0.3, -1.0, 0.2]), 25.0)
    w2c[:3, 3] = [0.05, -0.02, 0.6]
    mask = rng.random((H, W)) < 0.05
    depth = rng.uniform(0.4, 0.8, (H, W))
    depth[::7] = 0.0  # nothing rendered there: skipped
    pts = backproject(mask, depth, K, w2c)
    v, u = np.nonzero(mask & (depth > 0))
    assert len(pts) == len(u) > 0
    uv, z = contract.project(K, w2c, pts)
    np.testing.assert_allclose(uv, np.stack([u + 0.5, v + 0.5], 1), atol=1e-9)
    np.testing.assert_allclose(z, depth[v, u], rtol=1e-12)


@pytest.fixture(scope="module")
def balloon():
    obj = syn.make_object("balloon", particles=3000, gaussians=3000)
    K, w2c = syn.camera(obj, W, H)
    return obj, K, w2c


def _perfect_contact_view(obj, K, w2c, truth):
    """The contact region as a segmenter would see it: the object rendered with the Gaussians of the true contact
    particles (each Gaussian belongs to its nearest surface particle) white, the others black; mask = white wins."""
    surf = np.flatnonzero(obj.labels == contract.SURFACE)
    _, owner = knn(obj.gaussians["positions"], obj.particles[surf], 1)
    white = np.isin(surf[owner[:, 0]], truth).astype(np.float64)
    rgb, alpha, depth = syn.render_view(obj, K, w2c, W, H, colors=np.repeat(white[:, None], 3, 1), background=(0, 0, 0))
    return (rgb[..., 0] > 0.5 * np.maximum(alpha, 1e-12)) & (alpha > 0.5), depth


def _front(obj, w2c):
    surf = np.flatnonzero(obj.labels == contract.SURFACE)
    cam = -w2c[:3, :3].T @ w2c[:3, 3]
    view = (cam - obj.centre) / np.linalg.norm(cam - obj.centre)
    return surf, view


@pytest.mark.parametrize("radius", [0.03, 0.045])
def test_point_grasp_contact_iou_at_least_0_9(balloon, radius):
    """A grasp of the surface particles within `radius` of the point nearest the camera: IoU >= 0.9 from a perfect mask."""
    obj, K, w2c = balloon
    surf, view = _front(obj, w2c)
    p = obj.particles[surf][np.argmax(obj.particles[surf] @ view)]
    truth = surf[np.linalg.norm(obj.particles[surf] - p, axis=1) < radius]
    mask, depth = _perfect_contact_view(obj, K, w2c, truth)
    pts = backproject(mask, depth, K, w2c)
    sel = select_contact(obj.particles, obj.labels, pts, mask=mask, depth=depth, K=K, world_to_camera=w2c)
    iou = contact_iou(sel, truth)
    print(f"point grasp r={radius} m: {len(truth)} true, {len(sel)} selected, IoU {iou:.3f}")
    assert np.all(obj.labels[sel] == contract.SURFACE)
    assert iou >= 0.9


def test_surface_patch_contact_iou_at_least_0_9(balloon):
    """A surface patch (the balloon's cap facing the camera, ~50 degrees around its axis, pressed by a plate): IoU >= 0.9, perfect mask."""
    obj, K, w2c = balloon
    surf, view = _front(obj, w2c)
    h = (obj.particles[surf] - obj.centre) @ view
    truth = surf[h > 0.6 * h.max()]
    mask, depth = _perfect_contact_view(obj, K, w2c, truth)
    sel = select_contact(obj.particles, obj.labels, backproject(mask, depth, K, w2c), mask=mask, depth=depth, K=K,
                         world_to_camera=w2c)
    iou = contact_iou(sel, truth)
    print(f"surface patch: {len(truth)} true, {len(sel)} selected, IoU {iou:.3f}")
    assert iou >= 0.9


def test_tiny_mask_falls_back_to_the_nearest_surface_particle(balloon):
    """A 2x2-pixel click: the contact set is the surface particle(s) nearest the clicked surface point."""
    obj, K, w2c = balloon
    _, alpha, depth = syn.render_view(obj, K, w2c, W, H)
    mask = np.zeros((H, W), bool)
    mask[H // 2:H // 2 + 2, W // 2:W // 2 + 2] = True
    pts = backproject(mask, depth, K, w2c)
    sel = select_contact(obj.particles, obj.labels, pts, mask=mask, depth=depth, K=K, world_to_camera=w2c)
    surf = np.flatnonzero(obj.labels == contract.SURFACE)
    dist = np.linalg.norm(pts[:, None, :] - obj.particles[surf][None], axis=2)  # brute force, not the k-NN grid
    near = dist.argmin(1)
    assert 1 <= len(sel) <= 4
    assert set(sel.tolist()) == set(surf[near].tolist())
    assert dist.min(1).max() < 1.5 * particle_spacing(obj.particles)


def test_contact_weights_follow_the_mask_edge_continuously_where_whole_particles_jump():
    """A flat sheet of particles facing the camera (0.04 m apart, 16 px at 1 m), its contact mask a half-plane whose
    edge slides by a quarter spacing at a time: the held area (the sum of the weights, in particles per row) is the
    region's width less the margin's allowance, growing by a quarter spacing each step as the region does, while the
    plain selection's count moves by whole columns or not at all. Every plain pick is weighed (nearly) whole, and
    every weight lies in (0, 1]."""
    s, f, rows, cols = 0.04, 400.0, 6, 10
    iu, iv = np.meshgrid(np.arange(cols), np.arange(rows), indexing="xy")
    particles = np.stack([(iu.ravel() - cols / 2 + 0.5) * s, (iv.ravel() - rows / 2 + 0.5) * s, np.ones(rows * cols)], 1)
    labels = np.zeros(len(particles), np.uint8)
    K = np.array([[f, 0.0, 120.0], [0.0, f, 80.0], [0.0, 0.0, 1.0]])
    w2c = np.eye(4)
    depth = np.ones((160, 240))
    u_col = f * particles[:cols, 0] + K[0, 2]  # pixel column of each particle column's centre
    held, counts = [], []
    for step in range(5):
        edge = u_col[4] + 0.25 * step * s * f  # the mask covers the columns left of this pixel column
        mask = np.zeros_like(depth, bool)
        mask[:, : int(round(edge))] = True
        pts = backproject(mask, depth, K, w2c)
        plain = select_contact(particles, labels, pts, mask=mask, depth=depth, K=K, world_to_camera=w2c)
        chosen, w = select_contact(particles, labels, pts, mask=mask, depth=depth, K=K, world_to_camera=w2c, weights=True)
        assert np.all((w > 0) & (w <= 1)) and np.all(np.isin(plain, chosen))
        assert np.all(w[np.isin(chosen, plain)] >= 0.75)
        held.append(w.sum() / rows)
        counts.append(len(plain) / rows)
    # the region reaches 4.5 + k/4 spacings from the sheet's left edge; the weights hold it less the margin's
    # allowance for a segmentation spilling past its particles (margin - 1/2 = 1/4 spacing)
    np.testing.assert_allclose(held, 4.25 + 0.25 * np.arange(5), atol=0.07)
    assert set(np.diff(counts).tolist()) <= {0.0, 1.0} and counts[-1] - counts[0] == 1.0
