"""Image losses and regularisers of the joint material / interaction estimation.

Per-frame objective (the paper's):
    L = L1(I_hat, I) + lambda_ssim (1 - SSIM(I_hat, I)) + lambda_mask ||M_hat - M||^2
with rendered image I_hat and silhouette M_hat (from physinteract.render) against the
video frame I and its object mask M. Regularisers: kNN smoothness of log Young's modulus
over the particles, and a trajectory prior ||T - T0||^2.

Images are [H, W, 3] (channels last, as the renderer returns) or [B, 3, H, W], values in
[0, 1]. The torch functions are differentiable; ``psnr_np`` / ``ssim_np`` are numpy
metrics for reporting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

# SSIM constants of Wang et al. 2004: Gaussian window 11 x 11, sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


@dataclass
class FrameLossWeights:
    """Weights of the per-frame objective L1 + ssim (1 - SSIM) + mask ||M_hat - M||^2.

    Attributes:
        ssim: 0.2, the D-SSIM weight of 3DGS (whose photometric loss is 0.8 L1 + 0.2 D-SSIM,
            the same balance up to a common factor): L1 fixes colours per pixel, SSIM
            adds local structure (edges, texture) that L1 alone blurs.
        mask: 1.0. Both the mask term and L1 are per-pixel means of errors in [0, 1], so a pixel
            wrongly in or out of the silhouette costs as much as a pixel fully wrong in colour.
            The silhouette carries most of the deformation signal for weakly textured
            objects, hence a weight as large as the photometric term's.
    """

    ssim: float = 0.2
    mask: float = 1.0


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error over all elements."""
    _same_shape(pred, target, "l1_loss")
    return (pred - target).abs().mean()


def mask_loss(pred_alpha: Tensor, target_mask: Tensor) -> Tensor:
    """Mean squared silhouette error ||M_hat - M||^2 / (H W): rendered alpha [..., H, W] vs mask in [0, 1]."""
    _same_shape(pred_alpha, target_mask, "mask_loss")
    return (pred_alpha - target_mask.to(pred_alpha)).square().mean()


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / MSE)."""
    _same_shape(pred, target, "psnr")
    return 10.0 * torch.log10(data_range**2 / (pred - target).square().mean())


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1D Gaussian window [size], summing to 1 (the 2D window is its outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM (Wang et al. 2004) with an 11 x 11 Gaussian window (sigma 1.5), per channel.

    As in the reference implementation, local statistics are taken only where the window
    fits inside the image ('valid' filtering, no padding) and the map is averaged over
    positions and channels (and the batch).

    Args:
        pred, target: [H, W, 3] (channels last) or [B, C, H, W], H and W >= 11.
    """
    _same_shape(pred, target, "ssim")
    x, y = _as_bchw(pred), _as_bchw(target.to(pred))
    c = x.shape[1]
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim: images must be at least {SSIM_WINDOW} px on each side, got {list(pred.shape)}")
    g = torch.as_tensor(gaussian_window(), dtype=x.dtype, device=x.device)
    wx = g.reshape(1, 1, 1, -1).expand(c, 1, 1, -1)
    wy = g.reshape(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(t: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(t, wx, groups=c), wy, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    return s.mean()


def frame_loss(
    rgb: Tensor, rgb_target: Tensor, alpha: Tensor, mask_target: Tensor, weights: FrameLossWeights | None = None
) -> tuple[Tensor, dict[str, Tensor]]:
    """The per-frame objective L1 + w.ssim (1 - SSIM) + w.mask ||M_hat - M||^2.

    Args:
        rgb, rgb_target: [H, W, 3] rendered and observed colours in [0, 1].
        alpha, mask_target: [H, W] rendered silhouette and observed object mask in [0, 1].

    Returns:
        (total, terms) where terms holds the detached 'l1', 'ssim', 'mask' and 'psnr'.
    """
    weights = weights or FrameLossWeights()
    l1 = l1_loss(rgb, rgb_target)
    s = ssim(rgb, rgb_target)
    m = mask_loss(alpha, mask_target)
    total = l1 + weights.ssim * (1.0 - s) + weights.mask * m
    with torch.no_grad():
        terms = {"l1": l1.detach(), "ssim": s.detach(), "mask": m.detach(), "psnr": psnr(rgb, rgb_target)}
    return total, terms


def knn_graph(positions: Tensor, k: int = 8, chunk_elements: int = 1 << 24) -> Tensor:
    """Indices [N, k] of each point's k nearest other points (Euclidean), built in chunks.

    Args:
        positions: [N, 3] particle rest positions, metres.
        k: neighbours per point, 1 <= k < N.
        chunk_elements: size of the distance block computed at once (rows x N).
    """
    n = positions.shape[0]
    if positions.ndim != 2 or not 1 <= k < n:
        raise ValueError(f"knn_graph: need positions [N, D] with N > k >= 1, got shape {list(positions.shape)}, k={k}")
    x = positions.detach()
    rows = max(1, chunk_elements // n)
    out = []
    for begin in range(0, n, rows):
        d = torch.cdist(x[begin : begin + rows], x)  # [rows, N]
        own = torch.arange(begin, begin + d.shape[0], device=x.device)
        d[torch.arange(d.shape[0], device=x.device), own] = math.inf
        out.append(torch.topk(d, k, dim=1, largest=False).indices)
    return torch.cat(out, 0)


def smoothness_loss(values: Tensor, neighbours: Tensor, edge: float = 0.0) -> Tensor:
    """Mean over the kNN edges (i, j) of a penalty on v_i - v_j, e.g. v = log E per particle.

    ``edge`` = 0: the quadratic (v_i - v_j)^2. ``edge`` > 0: the Charbonnier penalty
    sqrt(d^2 + edge^2) - edge, quadratic for differences below ``edge`` and linear above, which
    keeps a field flat where the data do not ask for change yet lets it step between regions
    (total variation's edge-preserving behaviour, smooth at zero).

    Args:
        values: [N] per-particle field (use log Young's modulus, so the penalty is scale free).
        neighbours: [N, k] from :func:`knn_graph`.
        edge: the Charbonnier scale, in the units of ``values``.
    """
    if values.ndim != 1 or neighbours.ndim != 2 or neighbours.shape[0] != values.shape[0]:
        raise ValueError(f"smoothness_loss: need values [N] and neighbours [N, k], got {list(values.shape)}, {list(neighbours.shape)}")
    d = values[:, None] - values[neighbours]
    if edge <= 0.0:
        return d.square().mean()
    return ((d.square() + edge * edge).sqrt() - edge).mean()


def trajectory_loss(trajectory: Tensor, prior: Tensor) -> Tensor:
    """||T - T0||^2 per frame: mean over frames (and contact points) of the squared distance, m^2.

    Args:
        trajectory, prior: [F, ..., 3] positions in metres, world frame.
    """
    _same_shape(trajectory, prior, "trajectory_loss")
    return (trajectory - prior).square().sum(-1).mean()


def psnr_np(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of two images (numpy, for reporting); inf for identical images."""
    a, b = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    _same_shape(a, b, "psnr_np")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


def ssim_np(pred: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> float:
    """Mean SSIM (numpy, for reporting) of [H, W], [H, W, C] images; same definition as :func:`ssim`."""
    a, b = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    _same_shape(a, b, "ssim_np")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if a.ndim != 3 or min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"ssim_np: expected [H, W] or [H, W, C] images with H, W >= {SSIM_WINDOW}, got {list(a.shape)}")
    g = gaussian_window()

    def blur(t: np.ndarray) -> np.ndarray:  # valid separable filtering of [H, W, C]
        t = np.lib.stride_tricks.sliding_window_view(t, g.size, axis=0) @ g
        return np.lib.stride_tricks.sliding_window_view(t, g.size, axis=1) @ g

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def _as_bchw(img: Tensor) -> Tensor:
    if img.ndim == 4:
        return img
    if img.ndim == 3 and img.shape[-1] in (1, 3):
        return img.permute(2, 0, 1)[None]
    if img.ndim == 2:
        return img[None, None]
    raise ValueError(f"ssim: expected an image [H, W, 3], [H, W] or [B, C, H, W], got shape {list(img.shape)}")


def _same_shape(a: Tensor | np.ndarray, b: Tensor | np.ndarray, name: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name}: prediction shape {list(a.shape)} differs from target shape {list(b.shape)}")
