"""``physinteract doctor``: what this machine offers the backend."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
from typing import Any

HELP = "report Python, Taichi arch (cuda or cpu), torch, GPU and optional models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--no-taichi-init", action="store_true", help="do not start Taichi to probe the arch (faster)")


def _version(mod: str) -> str | None:
    if importlib.util.find_spec(mod) is None:
        return None
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "unknown"


def probe_taichi_arch() -> str | None:
    """'cuda' when Taichi can start on CUDA here, else 'cpu'; None without taichi."""
    if importlib.util.find_spec("taichi") is None:
        return None
    # Probe in a child process: ti.init may only be called once per process
    # usefully and CUDA discovery can be slow or noisy.
    import subprocess

    code = (
        "import taichi as ti\n"
        "try:\n    ti.init(arch=ti.cuda, log_level=ti.ERROR)\n    print(ti.lang.impl.current_cfg().arch.name)\n"
        "except Exception:\n    print('cpu')\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except (subprocess.TimeoutExpired, OSError):
        return "cpu"
    last = (out.stdout.strip().splitlines() or ["cpu"])[-1]
    return "cuda" if last == "cuda" else "cpu"


def collect(probe_arch: bool = True) -> dict[str, Any]:
    from physinteract import __version__

    info: dict[str, Any] = {
        "physinteract": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": _version("numpy"),
        "taichi": _version("taichi"),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "sam2": _version("sam2"),
    }
    info["taichi_arch"] = probe_taichi_arch() if (probe_arch and info["taichi"]) else None
    gpu = None
    if info["torch"]:
        try:
            import torch

            if torch.cuda.is_available():
                gpu = torch.cuda.get_device_name(0)
        except Exception as e:  # a broken CUDA install must not break doctor
            gpu = f"error: {e}"
    info["gpu"] = gpu
    try:
        from physinteract.perception import models

        info["models"] = models.report()
    except ImportError:
        info["models"] = {}
    return info


def run(args: argparse.Namespace) -> int:
    info = collect(probe_arch=not args.no_taichi_init)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if k == "models":
            continue
        print(f"{k:<{width}}  {v if v is not None else 'not found'}")
    models = info["models"] or {}
    print(f"{'models':<{width}}  " + (", ".join(f"{k}: {v}" for k, v in models.items()) if models else "none configured"))
    return 0
