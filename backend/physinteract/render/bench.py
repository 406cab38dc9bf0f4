"""``physinteract bench render``: time the Gaussian rasteriser (forward, forward + backward).

The scene is an object-like ball: N Gaussians uniformly inside a sphere of radius 0.3 m
at 2 m in front of the camera, each with random rotation and scales of about half the
mean particle spacing (so neighbours overlap, as in a fitted 3DGS object), seen by a
camera whose focal length makes the ball span half the image width.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--counts", type=int, nargs="+", default=[1000, 10000], help="numbers of Gaussians")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="square image sizes in pixels")
    p.add_argument("--repeats", type=int, default=3, help="timed repetitions (the best is reported)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", default="cpu", help="torch device (cuda uses gsplat when installed)")
    p.add_argument("--reference", action="store_true", help="also time the dense reference twin (small cases only)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0)


def make_scene(n: int, size: int, dtype: Any, device: str, seed: int = 0) -> tuple[Any, Any]:
    """(GaussianBatch, Camera) of the benchmark ball: N Gaussians, square image of ``size`` px."""
    import torch

    from .gaussians import Camera, GaussianBatch

    gen = torch.Generator().manual_seed(seed)
    radius, distance = 0.3, 2.0
    direction = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    direction /= direction.norm(dim=1, keepdim=True)
    r = radius * torch.rand(n, 1, generator=gen, dtype=torch.float64) ** (1.0 / 3.0)
    means = direction * r + torch.tensor([0.0, 0.0, distance], dtype=torch.float64)
    spacing = (4.0 / 3.0 * math.pi * radius**3 / n) ** (1.0 / 3.0)
    scales = 0.5 * spacing * (0.5 + torch.rand(n, 3, generator=gen, dtype=torch.float64))
    quats = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    colors = torch.rand(n, 3, generator=gen, dtype=torch.float64)
    opacities = 0.2 + 0.7 * torch.rand(n, generator=gen, dtype=torch.float64)
    f = 0.5 * size * distance / (2.0 * radius)
    K = torch.tensor([[f, 0.0, size / 2.0], [0.0, f, size / 2.0], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def t(x: Any) -> Any:
        return x.to(dtype=dtype, device=device).requires_grad_()

    gaussians = GaussianBatch(t(means), t(colors), t(opacities), quats=t(quats), scales=t(scales))
    camera = Camera(K.to(dtype=dtype, device=device), torch.eye(4, dtype=dtype, device=device), size, size)
    return gaussians, camera


def _time(fn: Any, repeats: int, sync: Any) -> float:
    fn()  # warm-up
    sync()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def _time_case(fn: Any, n: int, size: int, args: argparse.Namespace, sync: Any) -> dict:
    """Best-of-repeats forward and forward + backward (d(sum rgb + sum alpha)/d all attributes) times of ``fn``."""
    import torch

    dtype = getattr(torch, args.dtype)
    gaussians, camera = make_scene(n, size, dtype, args.device, args.seed)
    params = [gaussians.means, gaussians.colors, gaussians.opacities, gaussians.quats, gaussians.scales]
    bg = torch.ones(3, dtype=dtype, device=args.device)

    def forward() -> Any:
        with torch.no_grad():
            return fn(gaussians, camera, bg)

    def forward_backward() -> None:
        out = fn(gaussians, camera, bg)
        torch.autograd.grad(out.rgb.sum() + out.alpha.sum(), params)

    return {
        "coverage": float(forward().alpha.mean()),
        "forward_s": _time(forward, args.repeats, sync),
        "forward_backward_s": _time(forward_backward, args.repeats, sync),
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from .rasterize import _render_reference, render

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if str(args.device).startswith("cuda") else (lambda: None)
    cases = []
    for size in args.sizes:
        for n in args.counts:
            case: dict[str, Any] = {"gaussians": n, "size": size, **_time_case(render, n, size, args, sync)}
            if args.reference:
                ref = _time_case(_render_reference, n, size, args, sync)
                case["reference_forward_s"] = ref["forward_s"]
                case["reference_forward_backward_s"] = ref["forward_backward_s"]
            cases.append(case)
    return {
        "target": "render",
        "device": str(args.device),
        "dtype": args.dtype,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cases": cases,
    }
