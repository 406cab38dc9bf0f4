"""Differentiable MLS-MPM (fixed-corotated) in Taichi.

Importing this package does not import taichi: the names below load their
modules on first use. ``ti.init`` happens when a solver is built (see runtime.ensure_taichi).

    model = make_model(x0, volume, density, E, nu, SolverConfig(...))   # or model_from_job(job)
    sim = Rollout(model, Control(...), frame_dt, num_frames, requires_grad=True)
    xs = sim.forward(); grads = sim.backward({num_frames: dL_dx})
    simulate_job(job, cache_folder)                                    # forward bake into a cache
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SolverConfig": "physinteract.mpm.config",
    "GroundConfig": "physinteract.mpm.config",
    "Model": "physinteract.mpm.model",
    "State": "physinteract.mpm.model",
    "Control": "physinteract.mpm.model",
    "make_model": "physinteract.mpm.model",
    "model_from_job": "physinteract.mpm.model",
    "control_from_job": "physinteract.mpm.model",
    "config_from_settings": "physinteract.mpm.model",
    "nu_from_theta": "physinteract.mpm.model",
    "theta_from_nu": "physinteract.mpm.model",
    "MPMSolver": "physinteract.mpm.solver",
    "Rollout": "physinteract.mpm.rollout",
    "Gradients": "physinteract.mpm.rollout",
    "SimulationError": "physinteract.mpm.rollout",
    "simulate_job": "physinteract.mpm.simulate",
    "ensure_taichi": "physinteract.mpm.runtime",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'physinteract.mpm' has no attribute {name!r}")
