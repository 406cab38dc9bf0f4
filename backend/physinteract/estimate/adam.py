"""AdamW whose second moment can be shared by the components of a vector (VectorAdam).

Adam divides each coordinate's step by that coordinate's own gradient scale, so every coordinate
moves by about the learning rate whatever its gradient: a trajectory keyframe, a point in
space, then moves as far along a direction the video hardly observes (the camera's depth) as
along one it observes well. With ``vector=True`` a parameter group keeps one second moment per
row (the squared norm of the row's gradient), so each row's step follows its gradient's
direction and its length is normalised to about the learning rate: the step no longer depends on how the
world axes are oriented (Ling et al., "VectorAdam for rotation equivariant geometry
optimization", NeurIPS 2022). Rows of a [K, 3] keyframe tensor are the keyframes.

Without ``vector`` a group is plain AdamW (decoupled weight decay, bias correction).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class VectorAdamW(torch.optim.Optimizer):
    """AdamW; groups with ``vector=True`` share the second moment along each row's last axis."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, vector: bool = False) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"VectorAdamW: invalid settings lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "vector": vector})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    shape = (*p.shape[:-1], 1) if group["vector"] and p.dim() > 0 else p.shape
                    state["exp_avg_sq"] = torch.zeros(shape, dtype=p.dtype)
                state["step"] += 1
                t = float(state["step"])
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(b1).add_(g, alpha=1.0 - b1)
                g2 = g.square().sum(-1, keepdim=True) if v.shape != g.shape else g.square()
                v.mul_(b2).add_(g2, alpha=1.0 - b2)
                if group["weight_decay"]:
                    p.mul_(1.0 - group["lr"] * group["weight_decay"])
                denom = (v / (1.0 - b2**t)).sqrt_().add_(group["eps"])
                p.sub_(group["lr"] / (1.0 - b1**t) * m / denom)
        return loss


def cosine_annealing(opt: torch.optim.Optimizer, steps: int, final_ratio: float) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine annealing of every group's learning rate from itself down to ``final_ratio`` of it
    over ``steps`` steps (held there after)."""
    total = max(1, steps)

    def factor(step: int) -> float:
        return final_ratio + (1.0 - final_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
