"""Taichi initialisation for the MPM solver (called by entry points, never at import)."""

from __future__ import annotations

from typing import Any

_current: dict[str, str] = {}


def ensure_taichi(arch: str = "auto", precision: str = "f32") -> str:
    """Initialise Taichi for ``arch`` ("auto", "cpu", "cuda") and ``precision`` ("f32", "f64").

    Returns the arch in use ("cpu" or "cuda"). "auto" picks CUDA when Taichi finds
    a CUDA device and the CPU otherwise; "cuda" raises RuntimeError when none is found.
    Re-initialising with other settings resets Taichi, which frees every existing
    field: build solvers after choosing the settings.
    """
    import taichi as ti
    from taichi.lang import impl

    if arch not in ("auto", "cpu", "cuda"):
        raise ValueError(f"arch: expected 'auto', 'cpu' or 'cuda', got {arch!r}")
    if precision not in ("f32", "f64"):
        raise ValueError(f"precision: expected 'f32' or 'f64', got {precision!r}")
    initialised = impl.get_runtime().prog is not None
    if initialised and _current.get("precision") == precision and (arch == "auto" or _current.get("arch") == arch):
        return _current["arch"]
    if initialised and not _current:
        # Taichi was initialised by someone else (a test, a script): adopt it when it fits.
        cfg = impl.current_cfg()
        used = "cuda" if cfg.arch == ti.cuda else "cpu"
        fp = "f64" if cfg.default_fp == ti.f64 else "f32"
        if fp == precision and (arch in ("auto", used)):
            _current.update(arch=used, precision=fp)
            return used
    kwargs: dict[str, Any] = {"default_fp": ti.f64 if precision == "f64" else ti.f32, "log_level": ti.WARN}
    if arch == "cpu":
        ti.init(arch=ti.cpu, **kwargs)
    else:
        ti.init(arch=ti.cuda, **kwargs)  # Taichi falls back to the CPU when no CUDA device is found
    used = "cuda" if impl.current_cfg().arch == ti.cuda else "cpu"
    if arch == "cuda" and used != "cuda":
        _current.clear()
        raise RuntimeError("arch 'cuda' was requested but Taichi found no CUDA device; use --arch cpu or auto")
    _current.update(arch=used, precision=precision)
    return used
