"""Single Gaussians render to their analytic EWA footprints (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physinteract.contract.camera import project
from physinteract.render import Camera, GaussianBatch, RenderConfig, covariance_from_quat_scale, render

DT = torch.float64
LOW_PASS = RenderConfig().low_pass


def _pixel_centres(width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    v, u = torch.meshgrid(torch.arange(height, dtype=DT) + 0.5, torch.arange(width, dtype=DT) + 0.5, indexing="ij")
    return u, v


def _analytic_alpha(u, v, centre, cov2d, opacity):
    """opacity * exp(-d^T S^-1 d / 2) for the image-space covariance S (px^2), with the renderer's clamps."""
    inv = torch.linalg.inv(cov2d)
    du, dv = u - centre[0], v - centre[1]
    alpha = opacity * torch.exp(-0.5 * (inv[0, 0] * du * du + 2 * inv[0, 1] * du * dv + inv[1, 1] * dv * dv))
    return alpha.clamp(max=RenderConfig().alpha_max)


def _check_footprint(rendered: torch.Tensor, analytic: torch.Tensor) -> None:
    """Equal to rounding where the analytic alpha is >= 1/255; elsewhere dropped, so off by < 1/255."""
    alpha_min = RenderConfig().alpha_min
    inside = analytic >= alpha_min
    assert inside.sum() > 50
    torch.testing.assert_close(rendered[inside], analytic[inside], rtol=0, atol=1e-12)
    assert (rendered[~inside] == 0).all()
    assert (rendered - analytic).abs().max() < alpha_min


def test_isotropic_gaussian_on_axis_has_std_f_s_over_z():
    """Isotropic std s at depth z on the optical axis -> image std sqrt((f s / z)^2 + low_pass), peak alpha = opacity."""
    f, s, z, opacity = 40.0, 0.1, 2.0, 0.8
    width, height = 33, 29  # odd sizes: the optical axis (W/2, H/2) hits a pixel centre
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=DT)
    camera = Camera(K, torch.eye(4, dtype=DT), width, height)
    g = GaussianBatch(
        means=torch.tensor([[0.0, 0.0, z]], dtype=DT),
        colors=torch.tensor([[0.2, 0.4, 0.6]], dtype=DT),
        opacities=torch.tensor([opacity], dtype=DT),
        covariances=(s * s * torch.eye(3, dtype=DT))[None],
    )
    bg = torch.tensor([1.0, 0.5, 0.0], dtype=DT)
    out = render(g, camera, bg)
    sigma2 = (f * s / z) ** 2 + LOW_PASS
    u, v = _pixel_centres(width, height)
    analytic = _analytic_alpha(u, v, (width / 2, height / 2), sigma2 * torch.eye(2, dtype=DT), opacity)
    _check_footprint(out.alpha, analytic)
    assert out.alpha[height // 2, width // 2] == torch.tensor(opacity, dtype=DT)
    # One Gaussian: colour = c alpha + bg (1 - alpha), depth = z wherever it is visible.
    expected_rgb = out.alpha[..., None] * g.colors[0] + (1 - out.alpha[..., None]) * bg
    torch.testing.assert_close(out.rgb, expected_rgb, rtol=0, atol=1e-14)
    torch.testing.assert_close(out.depth[out.alpha > 0], torch.full_like(out.depth[out.alpha > 0], z))
    assert (out.depth[out.alpha == 0] == 0).all()


def test_rotated_anisotropic_gaussian_facing_camera():
    """Flat Gaussian (s1, s2, ~0) rolled by theta about the optical axis -> (f/z)^2 R diag(s1^2, s2^2) R^T + low_pass."""
    f, z, opacity, theta = 50.0, 3.0, 0.6, math.radians(30)
    s1, s2 = 0.3, 0.1
    width, height = 48, 40
    K = torch.tensor([[f, 0, 24.3], [0, f, 19.6], [0, 0, 1]], dtype=DT)
    camera = Camera(K, torch.eye(4, dtype=DT), width, height)
    quat = torch.tensor([[math.cos(theta / 2), 0, 0, math.sin(theta / 2)]], dtype=DT)  # roll about camera z
    g = GaussianBatch(
        means=torch.tensor([[0.0, 0.0, z]], dtype=DT),
        colors=torch.ones(1, 3, dtype=DT),
        opacities=torch.tensor([opacity], dtype=DT),
        quats=quat,
        scales=torch.tensor([[s1, s2, 1e-6]], dtype=DT),
    )
    out = render(g, camera)
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=DT)
    cov2d = (f / z) ** 2 * rot @ torch.diag(torch.tensor([s1 * s1, s2 * s2], dtype=DT)) @ rot.T + LOW_PASS * torch.eye(2, dtype=DT)
    u, v = _pixel_centres(width, height)
    # On the optical axis the projection's depth column has no effect: the mean projects to (cx, cy).
    _check_footprint(out.alpha, _analytic_alpha(u, v, (24.3, 19.6), cov2d, opacity))


def test_off_axis_mean_projects_like_the_contract_camera():
    """The alpha-weighted centroid of a small Gaussian lands on contract.camera.project of its mean (OpenCV, +0.5 centres)."""
    rng = np.random.default_rng(5)
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot *= np.sign(np.linalg.det(rot))
    w2c = np.eye(4)
    w2c[:3, :3] = rot
    w2c[:3, 3] = [0.1, -0.2, 4.0]
    K = np.array([[70.0, 0, 31.0], [0, 65.0, 26.0], [0, 0, 1]])
    mean_cam = np.array([0.41, -0.3, 3.5])  # off axis, in camera coordinates
    mean_world = rot.T @ (mean_cam - w2c[:3, 3])
    camera = Camera.from_numpy(K, w2c, 64, 52, dtype=DT)
    g = GaussianBatch(
        means=torch.tensor(mean_world[None], dtype=DT),
        colors=torch.ones(1, 3, dtype=DT),
        opacities=torch.tensor([0.9], dtype=DT),
        covariances=(0.02**2 * torch.eye(3, dtype=DT))[None],
    )
    alpha = render(g, camera).alpha
    u, v = _pixel_centres(64, 52)
    centroid = np.array([float((alpha * u).sum() / alpha.sum()), float((alpha * v).sum() / alpha.sum())])
    uv, depth = project(K, w2c, mean_world[None])
    # The 1/255 cut is symmetric about the mean, so the centroid is exact up to pixel sampling (sigma ~0.6 px).
    np.testing.assert_allclose(centroid, uv[0], atol=0.02)
    np.testing.assert_allclose(depth[0], 3.5)
    row, col = divmod(int(torch.argmax(alpha)), 64)
    assert (col, row) == (int(uv[0, 0]), int(uv[0, 1]))


def test_isotropic_covariance_equals_quat_scale_form():
    """R diag(s^2) R^T with equal scales is s^2 I for any rotation."""
    quats = torch.randn(5, 4, dtype=DT)
    cov = covariance_from_quat_scale(quats, torch.full((5, 3), 0.3, dtype=DT))
    torch.testing.assert_close(cov, 0.09 * torch.eye(3, dtype=DT).expand(5, 3, 3))


def test_blender_camera_sees_world_up_at_the_top_and_world_x_to_the_right():
    """A Blender camera at (0, -5, 0) looking along +Y (rotated 90 deg about X): the origin lands on the image
    centre at depth 5 m, a point above it (+Z) higher in the image (smaller v), one at +X to the right."""
    from physinteract.contract.camera import intrinsics_from_blender, world_to_camera_from_blender
    from physinteract.contract.job import Camera as ContractCamera

    matrix_world = np.array([[1.0, 0, 0, 0], [0, 0, -1, -5], [0, 1, 0, 0], [0, 0, 0, 1]])  # RotX(90 deg), then move
    K = intrinsics_from_blender(50.0, 36.0, 24.0, "AUTO", 41, 31)
    contract = ContractCamera(41, 31, K, np.stack([np.eye(4), world_to_camera_from_blender(matrix_world)]))
    camera = Camera.from_contract(contract, frame=1, dtype=DT)

    def peak(point: list[float]) -> tuple[int, int, float]:
        g = GaussianBatch(
            means=torch.tensor([point], dtype=DT),
            colors=torch.ones(1, 3, dtype=DT),
            opacities=torch.tensor([0.9], dtype=DT),
            covariances=(0.01**2 * torch.eye(3, dtype=DT))[None],
        )
        out = render(g, camera)
        row, col = divmod(int(torch.argmax(out.alpha)), camera.width)
        return col, row, float(out.depth[row, col])

    assert peak([0.0, 0.0, 0.0]) == (20, 15, pytest.approx(5.0))
    col, row, _ = peak([0.0, 0.0, 0.5])
    assert col == 20 and row < 15
    col, row, _ = peak([0.5, 0.0, 0.0])
    assert col > 20 and row == 15
