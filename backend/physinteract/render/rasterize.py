"""Differentiable 3D Gaussian splatting (EWA) in PyTorch: RGB, silhouette and depth.

Pipeline (as in 3DGS, Kerbl et al. 2023; EWA splatting, Zwicker et al. 2001):

1. ``project_gaussians``: world -> OpenCV camera, 2D mean ``(u, v)`` in pixels and the
   2D covariance ``J W Sigma W^T J^T + low_pass * I`` where ``J`` is the Jacobian of the
   perspective projection at the mean.
2. Rasterise: at each pixel centre ``p`` the Gaussian's alpha is
   ``alpha_i = min(opacity_i * exp(-0.5 d^T S^-1 d), alpha_max)`` with ``d = p - (u, v)``;
   alphas up to ``alpha_min`` are dropped, which gives every Gaussian a finite support
   (the ellipse ``d^T S^-1 d <= 2 ln(opacity / alpha_min)``, at most 3.33 sigma).
   Gaussians are composited front to back in order of camera depth:
   ``w_i = alpha_i prod_{j<i} (1 - alpha_j)``, ``rgb = sum w_i c_i + T bg``,
   ``alpha = 1 - T``, ``depth = sum w_i z_i / alpha`` with ``T = prod (1 - alpha_j)``.

Twins (same outputs and gradients, compared by tests/render):

* ``render``: tiles of ``tile_size`` pixels, each with the depth-ordered list of the
  Gaussians whose support touches it; the tiles are composited in batches of similar
  list length by ``_CompositeTiles``, an autograd Function with a hand-written backward
  that recomputes the alphas instead of storing them (memory stays at one batch).
  On CUDA, with gsplat importable, ``render`` hands over to gsplat instead.
* ``_render_reference``: every Gaussian at every pixel ([H*W, N] tensors), plain autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .gaussians import Camera, GaussianBatch


@dataclass
class RenderConfig:
    """Rasteriser settings (defaults are 3DGS's).

    Attributes:
        low_pass: px^2 added to the diagonal of every projected 2D covariance (EWA's
            screen-space low-pass filter, 0.3 as in 3DGS): a Gaussian smaller than a
            pixel still spans about a pixel, so it cannot fall between pixel centres.
        alpha_max: clamp of a single Gaussian's alpha (0.99 as in 3DGS) so that
            ``1 - alpha > 0`` and the transmittance stays invertible in the backward pass.
        alpha_min: per-pixel alphas up to this are dropped (1/255 as in 3DGS); this
            bounds each Gaussian's footprint and so enables tile culling. Must be > 0.
        near: m, Gaussians whose mean has camera depth z <= near are not drawn.
        tile_size: px, side of the square tiles of the torch path; 8 beats 16 on the CPU for
            footprints of a few pixels (less work on pixels a Gaussian does not reach).
        batch_elements: pixel x Gaussian pairs composited at once by the fast path
            (bounds its working memory: about 15 arrays of this many elements).
        backend: "auto" (gsplat for CUDA tensors when importable, else torch), "torch" or "gsplat".
    """

    low_pass: float = 0.3
    alpha_max: float = 0.99
    alpha_min: float = 1.0 / 255.0
    near: float = 0.01
    tile_size: int = 8
    batch_elements: int = 1 << 21
    backend: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha_min < self.alpha_max < 1.0:
            raise ValueError(f"RenderConfig: need 0 < alpha_min < alpha_max < 1, got {self.alpha_min}, {self.alpha_max}")
        if self.low_pass < 0.0 or self.near <= 0.0 or self.tile_size < 1 or self.batch_elements < 1:
            raise ValueError("RenderConfig: low_pass >= 0, near > 0, tile_size >= 1 and batch_elements >= 1 required")
        if self.backend not in ("auto", "torch", "gsplat"):
            raise ValueError(f"RenderConfig.backend: expected 'auto', 'torch' or 'gsplat', got {self.backend!r}")


@dataclass
class RenderOutput:
    """Rendered images, row = v (y down), column = u (x right).

    Attributes:
        rgb: [H, W, 3] composited colour over the background.
        alpha: [H, W] accumulated opacity (the soft silhouette), in [0, 1).
        depth: [H, W] m, expected camera z of the visible Gaussians (sum w_i z_i / alpha), 0 where alpha = 0.
    """

    rgb: Tensor
    alpha: Tensor
    depth: Tensor


@dataclass
class Projected:
    """Gaussians projected to one camera (N as in the batch; culled ones have opacity 0).

    Attributes:
        uv: [N, 2] px, 2D means (pixel centres at +0.5).
        depth: [N] m, camera z of the means.
        conic: [N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]], 1/px^2.
        opacity: [N] opacity, 0 for culled Gaussians.
        colors: [N, 3].
        extent: [N, 2] px, half sizes of the support's bounding box (no gradient).
    """

    uv: Tensor
    depth: Tensor
    conic: Tensor
    opacity: Tensor
    colors: Tensor
    extent: Tensor


def project_gaussians(gaussians: GaussianBatch, camera: Camera, config: RenderConfig) -> Projected:
    """EWA projection of world-frame Gaussians into ``camera``.

    Differentiable in the Gaussians and in the camera (K and world_to_camera; K's skew
    entry is ignored, as for every camera the contract produces).
    """
    w2c = camera.world_to_camera.to(gaussians.means)
    K = camera.K.to(gaussians.means)
    rot, trans = w2c[:3, :3], w2c[:3, 3]
    p = gaussians.means @ rot.T + trans  # [N, 3] m, camera frame
    z = p[:, 2]
    visible = z > config.near
    zs = torch.where(visible, z, torch.ones_like(z))  # keeps culled Gaussians finite
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u = fx * p[:, 0] / zs + cx
    v = fy * p[:, 1] / zs + cy
    # As in 3DGS, the Jacobian of Gaussians far outside the view is evaluated at a point
    # clamped to 15 % of the image size beyond its border, which keeps their footprints finite.
    w, h = camera.width, camera.height
    kx, ky = K.detach()[0], K.detach()[1]
    xz = (p[:, 0] / zs).clamp(float((-0.15 * w - kx[2]) / kx[0]), float((1.15 * w - kx[2]) / kx[0]))
    yz = (p[:, 1] / zs).clamp(float((-0.15 * h - ky[2]) / ky[1]), float((1.15 * h - ky[2]) / ky[1]))
    zero = torch.zeros_like(zs)
    jac = torch.stack(
        [torch.stack([fx / zs, zero, -fx * xz / zs], -1), torch.stack([zero, fy / zs, -fy * yz / zs], -1)], -2
    )  # [N, 2, 3] d(u, v)/d(camera xyz)
    m = jac @ rot  # [N, 2, 3]
    cov2d = m @ gaussians.covariance() @ m.transpose(-1, -2)  # [N, 2, 2] px^2
    sxx = cov2d[:, 0, 0] + config.low_pass
    syy = cov2d[:, 1, 1] + config.low_pass
    sxy = 0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0])
    det = (sxx * syy - sxy * sxy).clamp_min(1e-12)
    conic = torch.stack([syy / det, -sxy / det, sxx / det], -1)
    opacity = torch.where(visible, gaussians.opacities, torch.zeros_like(gaussians.opacities))
    with torch.no_grad():
        # Support: opacity * exp(-m2 / 2) >= alpha_min  <=>  m2 <= 2 ln(opacity / alpha_min);
        # the ellipse d^T S^-1 d <= m2 has the bounding box half sizes sqrt(m2 * S_xx), sqrt(m2 * S_yy).
        m2 = 2.0 * torch.log((opacity / config.alpha_min).clamp_min(1.0))
        extent = torch.stack([(m2 * sxx).clamp_min(0).sqrt(), (m2 * syy).clamp_min(0).sqrt()], -1)
    return Projected(torch.stack([u, v], -1), z, conic, opacity, gaussians.colors, extent)


def render(gaussians: GaussianBatch, camera: Camera, background: Tensor | None = None, config: RenderConfig | None = None) -> RenderOutput:
    """Render ``gaussians`` seen by ``camera`` (differentiable in every Gaussian attribute).

    Args:
        gaussians: N Gaussians, world frame.
        camera: OpenCV pinhole camera.
        background: [3] colour behind the Gaussians (default black).
        config: rasteriser settings (default :class:`RenderConfig`).

    Returns:
        RenderOutput with rgb [H, W, 3], alpha [H, W] and depth [H, W] (m).
    """
    config = config or RenderConfig()
    bg = _background(background, gaussians.means)
    if _use_gsplat(config, gaussians.means):
        return _render_gsplat(gaussians, camera, bg, config)
    proj = project_gaussians(gaussians, camera, config)
    return _finish(_rasterize_tiles(proj, camera.width, camera.height, bg, config))


def _render_reference(
    gaussians: GaussianBatch, camera: Camera, background: Tensor | None = None, config: RenderConfig | None = None
) -> RenderOutput:
    """Reference twin of :func:`render`: dense [H*W, N] evaluation, plain autograd, CPU or any device."""
    config = config or RenderConfig()
    bg = _background(background, gaussians.means)
    proj = project_gaussians(gaussians, camera, config)
    return _finish(_rasterize_dense(proj, camera.width, camera.height, bg, config))


def _use_gsplat(config: RenderConfig, means: Tensor) -> bool:
    if config.backend == "torch":
        return False
    if config.backend == "gsplat":
        if not means.is_cuda or not gsplat_available():
            raise RuntimeError("RenderConfig.backend='gsplat' needs CUDA tensors and an importable gsplat")
        return True
    return means.is_cuda and gsplat_available()


def gsplat_available() -> bool:
    """True when the gsplat package (CUDA rasteriser) can be imported."""
    try:
        import gsplat  # noqa: F401
    except ImportError:
        return False
    return True


def _render_gsplat(gaussians: GaussianBatch, camera: Camera, bg: Tensor, config: RenderConfig) -> RenderOutput:
    """Fast twin on CUDA: gsplat's rasteriser with the same conventions (OpenCV camera,
    pixel centres at +0.5, eps2d = low_pass, alpha clamps 1/255 and 0.99)."""
    import gsplat

    if gaussians.covariances is not None:
        shape = {"quats": None, "scales": None, "covars": gaussians.covariances}
    else:
        shape = {"quats": gaussians.quats, "scales": gaussians.scales}
    colors, alphas, _ = gsplat.rasterization(
        means=gaussians.means,
        opacities=gaussians.opacities,
        colors=gaussians.colors,
        viewmats=camera.world_to_camera.to(gaussians.means)[None],
        Ks=camera.K.to(gaussians.means)[None],
        width=camera.width,
        height=camera.height,
        near_plane=config.near,
        eps2d=config.low_pass,
        render_mode="RGB+D",
        packed=False,
        **shape,
    )
    alpha = alphas[0, ..., 0]
    out = torch.cat([colors[0, ..., :3] + (1.0 - alpha[..., None]) * bg, alpha[..., None], colors[0, ..., 3:4]], -1)
    return _finish(out)


def _background(background: Tensor | None, like: Tensor) -> Tensor:
    if background is None:
        return torch.zeros(3, dtype=like.dtype, device=like.device)
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    if bg.shape != (3,):
        raise ValueError(f"background: expected shape [3], got {list(bg.shape)}")
    return bg


def _finish(out: Tensor) -> RenderOutput:
    """[H, W, 5] (rgb, alpha, sum w z) -> RenderOutput with depth normalised by alpha."""
    alpha = out[..., 3]
    depth = torch.where(alpha > 0, out[..., 4] / alpha.clamp_min(1e-12), torch.zeros_like(alpha))
    return RenderOutput(out[..., :3], alpha, depth)


def _pixel_alpha(dx: Tensor, dy: Tensor, conic: Tensor, opacity: Tensor, config: RenderConfig) -> Tensor:
    """alpha = min(opacity exp(-d^T S^-1 d / 2), alpha_max), 0 where that is <= alpha_min (broadcasting)."""
    a, b, c = conic.unbind(-1)
    raw = opacity * torch.exp(-0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy)
    return torch.where(raw > config.alpha_min, raw.clamp(max=config.alpha_max), torch.zeros_like(raw))


def _rasterize_dense(proj: Projected, width: int, height: int, bg: Tensor, config: RenderConfig) -> Tensor:
    """Every Gaussian at every pixel: returns [H, W, 5] (rgb, alpha, sum w z)."""
    order = torch.argsort(proj.depth, stable=True)
    uv, conic, opacity = proj.uv[order], proj.conic[order], proj.opacity[order]
    colors, z = proj.colors[order], proj.depth[order]
    py, px = torch.meshgrid(
        torch.arange(height, dtype=uv.dtype, device=uv.device) + 0.5,
        torch.arange(width, dtype=uv.dtype, device=uv.device) + 0.5,
        indexing="ij",
    )
    dx = px.reshape(-1, 1) - uv[:, 0]  # [H*W, N]
    dy = py.reshape(-1, 1) - uv[:, 1]
    alpha = _pixel_alpha(dx, dy, conic, opacity, config)
    ones = torch.ones_like(alpha[:, :1])
    trans = torch.cumprod(torch.cat([ones, 1.0 - alpha], 1), 1)  # [H*W, N+1], trans[:, i] = prod_{j<i}
    w = alpha * trans[:, :-1]
    rgb = w @ colors + trans[:, -1:] * bg
    out = torch.cat([rgb, 1.0 - trans[:, -1:], w @ z[:, None]], 1)
    return out.reshape(height, width, 5)


def _rasterize_tiles(proj: Projected, width: int, height: int, bg: Tensor, config: RenderConfig) -> Tensor:
    """Tile-culled rasterisation: returns [H, W, 5] (rgb, alpha, sum w z), same values as ``_rasterize_dense``."""
    ts = config.tile_size
    tw, th = -(-width // ts), -(-height // ts)
    n_tiles, n_pix = tw * th, ts * ts
    device, dtype = proj.uv.device, proj.uv.dtype
    n = proj.uv.shape[0]
    with torch.no_grad():
        # Pixel-index range [lo, hi] of the pixel centres (i + 0.5) inside each support box.
        uv, ext = proj.uv.detach(), proj.extent * (1 + 1e-6) + 1e-6
        lo = torch.ceil(uv - ext - 0.5)
        hi = torch.floor(uv + ext - 0.5)
        size = torch.tensor([width - 1, height - 1], dtype=dtype, device=device)
        keep = (proj.opacity.detach() > config.alpha_min) & (hi >= 0).all(1) & (lo <= size).all(1) & (lo <= hi).all(1)
        keep &= torch.isfinite(uv).all(1)
        order = torch.argsort(proj.depth.detach(), stable=True)
        g = order[keep[order]]  # [M] kept Gaussians, front to back
        t0 = (torch.maximum(lo[g], torch.zeros_like(lo[g])) // ts).long()  # [M, 2] first tile (x, y)
        t1 = (torch.minimum(hi[g], size) // ts).long()
        span = t1 - t0 + 1
        count = span[:, 0] * span[:, 1]
        # One (tile, Gaussian) pair per touched tile; a stable sort by tile keeps the depth order.
        gid = torch.repeat_interleave(g, count)
        first = torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        local = torch.arange(gid.shape[0], device=device) - first
        nx = torch.repeat_interleave(span[:, 0], count)
        tx = torch.repeat_interleave(t0[:, 0], count) + local % nx
        ty = torch.repeat_interleave(t0[:, 1], count) + local // nx
        tile = ty * tw + tx
        perm = torch.argsort(tile, stable=True)
        pair_gauss = gid[perm]
        per_tile = torch.bincount(tile, minlength=n_tiles)
        start = torch.cumsum(per_tile, 0) - per_tile
        centres = torch.arange(ts, device=device, dtype=dtype) + 0.5  # pixel centres inside a tile

    zero = torch.zeros(1, dtype=dtype, device=device)
    feat = torch.cat(
        [proj.uv, proj.conic, proj.opacity[:, None], proj.colors.to(dtype), proj.depth[:, None]], 1
    )  # [N, 10]: u, v, a, b, c, opacity, r, g, b, z
    feat = torch.cat([feat, zero.expand(1, 10)], 0)  # row N: padding, opacity 0

    base = torch.cat([bg.expand(n_tiles, n_pix, 3), zero.expand(n_tiles, n_pix, 2)], -1)
    tiles_done, outs = [], []
    for tiles in _tile_batches(per_tile, n_pix, config.batch_elements):
        length = int(per_tile[tiles].max())
        with torch.no_grad():
            slot = torch.arange(length, device=device)
            idx = start[tiles, None] + slot
            valid = slot < per_tile[tiles, None]
            members = torch.where(valid, pair_gauss[idx.clamp(max=pair_gauss.shape[0] - 1)], n)  # [B, L]
            xs = (tiles % tw).to(dtype)[:, None] * ts + centres  # [B, X] pixel-centre columns
            ys = (tiles // tw).to(dtype)[:, None] * ts + centres  # [B, Y] pixel-centre rows
        outs.append(_CompositeTiles.apply(feat[members], xs, ys, bg, config.alpha_min, config.alpha_max))
        tiles_done.append(tiles)
    if outs:
        base = base.index_copy(0, torch.cat(tiles_done), torch.cat(outs, 0))
    else:  # nothing visible: keep the image in the graph so backward() gives zero gradients, not an error
        base = base + 0.0 * feat.sum()
    img = base.reshape(th, tw, ts, ts, 5).permute(0, 2, 1, 3, 4).reshape(th * ts, tw * ts, 5)
    return img[:height, :width]


def _tile_batches(per_tile: Tensor, n_pix: int, budget: int) -> list[Tensor]:
    """Group the non-empty tiles, by ascending list length, into batches of <= budget pixel x Gaussian pairs."""
    tiles = torch.nonzero(per_tile).flatten()
    if tiles.numel() == 0:
        return []
    tiles = tiles[torch.argsort(per_tile[tiles], stable=True)]
    lengths = per_tile[tiles].tolist()
    batches, begin = [], 0
    for i, length in enumerate(lengths):
        if i > begin and (i + 1 - begin) * n_pix * length > budget:
            batches.append(tiles[begin:i])
            begin = i
    batches.append(tiles[begin:])
    return batches


class _CompositeTiles(torch.autograd.Function):
    """Front-to-back compositing of B square tiles, each with L depth-ordered Gaussians.

    Inputs: feat [B, L, 10] (u, v, a, b, c, opacity, r, g, b, z; padding rows have opacity 0),
    xs [B, X] and ys [B, Y] pixel-centre coordinates of each tile, bg [3].
    Output [B, Y * X, 5] (row-major pixels): rgb, alpha, sum w z.

    The exponent -0.5 (a dx^2 + 2 b dx dy + c dy^2) is assembled from per-column [B, X, L]
    and per-row [B, Y, L] terms, so only its cross term costs a full [B, Y, X, L] pass, and the
    reductions of the backward pass over pixels are split the same way. The backward pass
    recomputes the alphas (nothing of size [B, P, L] is stored) and uses, with
    q_i = g_rgb . c_i + g_depth z_i the gradient with respect to the weight w_i,
    dL/dalpha_k = T_k q_k - (sum_{i>k} w_i q_i + T_N (g_rgb . bg - g_alpha)) / (1 - alpha_k).
    """

    @staticmethod
    def _exponent(feat: Tensor, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(dx [B, X, L], dy [B, Y, L], log raw alpha [B, Y*X, L] = log opacity - d^T S^-1 d / 2)."""
        u, v, a, b, c, o = (feat[:, None, :, k] for k in range(6))
        dx = xs[:, :, None] - u
        dy = ys[:, :, None] - v
        col = torch.log(o) - 0.5 * a * dx * dx  # [B, X, L]; log 0 = -inf for the padding
        row = -0.5 * c * dy * dy  # [B, Y, L]
        power = torch.addcmul(row[:, :, None] + col[:, None], dy[:, :, None], (b * dx)[:, None], value=-1.0)
        return dx, dy, power.flatten(1, 2)

    @staticmethod
    def _weights(raw: Tensor, alpha_min: float, alpha_max: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(1 - alpha, T before, T after, w) for raw alphas [B, P, L]."""
        one_minus = torch.nn.functional.threshold(raw.clamp(max=alpha_max), alpha_min, 0.0).neg_().add_(1.0)
        t_after = torch.cumprod(one_minus, -1)  # prod_{j<=i} (1 - alpha_j)
        t_before = torch.cat([torch.ones_like(t_after[..., :1]), t_after[..., :-1]], -1)
        return one_minus, t_before, t_after, t_before - t_after  # w_i = alpha_i T_before_i

    @staticmethod
    def forward(ctx, feat: Tensor, xs: Tensor, ys: Tensor, bg: Tensor, alpha_min: float, alpha_max: float) -> Tensor:  # type: ignore[override]
        raw = _CompositeTiles._exponent(feat, xs, ys)[2].exp_()
        *_, t_after, w = _CompositeTiles._weights(raw, alpha_min, alpha_max)
        t_last = t_after[..., -1:]
        colz = w @ feat[..., 6:10]  # [B, P, 4]: sum w c, sum w z
        ctx.save_for_backward(feat, xs, ys, bg)
        ctx.alpha_range = (alpha_min, alpha_max)
        return torch.cat([colz[..., :3] + t_last * bg, 1.0 - t_last, colz[..., 3:]], -1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        feat, xs, ys, bg = ctx.saved_tensors
        alpha_min, alpha_max = ctx.alpha_range
        n_b, n_x, n_y, n_l = feat.shape[0], xs.shape[1], ys.shape[1], feat.shape[1]
        dx, dy, power = _CompositeTiles._exponent(feat, xs, ys)
        raw = power.exp_()
        one_minus, t_before, t_after, w = _CompositeTiles._weights(raw, alpha_min, alpha_max)
        g_rgb, g_alpha = grad[..., :3], grad[..., 3:4]
        g_colz = grad[..., [0, 1, 2, 4]]  # [B, P, 4]
        grad_colz = w.transpose(1, 2) @ g_colz  # [B, L, 4]
        q = g_colz @ feat[..., 6:10].transpose(1, 2)  # dL/dw [B, P, L]
        behind = torch.cumsum(w * q, -1)
        behind = behind[..., -1:] - behind  # sum_{i>k} w_i q_i
        behind += t_after[..., -1:] * ((g_rgb * bg).sum(-1, keepdim=True) - g_alpha)
        g_pow = (t_before * q).sub_(behind.div_(one_minus))  # dL/dalpha
        # dL/d(exponent) = dL/dalpha raw where alpha_min < raw < alpha_max, else 0.
        minus_raw = torch.nn.functional.threshold(raw, alpha_min, 0.0).neg_()
        g_pow.mul_(torch.nn.functional.threshold_(minus_raw, -alpha_max, 0.0)).neg_()  # type: ignore[attr-defined]
        g_pow = g_pow.view(n_b, n_y, n_x, n_l)
        per_col = g_pow.sum(1)  # [B, X, L]
        per_row = g_pow.sum(2)  # [B, Y, L]
        cross = torch.einsum("byxl,bxl->byl", g_pow, dx)  # sum_x g dx  [B, Y, L]
        s_dx = (per_col * dx).sum(1)  # sum_p g dx  [B, L]
        s_dy = (per_row * dy).sum(1)
        a, b, c, o = (feat[..., k] for k in (2, 3, 4, 5))
        grad_feat = torch.stack(
            [
                a * s_dx + b * s_dy,
                b * s_dx + c * s_dy,
                -0.5 * (per_col * dx * dx).sum(1),
                -(cross * dy).sum(1),
                -0.5 * (per_row * dy * dy).sum(1),
                torch.where(o > 0, per_col.sum(1) / o, torch.zeros_like(o)),  # d exponent / d opacity = 1 / opacity
                *grad_colz.unbind(-1),
            ],
            -1,
        )
        grad_bg = (t_after[..., -1:] * g_rgb).sum((0, 1)) if ctx.needs_input_grad[3] else None
        return grad_feat, None, None, grad_bg, None, None
