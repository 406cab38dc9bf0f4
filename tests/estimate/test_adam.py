"""The keyframe optimiser: AdamW per coordinate, VectorAdam (one second moment per row) for points."""

import math

import pytest
import torch

from physinteract.estimate.adam import VectorAdamW


def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.det(q))


def _descend(x0: torch.Tensor, loss, vector: bool, steps: int = 25, **kw) -> torch.Tensor:
    x = torch.nn.Parameter(x0.clone())
    opt = VectorAdamW([{"params": [x], "vector": vector}], lr=0.05, **kw)
    for _ in range(steps):
        opt.zero_grad()
        loss(x).backward()
        opt.step()
    return x.detach()


def test_without_vector_rows_it_is_torch_adamw():
    """Per-coordinate groups follow torch.optim.AdamW step for step (decoupled decay, bias correction)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    target = torch.randn(5, 3, generator=g, dtype=torch.float64)
    scale = torch.tensor([1.0, 10.0, 0.1], dtype=torch.float64)

    def loss(x):
        return ((x - target) * scale).square().sum()

    ours = _descend(x0, loss, vector=False, weight_decay=0.01)
    ref = torch.nn.Parameter(x0.clone())
    opt = torch.optim.AdamW([ref], lr=0.05, weight_decay=0.01)
    for _ in range(25):
        opt.zero_grad()
        loss(ref).backward()
        opt.step()
    assert torch.allclose(ours, ref.detach(), atol=1e-10)


def test_vector_rows_make_the_descent_independent_of_the_world_axes():
    """Rotating an anisotropic problem rotates VectorAdam's path with it; per-coordinate Adam's path is
    not rotated (it normalises each world axis on its own), which is what lets a keyframe wander in depth."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    target = torch.randn(4, 3, generator=g, dtype=torch.float64)
    A = torch.diag(torch.tensor([3.0, 1.0, 0.05], dtype=torch.float64))  # the third axis hardly observed
    R = _rotation(2)

    def loss(x):  # the problem in the frame where A is diagonal
        return ((x - target) @ A).square().sum()

    def rotated(x):  # the same problem expressed in world axes rotated by R
        return loss(x @ R)

    for vector, same in ((True, True), (False, False)):
        path = _descend(x0, loss, vector)
        path_rot = _descend(x0 @ R.T, rotated, vector)
        err = float((path_rot @ R - path).abs().max())
        assert (err < 1e-9) if same else (err > 1e-3), (vector, err)


def test_vector_rows_take_a_first_step_of_the_learning_rate_along_the_gradient():
    """Bias-corrected first step: each row moves by lr along -g/|g| (plain Adam: lr per coordinate)."""
    x = torch.nn.Parameter(torch.zeros(2, 3, dtype=torch.float64))
    opt = VectorAdamW([{"params": [x], "vector": True}], lr=0.1, eps=0.0)
    x.grad = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 4.0]], dtype=torch.float64)
    opt.step()
    assert torch.allclose(x.detach(), -0.1 * x.grad / x.grad.norm(dim=1, keepdim=True), atol=1e-12)
    assert math.isclose(float(x.detach()[1].norm()), 0.1, rel_tol=1e-12)


def test_invalid_settings_are_named():
    with pytest.raises(ValueError, match="lr=-1"):
        VectorAdamW([torch.nn.Parameter(torch.zeros(3))], lr=-1.0)
