"""Simulation -> render: Gaussians deform as F Sigma F^T, centres follow the particles, 3DGS layout round trip."""

from __future__ import annotations

import numpy as np

from physinteract.geometry import (
    FillConfig,
    covariance,
    deform_gaussians,
    estimate_deformation_gradient,
    fill_mesh,
    interpolate_from_particles,
    matrix_from_quaternion,
    quaternion_from_matrix,
    read_gaussian_ply,
    write_gaussian_ply,
)
from physinteract.geometry.shapes import box, surface_gaussians


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


# A rotated-and-stretched deformation: rotate 40 degrees about (1, 2, 3) after stretching 1.6 / 0.7 / 1.1 along tilted axes.
STRETCH = _rot([0, 1, 1], 0.3) @ np.diag([1.6, 0.7, 1.1]) @ _rot([0, 1, 1], 0.3).T
A = _rot([1, 2, 3], np.radians(40)) @ STRETCH
B = np.array([0.1, -0.2, 0.05])


def _random_gaussians(n, rng):
    q = rng.normal(size=(n, 4))
    return q, rng.normal(-3.0, 0.5, size=(n, 3))


def test_quaternion_matrix_round_trip_w_first():
    """quaternion -> matrix -> quaternion returns the same rotation, unit, w >= 0; matrices are proper (det +1)."""
    rng = np.random.default_rng(0)
    q = rng.normal(size=(1000, 4))
    R = matrix_from_quaternion(q)
    assert np.allclose(np.linalg.det(R), 1.0) and np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-12)
    back = quaternion_from_matrix(R)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True) * np.sign(q[:, :1])
    assert np.allclose(back, qn, atol=1e-10) and np.all(back[:, 0] >= 0)
    # w first: a quarter turn about z is (cos 45, 0, 0, sin 45) and maps x to y.
    Rz = matrix_from_quaternion(np.array([[np.sqrt(0.5), 0, 0, np.sqrt(0.5)]]))[0]
    assert np.allclose(Rz @ [1, 0, 0], [0, 1, 0])


def test_deformed_covariance_equals_F_sigma_FT():
    """deform_gaussians returns (rotation w-first, log scale) whose covariance is F Sigma F^T, F rotated and stretched."""
    rng = np.random.default_rng(1)
    q, ls = _random_gaussians(500, rng)
    F = np.broadcast_to(A, (500, 3, 3)) + 0.05 * rng.normal(size=(500, 3, 3))
    q2, ls2 = deform_gaussians(q, ls, F)
    expected = F @ covariance(q, ls) @ np.swapaxes(F, 1, 2)
    assert np.allclose(covariance(q2, ls2), expected, rtol=1e-9, atol=1e-15)
    assert np.allclose(np.linalg.norm(q2, axis=1), 1.0) and np.all(q2[:, 0] >= 0)
    assert np.allclose(np.linalg.det(matrix_from_quaternion(q2)), 1.0)
    # Volume scales by det F: prod(scales') = |det F| prod(scales).
    assert np.allclose(ls2.sum(1), ls.sum(1) + np.log(np.abs(np.linalg.det(F))))


def test_deformed_gaussian_matches_sampled_points_mapped_by_F():
    """Points sampled from a Gaussian and mapped by F have the covariance of the deformed Gaussian (Monte Carlo, 2%)."""
    rng = np.random.default_rng(2)
    q, ls = np.array([[0.9, 0.2, -0.3, 0.1]]), np.log(np.array([[0.03, 0.01, 0.02]]))
    Sigma = covariance(q, ls)[0]
    x = rng.multivariate_normal(np.zeros(3), Sigma, size=400_000) @ A.T
    q2, ls2 = deform_gaussians(q, ls, A[None])
    empirical = np.cov(x.T)
    assert np.allclose(covariance(q2, ls2)[0], empirical, atol=0.02 * np.abs(empirical).max())


def test_gaussians_follow_particles_through_affine_motion_and_3dgs_file(tmp_path):
    """Particles move x = A X + b, F = A: centres go to A mu + b, covariances to A Sigma A^T (also after a PLY round trip)."""
    v, f = box((0.3, 0.2, 0.1))
    particles = fill_mesh(v, f, FillConfig(resolution=16))
    X = particles.positions
    x = X @ A.T + B
    F = np.broadcast_to(A, (len(X), 3, 3))
    cloud = surface_gaussians(v, f, spacing=0.02, seed=0)
    mu = cloud.means.astype(np.float64)
    new_mu, Fq = interpolate_from_particles(mu, X, x, F, k=8)
    assert np.allclose(new_mu, mu @ A.T + B, atol=1e-12)
    assert np.allclose(Fq, A, atol=1e-12)
    q2, ls2 = deform_gaussians(cloud.rotations, cloud.log_scales, Fq)
    cloud.means, cloud.rotations, cloud.log_scales = new_mu.astype(np.float32), q2.astype(np.float32), ls2.astype(np.float32)
    write_gaussian_ply(tmp_path / "deformed.ply", cloud)
    back = read_gaussian_ply(tmp_path / "deformed.ply")
    Sigma = covariance(surface_gaussians(v, f, spacing=0.02, seed=0).rotations,
                       surface_gaussians(v, f, spacing=0.02, seed=0).log_scales)
    expected = A @ Sigma @ A.T
    got = covariance(back.rotations, back.log_scales)
    scale = np.abs(expected).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(got - expected) <= 1e-5 * scale)
    assert np.allclose(back.means, mu @ A.T + B, atol=1e-6)


def test_least_squares_F_recovers_affine_motion():
    """Without solver F, the neighbour least-squares estimate recovers A for x = A X + b, and interpolation still moves points exactly."""
    rng = np.random.default_rng(3)
    X = rng.uniform(-0.1, 0.1, size=(2000, 3))
    x = X @ A.T + B
    Fe = estimate_deformation_gradient(X, x)
    assert np.allclose(Fe, A, atol=1e-8)
    qpts = rng.uniform(-0.08, 0.08, size=(100, 3))
    moved, _ = interpolate_from_particles(qpts, X, x)
    assert np.allclose(moved, qpts @ A.T + B, atol=1e-8)
