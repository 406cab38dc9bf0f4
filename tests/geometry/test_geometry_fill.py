"""Filling meshes and Gaussians: volumes against analytic solids, labels, counts, materials."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from physinteract.contract import INTERIOR, SURFACE
from physinteract.geometry import FillConfig, fill_gaussians, fill_mesh, nearest_surface_material
from physinteract.geometry.fill import _nearest_surface_material, sub_lattice
from physinteract.geometry.neighbors import _knn, knn
from physinteract.geometry.shapes import box, surface_gaussians, torus, uv_sphere
from physinteract.geometry.winding import (
    _winding_number_mesh,
    _winding_number_points,
    winding_number_mesh,
    winding_number_points,
)

ROT = np.array([[0.36, 0.48, -0.8], [-0.8, 0.6, 0.0], [0.48, 0.64, 0.6]])  # a proper rotation (det +1)
BOX = (0.3, 0.17, 0.11)

# name -> (vertices, faces, true volume in m^3). The open box's true volume is the closed box's.
SHAPES = {
    "sphere": (*uv_sphere(0.5, 96, 48), 4 / 3 * np.pi * 0.5**3),
    "box": (box(BOX)[0] @ ROT.T, box(BOX)[1], float(np.prod(BOX))),
    "torus": (*torus(0.3, 0.1, 128, 64), 2 * np.pi**2 * 0.3 * 0.1**2),
    "open_box": (box(BOX, open_face="+z")[0] @ ROT.T, box(BOX, open_face="+z")[1], float(np.prod(BOX))),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_mesh_fill_volume_matches_analytic_solid_within_3_percent(name):
    """Filled volume (count x h^3/ppc) of a meshed sphere/box/torus/open box equals the solid's volume within 3%."""
    v, f, true_volume = SHAPES[name]
    p = fill_mesh(v, f)
    assert abs(p.filled_volume / true_volume - 1) < 0.03, (name, p.filled_volume, true_volume)
    assert np.allclose(p.volume, p.cell_size**3 / 8)


@pytest.mark.parametrize("name", list(SHAPES))
def test_gaussian_fill_volume_matches_analytic_solid_within_3_percent(name):
    """Flat Gaussians sampled on the surface fill the solid (open box: closed) within 3% of its volume."""
    v, f, true_volume = SHAPES[name]
    h = float(np.ptp(v, 0).max()) / 64
    cloud = surface_gaussians(v, f, spacing=0.8 * h, seed=3)
    p = fill_gaussians(cloud)
    assert abs(p.filled_volume / true_volume - 1) < 0.03, (name, p.filled_volume, true_volume)
    surf = p.labels == SURFACE
    assert np.all(p.source_index[surf] >= 0) and np.all(p.source_index[~surf] == -1)


def test_isotropic_gaussians_fill_sphere_within_3_percent():
    """Round (isotropic) Gaussians on a sphere, normals from neighbour PCA, fill 4/3 pi r^3 within 3%."""
    v, f, true_volume = SHAPES["sphere"]
    cloud = surface_gaussians(v, f, spacing=1.0 / 64, seed=4)
    cloud.log_scales[:] = np.log(1.0 / 64)
    p = fill_gaussians(cloud)
    assert abs(p.filled_volume / true_volume - 1) < 0.03


def test_mesh_with_holes_still_fills_sphere_volume():
    """A sphere with 20% of its triangles deleted fills 4/3 pi r^3 within 3% (parity votes alone lose ~10%; the winding number decides)."""
    v, f, true_volume = SHAPES["sphere"]
    rng = np.random.default_rng(0)
    keep = rng.random(len(f)) > 0.2
    p = fill_mesh(v, f[keep], FillConfig(resolution=40))
    assert abs(p.filled_volume / true_volume - 1) < 0.03


def test_inside_out_open_box_fills_the_same_volume():
    """Reversed triangle orientation (w = -1 inside) does not change the filled volume of the open box."""
    v, f, true_volume = SHAPES["open_box"]
    p = fill_mesh(v, f[:, ::-1], FillConfig(resolution=40))
    assert abs(p.filled_volume / true_volume - 1) < 0.03


def test_surface_and_interior_labels_follow_the_sphere_boundary():
    """Surface particles lie within ~one lattice spacing of r = R; interior ones are deeper; both exist."""
    v, f, _ = SHAPES["sphere"]
    p = fill_mesh(v, f, FillConfig(resolution=32))
    r = np.linalg.norm(p.positions, axis=1)
    spacing = p.cell_size / 2
    surf = p.labels == SURFACE
    assert set(np.unique(p.labels)) == {SURFACE, INTERIOR}
    assert np.all(r[surf] > 0.5 - 2.0 * spacing)
    assert np.all(r[~surf] < 0.5 - 0.4 * spacing)
    assert np.all(r < 0.5 + 1e-9)


def test_particle_count_control():
    """--count aims within 5% of the target; particles per cell sets the volume per particle h^3/ppc."""
    v, f, true_volume = SHAPES["torus"]
    p = fill_mesh(v, f, FillConfig(target_count=20_000))
    assert abs(len(p) / 20_000 - 1) < 0.05
    q = fill_mesh(v, f, FillConfig(resolution=40, particles_per_cell=4))
    assert sub_lattice(4) == (2, 2, 1) and sub_lattice(27) == (3, 3, 3) and sub_lattice(1) == (1, 1, 1)
    assert np.allclose(q.volume, q.cell_size**3 / 4)
    assert abs(q.filled_volume / true_volume - 1) < 0.03


def test_degenerate_gaussians_are_clamped_with_a_warning():
    """NaN centres, zero and huge scales and zero rotations are repaired with a warning; the volume stays within 3%."""
    v, f, true_volume = SHAPES["sphere"]
    cloud = surface_gaussians(v, f, spacing=1.0 / 64, seed=5)
    cloud.means[0] = np.nan
    cloud.log_scales[1] = -np.inf  # zero scale
    cloud.log_scales[2] = np.nan
    cloud.log_scales[3, 0] = 50.0  # huge
    cloud.rotations[4] = 0.0
    with pytest.warns(RuntimeWarning) as record:
        p = fill_gaussians(cloud)
    text = " ".join(str(w.message) for w in record)
    assert "non-finite centre" in text and "clamped" in text and "identity" in text
    assert abs(p.filled_volume / true_volume - 1) < 0.03


def test_no_warning_for_clean_gaussians():
    """A clean cloud raises no warning."""
    v, f, _ = SHAPES["box"]
    cloud = surface_gaussians(v, f, spacing=0.3 / 32, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fill_gaussians(cloud, FillConfig(resolution=32))


def test_nearest_surface_material_matches_brute_force():
    """Interior particles take the value of the nearest surface particle (propagation == brute-force twin)."""
    v, f, _ = SHAPES["torus"]
    p = fill_mesh(v, f, FillConfig(resolution=24))
    rng = np.random.default_rng(1)
    values = rng.uniform(1e5, 1e7, size=len(p))
    got = nearest_surface_material(p.positions, p.labels, values)
    ref = _nearest_surface_material(p.positions, p.labels, values)
    surf = p.labels == SURFACE
    assert np.array_equal(got[surf], values[surf])
    # Ties between equidistant surface particles may pick either; compare distances to the chosen seed.
    surf_idx = np.flatnonzero(surf)
    chosen = {float(x): i for i, x in zip(surf_idx, values[surf_idx])}
    d_got = np.linalg.norm(p.positions[[chosen[float(x)] for x in got[~surf]]] - p.positions[~surf], axis=1)
    d_ref = np.linalg.norm(p.positions[[chosen[float(x)] for x in ref[~surf]]] - p.positions[~surf], axis=1)
    assert np.mean(np.isclose(d_got, d_ref)) > 0.99
    assert np.all(d_got <= d_ref + 0.3 * p.cell_size)


def test_knn_matches_brute_force_twin():
    """Grid-hash k nearest neighbours equal the brute-force twin, for near and far queries."""
    rng = np.random.default_rng(2)
    pts = rng.normal(size=(3000, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    q = rng.uniform(-1.5, 1.5, size=(800, 3))
    for k in (1, 6):
        d, i = knn(q, pts, k)
        d0, i0 = _knn(q, pts, k)
        assert np.allclose(d, d0)


def test_winding_numbers_match_brute_force_and_indicator():
    """Fast (multipole) winding numbers equal the brute-force twins to 2e-2 and are 1 inside / 0 outside a closed mesh."""
    v, f, _ = SHAPES["torus"]
    rng = np.random.default_rng(3)
    q = rng.uniform(-0.45, 0.45, size=(400, 3)) * [1, 1, 0.4]
    w = winding_number_mesh(q, v, f)
    w0 = _winding_number_mesh(q, v, f)
    assert np.max(np.abs(w - w0)) < 2e-2
    rho = np.hypot(np.linalg.norm(q[:, :2], axis=1) - 0.3, q[:, 2])
    clear = np.abs(rho - 0.1) > 0.01
    assert np.allclose(w0[clear], (rho < 0.1)[clear], atol=0.02)
    # Oriented point cloud of a sphere: dipoles with outward area vectors.
    n = rng.normal(size=(4000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    A = n * (4 * np.pi * 0.25 / len(n))
    q = rng.uniform(-0.8, 0.8, size=(300, 3))
    wp = winding_number_points(q, 0.5 * n, A)
    wp0 = _winding_number_points(q, 0.5 * n, A)
    r = np.linalg.norm(q, axis=1)
    assert np.max(np.abs(wp - wp0)[np.abs(r - 0.5) > 0.1]) < 2e-2
    assert np.allclose(wp0[np.abs(r - 0.5) > 0.1], (r < 0.5)[np.abs(r - 0.5) > 0.1], atol=0.05)
