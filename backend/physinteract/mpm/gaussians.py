"""Deforming 3D Gaussians with the simulation's deformation gradient (numpy)."""

from __future__ import annotations

import numpy as np


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """[V, 4] unit quaternions (w, x, y, z) -> [V, 3, 3] rotation matrices."""
    q = np.asarray(q, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    w, x, y, z = q.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """[V, 3, 3] rotations -> [V, 4] unit quaternions (w, x, y, z) with w >= 0."""
    R = np.asarray(R, np.float64)
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    q = np.stack(
        [
            np.sqrt(np.maximum(0.0, 1 + m00 + m11 + m22)) / 2,
            np.sqrt(np.maximum(0.0, 1 + m00 - m11 - m22)) / 2,
            np.sqrt(np.maximum(0.0, 1 - m00 + m11 - m22)) / 2,
            np.sqrt(np.maximum(0.0, 1 - m00 - m11 + m22)) / 2,
        ],
        axis=1,
    )
    q[:, 1] = np.copysign(q[:, 1], R[:, 2, 1] - R[:, 1, 2])
    q[:, 2] = np.copysign(q[:, 2], R[:, 0, 2] - R[:, 2, 0])
    q[:, 3] = np.copysign(q[:, 3], R[:, 1, 0] - R[:, 0, 1])
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def deform_gaussians(F: np.ndarray, rotations: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covariance R S^2 R^T -> F R S^2 R^T F^T, returned again as rotation and scales.

    Args:
        F: [V, 3, 3] deformation gradients.  rotations: [V, 4] (w, x, y, z).  scales: [V, 3] m.
    Returns:
        rotations [V, 4] (w, x, y, z) and scales [V, 3] (m) of the deformed Gaussians.
    """
    A = np.asarray(F, np.float64) @ quat_to_matrix(rotations) * np.asarray(scales, np.float64)[:, None, :]
    U, sig, _ = np.linalg.svd(A)  # F R S = U diag(sig) V^T  ->  covariance U diag(sig^2) U^T
    flip = np.linalg.det(U) < 0
    U[flip, :, 2] *= -1
    return matrix_to_quat(U), sig
