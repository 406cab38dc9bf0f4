"""From the simulation back to what is rendered.

Render-mesh vertices and Gaussian centres follow the particles: each query point
takes, from its k nearest particles at rest, the first-order (affine) estimate
x_j + F_j (X - X_j), so a homogeneous deformation is reproduced exactly. Each
Gaussian's covariance deforms as Sigma' = F Sigma F^T, and Sigma' is turned back
into the 3DGS (rotation quaternion w-first, log scales) pair by a symmetric eigen
decomposition. Quaternions here are (w, x, y, z) and rotate column vectors.
"""

from __future__ import annotations

import numpy as np


def matrix_from_quaternion(q: np.ndarray) -> np.ndarray:
    """[N, 4] quaternions (w, x, y, z), any norm > 0 -> [N, 3, 3] rotation matrices."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def quaternion_from_matrix(R: np.ndarray) -> np.ndarray:
    """[N, 3, 3] rotation matrices (det +1) -> [N, 4] unit quaternions (w, x, y, z) with w >= 0.

    Shepperd's method: build from the largest of w^2, x^2, y^2, z^2 for stability.
    """
    R = np.asarray(R, np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    tr = m00 + m11 + m22
    cand = np.stack([tr, m00, m11, m22], -1)
    k = np.argmax(cand, -1)
    q = np.empty(R.shape[:-2] + (4,))
    # Case w largest
    s = np.sqrt(np.maximum(1 + tr, 1e-300)) * 2
    qw = np.stack([0.25 * s, (R[..., 2, 1] - R[..., 1, 2]) / s, (R[..., 0, 2] - R[..., 2, 0]) / s,
                   (R[..., 1, 0] - R[..., 0, 1]) / s], -1)
    s = np.sqrt(np.maximum(1 + m00 - m11 - m22, 1e-300)) * 2
    qx = np.stack([(R[..., 2, 1] - R[..., 1, 2]) / s, 0.25 * s, (R[..., 0, 1] + R[..., 1, 0]) / s,
                   (R[..., 0, 2] + R[..., 2, 0]) / s], -1)
    s = np.sqrt(np.maximum(1 - m00 + m11 - m22, 1e-300)) * 2
    qy = np.stack([(R[..., 0, 2] - R[..., 2, 0]) / s, (R[..., 0, 1] + R[..., 1, 0]) / s, 0.25 * s,
                   (R[..., 1, 2] + R[..., 2, 1]) / s], -1)
    s = np.sqrt(np.maximum(1 - m00 - m11 + m22, 1e-300)) * 2
    qz = np.stack([(R[..., 1, 0] - R[..., 0, 1]) / s, (R[..., 0, 2] + R[..., 2, 0]) / s,
                   (R[..., 1, 2] + R[..., 2, 1]) / s, 0.25 * s], -1)
    q = np.choose(k[..., None], [qw, qx, qy, qz])
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def covariance(rotations: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    """3DGS (quaternion w-first [N, 4], log std [N, 3]) -> covariance [N, 3, 3], m^2: R diag(s^2) R^T."""
    R = matrix_from_quaternion(rotations)
    s2 = np.exp(2.0 * np.asarray(log_scales, np.float64))
    return np.einsum("nij,nj,nkj->nik", R, s2, R)


def rotation_scale_from_covariance(cov: np.ndarray, min_scale: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric covariance [N, 3, 3] -> (quaternion w-first [N, 4], log std [N, 3]).

    Eigenvectors become the rotation's columns (a reflection is fixed by flipping
    the last axis, which leaves the covariance unchanged); std = sqrt(eigenvalue),
    clamped below at ``min_scale`` (m).
    """
    cov = np.asarray(cov, np.float64)
    lam, V = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    flip = np.linalg.det(V) < 0
    V[flip, :, 2] *= -1
    return quaternion_from_matrix(V), 0.5 * np.log(np.maximum(lam, min_scale**2))


def deform_gaussians(rotations: np.ndarray, log_scales: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deform Gaussians by their deformation gradients: Sigma' = F Sigma F^T.

    Args:
        rotations: [N, 4] quaternions (w, x, y, z); log_scales: [N, 3] log std (m).
        F: [N, 3, 3] deformation gradient at each Gaussian (world frame).
    Returns:
        (rotations [N, 4] w-first with w >= 0, log_scales [N, 3]) of the deformed Gaussians,
        ready for the 3DGS layout. The centres move separately (see interpolate_from_particles).
    """
    cov = covariance(rotations, log_scales)
    F = np.asarray(F, np.float64)
    return rotation_scale_from_covariance(F @ cov @ np.swapaxes(F, -1, -2))


def interpolation_weights(query: np.ndarray, rest_positions: np.ndarray, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The particles each query point follows and their weights, from the rest configuration.

    Args:
        query: [V, 3] points at rest (m, world).  rest_positions: [N, 3] particles at rest.
    Returns:
        (idx [V, k] particle indices, w [V, k] weights summing to one): a smooth kernel
        (1 - (d/h)^2)^2 of the distance d, with support h = 1.5 x the k-th neighbour's distance.
    """
    from physinteract.geometry.neighbors import knn

    dist, idx = knn(np.asarray(query, np.float64).reshape(-1, 3), np.asarray(rest_positions, np.float64), k)
    h = dist[:, -1:] * 1.5 + 1e-12
    w = np.clip(1.0 - (dist / h) ** 2, 0.0, None) ** 2
    return idx, w / w.sum(1, keepdims=True)


def interpolate_from_particles(query: np.ndarray, rest_positions: np.ndarray, positions: np.ndarray,
                               F: np.ndarray | None = None, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Move points with the particles they sit among.

    Args:
        query: [V, 3] points at rest (render-mesh vertices, Gaussian centres), m, world.
        rest_positions: [N, 3] particle positions at rest (m, world).
        positions: [N, 3] particle positions now.
        F: [N, 3, 3] particle deformation gradients now (None: estimated from the
            neighbours by least squares, for solvers that do not export F).
        k: neighbours used, weighted by :func:`interpolation_weights`.
    Returns:
        (positions [V, 3], F [V, 3, 3]) of the query points now: x = sum w_j (x_j + F_j (X - X_j)),
        F = sum w_j F_j. An affine motion x = A X + b (with F_j = A) is reproduced exactly.
    """
    query = np.asarray(query, np.float64).reshape(-1, 3)
    Xr = np.asarray(rest_positions, np.float64)
    x = np.asarray(positions, np.float64)
    if F is None:
        F = estimate_deformation_gradient(Xr, x, k=max(k, 8))
    F = np.asarray(F, np.float64)
    idx, w = interpolation_weights(query, Xr, k)
    dX = query[:, None, :] - Xr[idx]  # [V, k, 3]
    pred = x[idx] + np.einsum("vkij,vkj->vki", F[idx], dX)
    return np.einsum("vk,vki->vi", w, pred), np.einsum("vk,vkij->vij", w, F[idx])


def estimate_deformation_gradient(rest_positions: np.ndarray, positions: np.ndarray, k: int = 12) -> np.ndarray:
    """Least-squares F per particle from its k neighbours: min sum |dx - F dX|^2 ([N, 3, 3])."""
    from physinteract.geometry.neighbors import knn

    Xr = np.asarray(rest_positions, np.float64)
    x = np.asarray(positions, np.float64)
    _, idx = knn(Xr, Xr, k)
    dX = Xr[idx] - Xr[:, None, :]
    dx = x[idx] - x[:, None, :]
    A = np.einsum("nki,nkj->nij", dX, dX) + 1e-12 * np.eye(3)
    B = np.einsum("nki,nkj->nij", dx, dX)
    return B @ np.linalg.inv(A)
