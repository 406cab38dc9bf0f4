"""Spherical-harmonic colours: an orthonormal basis on the sphere, degree 0 = the 3DGS f_dc rule."""

from __future__ import annotations

import numpy as np
import torch

from physinteract.render import Camera, rgb_from_sh, rgb_from_sh_dc, sh_basis

DT = torch.float64


def test_sh_basis_is_orthonormal_on_the_sphere():
    """Integral over the sphere of Y_i Y_j = delta_ij for degrees 0..3 (Gauss-Legendre x uniform-phi quadrature, exact here)."""
    cos_t, w_t = np.polynomial.legendre.leggauss(12)
    phi = np.arange(16) * 2 * np.pi / 16
    ct, ph = np.meshgrid(cos_t, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    dirs = torch.tensor(np.stack([st * np.cos(ph), st * np.sin(ph), ct], -1).reshape(-1, 3), dtype=DT)
    weights = torch.tensor((w_t[:, None] * np.full(16, 2 * np.pi / 16)).reshape(-1), dtype=DT)
    y = sh_basis(dirs, 3)  # [M, 16]
    gram = (y * weights[:, None]).T @ y
    torch.testing.assert_close(gram, torch.eye(16, dtype=DT), rtol=0, atol=1e-12)


def test_degree_zero_sh_is_the_f_dc_rule_and_independent_of_view():
    """K = 1: rgb = 0.5 + C0 f_dc, whatever the viewing direction."""
    f_dc = torch.tensor([[0.3, -0.2, 1.1]], dtype=DT)
    for d in ([0.0, 0.0, 1.0], [0.6, 0.8, 0.0]):
        rgb = rgb_from_sh(f_dc[:, None, :], torch.tensor([d], dtype=DT))
        torch.testing.assert_close(rgb, rgb_from_sh_dc(f_dc))


def test_degree_one_colour_changes_linearly_with_view_direction():
    """A degree-1 coefficient on Y_1^0 = sqrt(3/4pi) z adds +c and -c seen from +z and -z: the colour is odd in d."""
    sh = torch.zeros(2, 4, 3, dtype=DT)
    sh[:, 2, 0] = 0.5  # red varies with the z of the view direction
    dirs = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]], dtype=DT)
    rgb = rgb_from_sh(sh, dirs)
    c = 0.5 * np.sqrt(3 / (4 * np.pi))
    torch.testing.assert_close(rgb[:, 0], torch.tensor([0.5 + c, 0.5 - c], dtype=DT))


def test_camera_center_is_minus_r_transpose_t():
    """world_to_camera maps the camera centre to the camera origin."""
    w2c = torch.eye(4, dtype=DT)
    w2c[:3, :3] = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=DT)
    w2c[:3, 3] = torch.tensor([0.2, -0.5, 3.0], dtype=DT)
    cam = Camera(torch.eye(3, dtype=DT), w2c, 4, 4)
    centre = cam.center()
    torch.testing.assert_close(w2c[:3, :3] @ centre + w2c[:3, 3], torch.zeros(3, dtype=DT))
