"""Retry with a smaller substep (on_failure="retry"), with and without passive tracers."""

from __future__ import annotations

import numpy as np

from physinteract.mpm.config import SolverConfig
from physinteract.mpm.model import Control, make_model
from physinteract.mpm.rollout import Rollout
from tests.mpm.conftest import block

FRAME_DT = 0.01  # s


def _scene():
    """A stiff block at rest through frame 1, grasped and pulled in frame 2 (no gravity).

    P-wave speed ~ 15 m/s and dx = 5 mm: explicit MLS-MPM is stable below about
    dx / c ~ 3e-4 s, so 4 substeps per 10 ms frame (2.5e-3 s) blow up once the pull starts,
    while frame 1 (exact rest: F = I, v = 0) survives any substep.
    """
    x0 = block((6, 4, 4), 0.0025, (0.0, 0.0, 0.0))
    cfg = SolverConfig(grid_resolution=16, precision="f64", arch="cpu", gravity=(0, 0, 0), on_failure="retry",
                       max_retries=4, domain_min=(-0.02, -0.02, -0.02), domain_max=(0.06, 0.06, 0.06))
    free = np.where(x0[:, 0] > 0.004)[0]
    tracers = x0[free[::5]]  # tracers on (non-grasped) particles move exactly with them
    model = make_model(x0, 0.0025**3, 1000.0, 2e5, 0.2, cfg, tracers=tracers)
    contact = np.where(x0[:, 0] < 0.003)[0]
    p = x0[contact].mean(0)
    ctrl = Control("point_adherent", "velocity", contact=contact, times=[FRAME_DT, 3 * FRAME_DT],
                   values=[p, p + [-0.004, 0.0, 0.002]])
    return model, ctrl, free[::5]


def test_retry_with_tracers_restarts_particles_and_tracers_from_the_frame_checkpoint(ti64):
    """Tracers placed on particles move exactly with them (x and F) through a retried frame."""
    model, ctrl, on = _scene()
    sim = Rollout(model, ctrl, FRAME_DT, 3, substeps=4)
    xs = sim.forward(tracers=True)
    # frame 1 ran at 4 substeps; frame 2 failed and was rerun with a halved substep, at least twice
    assert sim.substeps[0] == 4 and sim.substeps[1] >= 16 and sim.substeps[2] == sim.substeps[1], sim.substeps
    assert np.all(np.isfinite(xs))
    assert np.abs(xs[-1] - xs[0]).max() > 1e-3  # the pull moved the block
    assert len(sim.tracer_frames) == 4
    for f, (tx, tF) in enumerate(sim.tracer_frames):
        np.testing.assert_allclose(tx, sim.checkpoints[f].x[on], rtol=0, atol=1e-12, err_msg=f"frame {f}")
        np.testing.assert_allclose(tF, sim.checkpoints[f].F[on], rtol=0, atol=1e-10, err_msg=f"frame {f}")
    # the same rollout without tracers takes the same retries and gives the same particles
    plain = Rollout(model, ctrl, FRAME_DT, 3, substeps=4)
    np.testing.assert_allclose(plain.forward(), xs, rtol=0, atol=1e-12)
    assert plain.substeps == sim.substeps
