"""Camera conventions shared by both halves (numpy only).

The contract's cameras are OpenCV pinhole cameras: camera axes x right, y down,
z forward; ``u = fx * x / z + cx``, ``v = fy * y / z + cy`` in pixels, where
pixel (i, j) covers [i, i+1) x [j, j+1), so the image centre is (W/2, H/2).
Blender cameras look down their local -Z with +Y up; these helpers convert.
"""

from __future__ import annotations

import numpy as np

# Blender camera axes -> OpenCV camera axes (flip y and z).
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def world_to_camera_from_blender(matrix_world: np.ndarray) -> np.ndarray:
    """OpenCV world->camera [4, 4] from a Blender camera's ``matrix_world``
    (scale removed, so a scaled camera object still gives a rigid transform)."""
    m = np.asarray(matrix_world, np.float64).copy()
    r = m[:3, :3]
    m[:3, :3] = r / np.linalg.norm(r, axis=0, keepdims=True)
    return BLENDER_TO_OPENCV @ np.linalg.inv(m)


def blender_matrix_from_world_to_camera(world_to_camera: np.ndarray) -> np.ndarray:
    """Inverse of :func:`world_to_camera_from_blender`: a Blender ``matrix_world``."""
    return np.linalg.inv(BLENDER_TO_OPENCV @ np.asarray(world_to_camera, np.float64))


def intrinsics_from_blender(
    lens_mm: float,
    sensor_width_mm: float,
    sensor_height_mm: float,
    sensor_fit: str,
    width: int,
    height: int,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    pixel_aspect: float = 1.0,
) -> np.ndarray:
    """K [3, 3] in pixels for a Blender perspective camera (sensor_fit AUTO,
    HORIZONTAL or VERTICAL; pixel_aspect = pixel_aspect_y / pixel_aspect_x)."""
    fit = sensor_fit.upper()
    if fit == "AUTO":
        fit = "HORIZONTAL" if width * 1.0 >= height * pixel_aspect else "VERTICAL"
        sensor = sensor_width_mm
    else:
        sensor = sensor_width_mm if fit == "HORIZONTAL" else sensor_height_mm
    if fit == "HORIZONTAL":
        fx = lens_mm / sensor * width
        fy = fx / pixel_aspect
        size = width
    else:
        fy = lens_mm / sensor * height
        fx = fy * pixel_aspect
        size = height
    cx = width / 2.0 - shift_x * size
    cy = height / 2.0 + shift_y * size
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K [3, 3] of a ``size`` (width, height) px image, for the same camera's image resampled to
    ``to_size``: fx, cx scale with the width and fy, cy with the height (pixel edges stay put)."""
    K2 = np.array(K, np.float64)
    K2[0] *= to_size[0] / size[0]
    K2[1] *= to_size[1] / size[1]
    return K2


def project(K: np.ndarray, world_to_camera: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points [N, 3] -> (pixels [N, 2], depth z [N]) with OpenCV axes."""
    p = np.asarray(points, np.float64) @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]
    z = p[:, 2]
    uv = (p[:, :2] / z[:, None]) @ K[:2, :2].T + K[:2, 2]
    return uv, z


def unproject(uv: np.ndarray, z: np.ndarray, K: np.ndarray, world_to_camera: np.ndarray) -> np.ndarray:
    """World points [..., 3] (m) of pixels ``uv`` [..., 2] (contract convention, centres at +0.5) at camera depth
    ``z`` [...] (m): the inverse of ``project``. ``world_to_camera`` is [4, 4] or one per point [..., 4, 4]."""
    uv = np.asarray(uv, np.float64)
    rays = np.concatenate([uv, np.ones_like(uv[..., :1])], axis=-1) @ np.linalg.inv(np.asarray(K, np.float64)).T  # z = 1
    cam = np.asarray(z, np.float64)[..., None] * rays  # camera frame
    w2c = np.asarray(world_to_camera, np.float64)
    R, t = w2c[..., :3, :3], w2c[..., :3, 3]
    return np.einsum("...ji,...j->...i", R, cam - t)  # R^T (x - t)
