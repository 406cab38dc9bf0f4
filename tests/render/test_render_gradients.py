"""Renderer gradients equal central finite differences (float64, tiny images)."""

from __future__ import annotations

import math

import pytest
import torch

from physinteract.render import Camera, GaussianBatch, RenderConfig, render
from physinteract.render.rasterize import _render_reference

DT = torch.float64


def _camera(width: int = 14, height: int = 11) -> Camera:
    """A camera 2 m from the origin, turned 20 degrees about an oblique axis."""
    axis = torch.tensor([0.3, 1.0, 0.2], dtype=DT)
    axis = axis / axis.norm()
    kx = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=DT)
    angle = math.radians(20)
    rot = torch.eye(3, dtype=DT) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    w2c = torch.eye(4, dtype=DT)
    w2c[:3, :3] = rot
    w2c[:3, 3] = torch.tensor([0.05, -0.02, 2.0], dtype=DT)
    K = torch.tensor([[16.0, 0, width / 2 + 0.3], [0, 17.0, height / 2 - 0.2], [0, 0, 1]], dtype=DT)
    return Camera(K, w2c, width, height)


def _scene(n: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        "means": 0.25 * torch.randn(n, 3, generator=gen, dtype=DT),
        "quats": torch.randn(n, 4, generator=gen, dtype=DT),
        "scales": 0.08 + 0.1 * torch.rand(n, 3, generator=gen, dtype=DT),
        "colors": torch.rand(n, 3, generator=gen, dtype=DT),
        "opacities": 0.3 + 0.6 * torch.rand(n, generator=gen, dtype=DT),
        "background": torch.tensor([0.1, 0.5, 0.9], dtype=DT),
    }


def _objective(params: dict[str, torch.Tensor], camera: Camera, weights: torch.Tensor, fn, config: RenderConfig):
    """A random linear functional of rgb, alpha and depth: its gradient mixes every output."""
    if "covariances" in params:
        g = GaussianBatch(params["means"], params["colors"], params["opacities"], covariances=params["covariances"])
    else:
        g = GaussianBatch(params["means"], params["colors"], params["opacities"], quats=params["quats"], scales=params["scales"])
    out = fn(g, camera, params["background"], config)
    return (out.rgb * weights[..., :3]).sum() + (out.alpha * weights[..., 3]).sum() + (out.depth * weights[..., 4]).sum()


def _check_against_finite_differences(params, fn, config, eps=1e-6):
    camera = _camera()
    weights = torch.randn(camera.height, camera.width, 5, generator=torch.Generator().manual_seed(7), dtype=DT)
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    grads = dict(zip(leaves, torch.autograd.grad(_objective(leaves, camera, weights, fn, config), list(leaves.values()))))
    for name, value in params.items():
        flat = value.reshape(-1)
        numeric = torch.empty_like(flat)
        for i in range(flat.numel()):
            plus, minus = flat.clone(), flat.clone()
            plus[i] += eps
            minus[i] -= eps
            f_plus = _objective({**params, name: plus.reshape(value.shape)}, camera, weights, fn, config)
            f_minus = _objective({**params, name: minus.reshape(value.shape)}, camera, weights, fn, config)
            numeric[i] = (f_plus - f_minus) / (2 * eps)
        analytic = grads[name].reshape(-1)
        assert analytic.abs().max() > 0, f"{name}: zero gradient, the test would not see an error"
        torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-6 * float(numeric.abs().max()), msg=name)


@pytest.mark.parametrize("fn", [render, _render_reference], ids=["tiled", "reference"])
def test_gradients_quat_scale_match_finite_differences(fn):
    """d(render)/d(means, quats, scales, colours, opacities, background) = central differences."""
    config = RenderConfig(tile_size=4, batch_elements=300)  # several tiles and batches even on 14 x 11 px
    _check_against_finite_differences(_scene(4, seed=1), fn, config)


def test_gradients_covariance_match_finite_differences():
    """d(render)/d(covariance matrix entries) = central differences (tiled path)."""
    params = _scene(3, seed=2)
    a = 0.12 * torch.randn(3, 3, 3, generator=torch.Generator().manual_seed(3), dtype=DT)
    params["covariances"] = a @ a.transpose(1, 2) + 0.002 * torch.eye(3, dtype=DT)
    del params["quats"], params["scales"]
    _check_against_finite_differences(params, render, RenderConfig(tile_size=8))


def test_gradients_camera_match_finite_differences():
    """d(render)/d(world_to_camera, K) = central differences (for pose and focal refinement; K's skew is unused)."""
    params = _scene(3, seed=4)
    gaussians = GaussianBatch(params["means"], params["colors"], params["opacities"], quats=params["quats"], scales=params["scales"])
    base = _camera()
    weights = torch.randn(base.height, base.width, 5, generator=torch.Generator().manual_seed(8), dtype=DT)

    def objective(cam: dict[str, torch.Tensor]) -> torch.Tensor:
        out = render(gaussians, Camera(cam["K"], cam["world_to_camera"], base.width, base.height), params["background"])
        return (out.rgb * weights[..., :3]).sum() + (out.alpha * weights[..., 3]).sum() + (out.depth * weights[..., 4]).sum()

    cam = {"world_to_camera": base.world_to_camera, "K": base.K}
    leaves = {k: v.clone().requires_grad_() for k, v in cam.items()}
    grads = dict(zip(leaves, torch.autograd.grad(objective(leaves), list(leaves.values()))))
    eps = 1e-6
    for name, value in cam.items():
        numeric = torch.zeros_like(value)
        for i, j in [(i, j) for i in range(3) for j in range(4)] if name == "world_to_camera" else [(0, 0), (1, 1), (0, 2), (1, 2)]:
            plus, minus = value.clone(), value.clone()
            plus[i, j] += eps
            minus[i, j] -= eps
            numeric[i, j] = (objective({**cam, name: plus}) - objective({**cam, name: minus})) / (2 * eps)
        assert numeric.abs().max() > 0
        torch.testing.assert_close(grads[name], numeric, rtol=1e-5, atol=1e-6 * float(numeric.abs().max()), msg=name)
