"""Speed-ups of the solver against their references: the active-block grid (grid kernels visit only
the nodes the particles touch) against the whole grid, the backward tape of grids against
recomputing every grid in the backward pass, and the early-exit polar decomposition against the SVD."""

from __future__ import annotations

import numpy as np

from physinteract.mpm.config import GroundConfig, SolverConfig
from physinteract.mpm.model import Control, State, make_model
from physinteract.mpm.rollout import Rollout
from physinteract.mpm.solver import PASSES, MPMSolver
from tests.mpm.conftest import block


def _rollout(restrict: bool, tape_nodes: int | None) -> tuple[Rollout, np.ndarray, object, list[int]]:
    """A grasped, thrown block crossing the domain (ground, walls, gravity), tracers on; f64."""
    x0 = block((4, 4, 4), 0.005, (0.0, 0.0, 0.03))
    cfg = SolverConfig(grid_resolution=24, precision="f64", arch="cpu", backward_segment=8,
                       domain_min=(-0.02, -0.02, 0.0), domain_max=(0.1, 0.04, 0.06),
                       ground=GroundConfig(height=0.01, friction=0.3, mode="separate"))
    rng = np.random.default_rng(11)
    tracers = np.concatenate([x0[5:9] + 0.001, [[0.01, 0.01, 0.045]]])
    model = make_model(x0, 0.005**3, 1000.0, 3e3 * np.exp(0.2 * rng.normal(size=len(x0))), 0.3, cfg,
                       v0=np.array([0.6, 0.05, 0.1]), tracers=tracers)
    contact = np.arange(4)
    times = np.array([0.0, 0.05, 0.1])
    values = x0[contact].mean(0) + np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [0.05, 0.005, -0.01]])
    ctrl = Control("point_adherent", "velocity", contact=contact, times=times, values=values)
    solver = MPMSolver(model, cfg, slots=cfg.backward_segment + 1, requires_grad=True, restrict_grid=restrict,
                       tape_nodes=tape_nodes)
    sim = Rollout(model, ctrl, 0.025, 4, requires_grad=True, substeps=20, solver=solver)
    blocks: list[int] = []
    xs = sim.forward(tracers=True, on_frame=lambda f, s: blocks.append(int(solver.block_lo[None][0])) and False)
    w = rng.normal(size=(4, len(x0), 3))
    grads = sim.backward({f + 1: w[f] for f in range(4)}, {4: rng.normal(size=(len(x0), 3, 3))})
    return sim, xs, grads, blocks


def test_active_block_and_grid_tape_give_the_whole_grid_result_for_a_body_crossing_the_domain(ti64):
    """Same positions, F, tracers and gradients (to round-off) as the whole, recomputed grid while the body moves 4 cm."""
    full, xs_full, g_full, blocks_full = _rollout(restrict=False, tape_nodes=0)
    fast, xs_fast, g_fast, blocks_fast = _rollout(restrict=True, tape_nodes=None)
    assert fast.solver.tape_saved.to_numpy()[:8].all()  # every grid of the last segment came from the tape
    block_nodes = int(fast.solver.block_count[None])
    part, xs_part, g_part, _ = _rollout(restrict=True, tape_nodes=int(2.5 * block_nodes))
    saved = part.solver.tape_saved.to_numpy()[:8]
    assert saved.any() and not saved.all(), saved  # some grids taped, the rest recomputed
    # the test exercised a moving block smaller than the grid
    assert xs_fast[-1, :, 0].mean() - xs_fast[0, :, 0].mean() > 0.03
    assert len(set(blocks_fast)) >= 3 and set(blocks_full) == {0}, (blocks_fast, blocks_full)
    assert fast.solver.block_count[None] < 0.5 * np.prod(fast.model.grid_shape)
    np.testing.assert_allclose(xs_fast, xs_full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.checkpoints[-1].F, full.checkpoints[-1].F, rtol=0, atol=1e-10)
    for (tx_a, tF_a), (tx_b, tF_b) in zip(fast.tracer_frames, full.tracer_frames):
        np.testing.assert_allclose(tx_a, tx_b, rtol=0, atol=1e-12)
        np.testing.assert_allclose(tF_a, tF_b, rtol=0, atol=1e-10)
    np.testing.assert_allclose(xs_part, xs_full, rtol=0, atol=1e-12)
    for name in ("log_E", "nu", "keyframes", "v0", "x0"):
        b = getattr(g_full, name)
        assert np.abs(b).max() > 0, name
        for g in (g_fast, g_part):
            np.testing.assert_allclose(getattr(g, name), b, rtol=0, atol=1e-9 * np.abs(b).max(), err_msg=name)


def test_polar_rotation_with_early_exit_is_the_svd_polar_factor(ti64):
    """compute_stress's rotation (scaled Newton, stopping once converged) equals U V^T of F = U S V^T to 1e-10."""
    rng = np.random.default_rng(5)
    x0 = block((4, 4, 4), 0.005)
    n = len(x0)
    cfg = SolverConfig(grid_resolution=12, precision="f64", arch="cpu")
    model = make_model(x0, 0.005**3, 1000.0, 1e4, 0.3, cfg)
    q, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]  # proper rotations
    stretch = np.exp(rng.uniform(-0.7, 0.7, size=(n, 3)))  # principal stretches 0.5 .. 2
    frame, _ = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    sym = frame @ (stretch[:, :, None] * np.swapaxes(frame, 1, 2))
    F = q @ sym
    F[:8] = np.eye(3) + 1e-4 * rng.normal(size=(8, 3, 3))  # nearly undeformed: the early exit after 1-2 steps
    solver = MPMSolver(model, cfg)
    state = State.rest(model)
    state.F = F
    solver.write_state(0, state)
    solver.run_pass(PASSES.index("compute_stress"), 0, 1, 0, 1e-4)
    R = solver.R.to_numpy()[0]
    U, _, Vt = np.linalg.svd(F)
    np.testing.assert_allclose(R, U @ Vt, rtol=0, atol=1e-10)
