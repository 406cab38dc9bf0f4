"""Image losses and regularisers against known values and an independent SSIM written from the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from physinteract.estimate.losses import (
    FrameLossWeights,
    frame_loss,
    knn_graph,
    l1_loss,
    mask_loss,
    psnr,
    psnr_np,
    smoothness_loss,
    ssim,
    ssim_np,
    trajectory_loss,
)

DT = torch.float64


def _ssim_by_the_formula(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. 2004, eq. (13) with the 11 x 11 Gaussian window (sigma 1.5, normalised to sum 1), evaluated
    window by window at every position where it fits, then averaged over positions and channels."""
    c1, c2 = 0.01**2, 0.03**2
    r = np.arange(11) - 5
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    values = []
    for ch in range(x.shape[2]):
        for i in range(x.shape[0] - 10):
            for j in range(x.shape[1] - 10):
                px, py = x[i : i + 11, j : j + 11, ch], y[i : i + 11, j : j + 11, ch]
                mx, my = (w * px).sum(), (w * py).sum()
                sx2 = (w * (px - mx) ** 2).sum()
                sy2 = (w * (py - my) ** 2).sum()
                sxy = (w * (px - mx) * (py - my)).sum()
                values.append((2 * mx * my + c1) * (2 * sxy + c2) / ((mx**2 + my**2 + c1) * (sx2 + sy2 + c2)))
    return float(np.mean(values))


def _images(seed: int, shape=(23, 19, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    y = np.clip(0.7 * x + 0.2 * rng.random(shape) + 0.05, 0, 1)  # correlated, different
    return x, y


def test_ssim_matches_the_formula_window_by_window():
    """torch ssim and numpy ssim_np equal a direct per-window evaluation of Wang et al.'s SSIM."""
    x, y = _images(0)
    expected = _ssim_by_the_formula(x, y)
    assert 0.2 < expected < 0.95
    assert ssim(torch.tensor(x), torch.tensor(y)).item() == pytest.approx(expected, abs=1e-12)
    assert ssim_np(x, y) == pytest.approx(expected, abs=1e-12)
    # [B, C, H, W] layout gives the same number.
    bchw = ssim(torch.tensor(x).permute(2, 0, 1)[None], torch.tensor(y).permute(2, 0, 1)[None])
    assert bchw.item() == pytest.approx(expected, abs=1e-12)


def test_ssim_of_an_image_with_itself_is_one():
    """SSIM(x, x) = 1 (both factors are (a + c) / (a + c))."""
    x, _ = _images(1)
    assert ssim(torch.tensor(x), torch.tensor(x)).item() == pytest.approx(1.0, abs=1e-12)
    assert ssim_np(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    """Constant images a and b: variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b = 0.3, 0.7
    expected = (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    x, y = torch.full((16, 16, 3), a, dtype=DT), torch.full((16, 16, 3), b, dtype=DT)
    assert ssim(x, y).item() == pytest.approx(expected, rel=1e-10)
    assert ssim_np(x.numpy(), y.numpy()) == pytest.approx(expected, rel=1e-10)


def test_ssim_gradient_matches_finite_differences():
    """d SSIM / d image equals central differences (float64)."""
    x, y = _images(2, (13, 12, 1))
    xt = torch.tensor(x[..., 0], requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ssim(t, torch.tensor(y[..., 0])), (xt,), eps=1e-6, atol=1e-8)


def test_psnr_of_a_constant_offset_is_minus_10_log10_d_squared():
    """PSNR(x + d, x) on [0, 1] images = -10 log10(d^2) dB."""
    x = torch.rand(20, 20, 3, dtype=DT) * 0.5
    for d in (0.1, 0.01, 0.25):
        assert psnr(x + d, x).item() == pytest.approx(-10 * math.log10(d * d), rel=1e-10)
        assert psnr_np((x + d).numpy(), x.numpy()) == pytest.approx(-10 * math.log10(d * d), rel=1e-10)
    assert psnr_np(x.numpy(), x.numpy()) == math.inf


def test_frame_loss_combines_l1_ssim_and_mask_terms():
    """L = L1 + w_ssim (1 - SSIM) + w_mask mean (M_hat - M)^2 with known L1 and mask values."""
    rgb_target = torch.full((16, 16, 3), 0.5, dtype=DT)
    rgb = rgb_target + 0.1
    mask = torch.zeros(16, 16, dtype=DT)
    mask[:8] = 1.0  # half the pixels inside
    alpha = torch.full((16, 16), 0.5, dtype=DT)  # error 0.5 everywhere
    weights = FrameLossWeights(ssim=0.3, mask=2.0)
    total, terms = frame_loss(rgb, rgb_target, alpha, mask, weights)
    assert l1_loss(rgb, rgb_target).item() == pytest.approx(0.1)
    assert mask_loss(alpha, mask).item() == pytest.approx(0.25)
    ssim_constant = (2 * 0.6 * 0.5 + 1e-4) / (0.36 + 0.25 + 1e-4)
    assert terms["ssim"].item() == pytest.approx(ssim_constant)
    assert total.item() == pytest.approx(0.1 + 0.3 * (1 - ssim_constant) + 2.0 * 0.25)
    assert terms["psnr"].item() == pytest.approx(20.0)


def test_knn_graph_equals_brute_force_neighbours():
    """Chunked kNN returns the same neighbour sets as sorting the full distance matrix (self excluded)."""
    x = torch.rand(300, 3, generator=torch.Generator().manual_seed(0), dtype=DT)
    nbr = knn_graph(x, k=6, chunk_elements=3000)  # 10 rows per chunk
    d = torch.cdist(x, x)
    d.fill_diagonal_(math.inf)
    expected = torch.argsort(d, dim=1)[:, :6]
    assert torch.equal(torch.sort(nbr, 1).values, torch.sort(expected, 1).values)


def test_smoothness_of_a_linear_field_on_a_chain():
    """Points on a line with spacing h, log E = g x, k = 2: interior edges differ by g h, the ends by g h and 2 g h."""
    n, h, g = 10, 0.1, 3.0
    x = torch.zeros(n, 3, dtype=DT)
    x[:, 0] = h * torch.arange(n, dtype=DT)
    nbr = knn_graph(x, k=2)
    value = smoothness_loss(g * x[:, 0], nbr)
    expected = ((n - 2) * 2 * (g * h) ** 2 + 2 * ((g * h) ** 2 + (2 * g * h) ** 2)) / (2 * n)
    assert value.item() == pytest.approx(expected, rel=1e-10)
    assert smoothness_loss(torch.full((n,), 7.0, dtype=DT), nbr).item() == 0.0


def test_trajectory_loss_is_mean_squared_distance():
    """||T - T0||^2 per frame: a constant offset (3, 4, 0) cm gives 25 cm^2 = 0.0025 m^2."""
    t0 = torch.rand(12, 2, 3, dtype=DT)
    assert trajectory_loss(t0 + torch.tensor([0.03, 0.04, 0.0], dtype=DT), t0).item() == pytest.approx(0.0025)


def test_losses_reject_mismatched_shapes():
    """Shape errors name the function and both shapes."""
    with pytest.raises(ValueError, match=r"l1_loss: prediction shape \[4, 4, 3\] differs from target shape \[4, 4\]"):
        l1_loss(torch.zeros(4, 4, 3), torch.zeros(4, 4))
    with pytest.raises(ValueError, match="at least 11 px"):
        ssim(torch.zeros(8, 8, 3), torch.zeros(8, 8, 3))
