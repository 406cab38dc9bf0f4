"""3D Gaussians and pinhole cameras as torch tensors (the renderer's inputs).

Frames: Gaussian means are in the world frame (metres, Blender's +Z up world);
cameras follow the contract's OpenCV pinhole convention (camera x right, y down,
z forward; pixel (i, j) covers [i, i+1) x [j, j+1), so pixel centres sit at +0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# Zeroth-order real spherical harmonic, 1 / (2 sqrt(pi)); 3DGS stores colour as
# f_dc with rgb = 0.5 + SH_C0 * f_dc.
SH_C0 = 0.28209479177387814


def rgb_from_sh_dc(f_dc: Tensor) -> Tensor:
    """RGB in [0, 1] (unclamped) from 3DGS degree-0 SH coefficients ``f_dc`` [..., 3]."""
    return 0.5 + SH_C0 * f_dc


def sh_dc_from_rgb(rgb: Tensor) -> Tensor:
    """Inverse of :func:`rgb_from_sh_dc`."""
    return (rgb - 0.5) / SH_C0


def sh_basis(directions: Tensor, degree: int) -> Tensor:
    """Real spherical harmonics [N, (degree + 1)^2] at unit ``directions`` [N, 3], degree <= 3.

    Orthonormal on the sphere, ordered and signed as 3DGS stores its coefficients
    (f_dc then f_rest per degree, m = -l..l).
    """
    if not 0 <= degree <= 3:
        raise ValueError(f"sh_basis: degree must be 0..3, got {degree}")
    x, y, z = directions.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        c1 = 0.4886025119029199  # sqrt(3 / (4 pi))
        out += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        c2 = (1.0925484305920792, 0.31539156525252005, 0.5462742152960396)
        out += [c2[0] * x * y, -c2[0] * y * z, c2[1] * (2 * zz - xx - yy), -c2[0] * x * z, c2[2] * (xx - yy)]
    if degree >= 3:
        c3 = (0.5900435899266435, 2.890611442640554, 0.4570457994644658, 0.3731763325901154, 1.445305721320277)
        out += [
            -c3[0] * y * (3 * xx - yy),
            c3[1] * x * y * z,
            -c3[2] * y * (4 * zz - xx - yy),
            c3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            -c3[2] * x * (4 * zz - xx - yy),
            c3[4] * z * (xx - yy),
            -c3[0] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, -1)


def rgb_from_sh(sh: Tensor, directions: Tensor) -> Tensor:
    """View-dependent RGB [N, 3] = 0.5 + sum_k sh[:, k] Y_k(d), clamped at 0 as in 3DGS.

    Args:
        sh: [N, K, 3] coefficients, K = (degree + 1)^2 in 3DGS order (K = 1: f_dc only).
        directions: [N, 3] unit vectors from the camera centre to the Gaussians (world frame).
    """
    degree = round(sh.shape[1] ** 0.5) - 1
    if (degree + 1) ** 2 != sh.shape[1]:
        raise ValueError(f"rgb_from_sh: sh must be [N, (degree+1)^2, 3], got {list(sh.shape)}")
    return (0.5 + (sh_basis(directions, degree)[..., None] * sh).sum(1)).clamp_min(0.0)


def rotation_from_quat(quats: Tensor) -> Tensor:
    """Rotation matrices [N, 3, 3] from quaternions ``quats`` [N, 4] (w, x, y, z; normalised here)."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def covariance_from_quat_scale(quats: Tensor, scales: Tensor) -> Tensor:
    """3D covariances Sigma = R S S^T R^T [N, 3, 3] in m^2.

    Args:
        quats: [N, 4] rotations (w, x, y, z), any norm (normalised here).
        scales: [N, 3] standard deviations along the rotated axes, metres.
    """
    m = rotation_from_quat(quats) * scales[..., None, :]  # R S
    return m @ m.transpose(-1, -2)


@dataclass
class GaussianBatch:
    """N 3D Gaussians in the world frame.

    Give the shape either as ``covariances`` or as ``quats`` + ``scales``.

    Attributes:
        means: [N, 3] centres, metres, world frame.
        colors: [N, 3] linear RGB in [0, 1] (see :func:`rgb_from_sh_dc` for 3DGS f_dc).
        opacities: [N] peak opacity in [0, 1] (already through the sigmoid).
        covariances: [N, 3, 3] m^2, world frame, symmetric positive definite.
        quats: [N, 4] (w, x, y, z) rotations of the principal axes.
        scales: [N, 3] standard deviations along the principal axes, metres.
    """

    means: Tensor
    colors: Tensor
    opacities: Tensor
    covariances: Tensor | None = None
    quats: Tensor | None = None
    scales: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        _check_shape("means", self.means, (n, 3))
        _check_shape("colors", self.colors, (n, 3))
        _check_shape("opacities", self.opacities, (n,))
        if self.covariances is not None:
            _check_shape("covariances", self.covariances, (n, 3, 3))
        elif self.quats is not None and self.scales is not None:
            _check_shape("quats", self.quats, (n, 4))
            _check_shape("scales", self.scales, (n, 3))
        else:
            raise ValueError("GaussianBatch: give either covariances [N, 3, 3] or quats [N, 4] and scales [N, 3]")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    def covariance(self) -> Tensor:
        """World-frame covariances [N, 3, 3] in m^2 (built from quats/scales when needed)."""
        if self.covariances is not None:
            return self.covariances
        assert self.quats is not None and self.scales is not None
        return covariance_from_quat_scale(self.quats, self.scales)


@dataclass
class Camera:
    """OpenCV pinhole camera (camera x right, y down, z forward).

    ``u = fx * x / z + cx``, ``v = fy * y / z + cy`` in pixels; pixel (i, j) covers
    [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5).

    Attributes:
        K: [3, 3] intrinsics in pixels.
        world_to_camera: [4, 4] rigid transform, metres.
        width, height: image size in pixels.
    """

    K: Tensor
    world_to_camera: Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        _check_shape("K", self.K, (3, 3))
        _check_shape("world_to_camera", self.world_to_camera, (4, 4))
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Camera: width and height must be positive, got {self.width}x{self.height}")

    def center(self) -> Tensor:
        """Camera centre [3] in the world frame, metres (-R^T t)."""
        rot, trans = self.world_to_camera[:3, :3], self.world_to_camera[:3, 3]
        return -rot.T @ trans

    @classmethod
    def from_numpy(
        cls,
        K: np.ndarray,
        world_to_camera: np.ndarray,
        width: int,
        height: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> Camera:
        return cls(
            torch.as_tensor(np.asarray(K, np.float64), dtype=dtype, device=device),
            torch.as_tensor(np.asarray(world_to_camera, np.float64), dtype=dtype, device=device),
            int(width),
            int(height),
        )

    @classmethod
    def from_contract(cls, camera: object, frame: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Camera:
        """Frame ``frame`` of a ``physinteract.contract.job.Camera`` (K [3,3], world_to_camera [F,4,4])."""
        K = camera.K  # type: ignore[attr-defined]
        w2c = camera.world_to_camera[frame]  # type: ignore[attr-defined]
        return cls.from_numpy(K, w2c, camera.width, camera.height, dtype, device)  # type: ignore[attr-defined]


def _check_shape(name: str, t: Tensor, shape: tuple[int, ...]) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape {list(shape)}, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: expected shape {list(shape)}, got {list(t.shape)}")
