"""Forward physics of the MLS-MPM solver checked against analytic answers and conservation laws."""

from __future__ import annotations

import numpy as np
import pytest

from physinteract.mpm.config import GroundConfig, SolverConfig
from physinteract.mpm.model import Control, State, make_model
from physinteract.mpm.rollout import Rollout
from tests.mpm.conftest import block


def test_free_fall_centre_of_mass_follows_half_g_t_squared(ti64):
    """Before any contact the centre of mass falls g t^2 / 2 (within 1%)."""
    x0 = block((4, 4, 4), 0.01, (0.0, 0.0, 1.0))
    cfg = SolverConfig(grid_resolution=30, precision="f64", arch="cpu", domain_min=(-0.06, -0.06, 0.8), domain_max=(0.1, 0.1, 1.1))
    model = make_model(x0, 1e-6, 1000.0, 2e4, 0.3, cfg)
    fps, frames = 24.0, 4
    sim = Rollout(model, Control(), 1 / fps, frames)
    xs = sim.forward()
    t = frames / fps
    drop = xs[0, :, 2].mean() - xs[-1, :, 2].mean()
    expected = 0.5 * 9.81 * t * t
    assert abs(drop - expected) < 0.01 * expected, (drop, expected)
    # no sideways drift
    assert np.allclose(xs[-1, :, :2].mean(0), xs[0, :, :2].mean(0), atol=1e-9)


def test_linear_momentum_is_conserved_without_gravity_or_boundaries(ti64):
    """No gravity, walls or ground: total momentum sum(m v) stays constant to 1e-5 over 1000 substeps."""
    rng = np.random.default_rng(3)
    x0 = block((5, 5, 5), 0.01)
    v0 = np.array([0.05, -0.02, 0.03]) + 0.05 * rng.normal(size=x0.shape)  # translation plus random jiggle
    cfg = SolverConfig(grid_resolution=24, precision="f64", arch="cpu", gravity=(0, 0, 0), walls=False, domain_padding=1.5)
    model = make_model(x0, 1e-6, 800.0, rng.uniform(5e3, 2e4, len(x0)), 0.35, cfg, v0=v0)
    sim = Rollout(model, Control(), 0.01, 4, substeps=250)
    sim.forward()
    p0 = (model.mass[:, None] * v0).sum(0)
    p1 = (model.mass[:, None] * sim.checkpoints[-1].v).sum(0)
    assert np.linalg.norm(p1 - p0) < 1e-5 * np.linalg.norm(p0), (p0, p1)
    # and the object did deform (the test exercised the stress)
    F = sim.checkpoints[-1].F
    assert np.abs(F - np.eye(3)).max() > 1e-3


def test_adherent_contact_particles_follow_their_trajectory(ti64):
    """Grasped particles move with the trajectory's displacement (within 1% of a cell); the body follows."""
    x0 = block((12, 8, 8), 0.005, (0.0, 0.0, 0.5))  # 6 x 4 x 4 cm, 2 particles per cell per axis
    cfg = SolverConfig(grid_resolution=18, precision="f64", arch="cpu", gravity=(0, 0, -9.81),
                       domain_min=(-0.07, -0.05, 0.45), domain_max=(0.11, 0.09, 0.63))
    model = make_model(x0, 0.005**3, 1000.0, 5e4, 0.3, cfg)
    contact = np.where(x0[:, 0] > 0.05)[0]
    times = np.array([0.0, 0.1, 0.2, 0.3])
    values = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.01], [0.02, 0.005, 0.02], [0.03, 0.0, 0.03]]) + x0[contact].mean(0)
    ctrl = Control("point_adherent", "velocity", contact=contact, times=times, values=values)
    fps, frames = 20.0, 6
    sim = Rollout(model, ctrl, 1 / fps, frames)
    xs = sim.forward()
    from physinteract.mpm.spline import evaluate

    for f in range(frames + 1):
        p, _ = evaluate(times, values, f / fps)
        disp = xs[f, contact] - x0[contact]
        assert np.abs(disp - (p[0] - values[0])).max() < 0.01 * model.dx, f
    # the rest of the body is carried along: it rose at least half as much as the grasp despite gravity
    free = np.setdiff1d(np.arange(len(x0)), contact)
    assert xs[-1, free, 2].mean() - x0[free, 2].mean() > 0.5 * (values[-1, 2] - values[0, 2])
    assert xs[-1, free, 0].mean() - x0[free, 0].mean() > 0.5 * (values[-1, 0] - values[0, 0])


def test_poker_pushes_the_object_and_never_drags_it_back(ti64):
    """A frictionless sphere poke only pushes: the object's momentum along the push never decreases."""
    x0 = block((8, 8, 8), 0.005, (0.0, 0.0, 0.0))
    cfg = SolverConfig(grid_resolution=20, precision="f64", arch="cpu", gravity=(0, 0, 0),
                       domain_min=(-0.06, -0.06, -0.06), domain_max=(0.14, 0.1, 0.1))
    model = make_model(x0, 0.005**3, 1000.0, 3e4, 0.3, cfg)
    start = np.array([-0.02, 0.02, 0.02])
    times = np.array([0.0, 0.1, 0.2])
    values = np.array([start, start + [0.025, 0, 0], start])  # in and back out
    ctrl = Control("point_non_adherent", "velocity", times=times, values=values, collider="sphere", radius=0.012)
    sim = Rollout(model, ctrl, 1 / 40, 8)
    sim.forward()
    px = np.array([(model.mass * s.v[:, 0]).sum() for s in sim.checkpoints])
    com = np.array([s.x[:, 0].mean() for s in sim.checkpoints])
    assert com[-1] - com[0] > 0.002  # it was pushed
    assert np.all(np.diff(px) > -1e-9 * max(1.0, abs(px).max())), px
    assert np.all(np.diff(com) > -1e-9), com


def test_ground_variants_sticky_slip_and_coulomb_friction(ti64):
    """On the ground: slip keeps the sliding speed, sticky stops it, separate decelerates at about mu g."""
    x0 = block((12, 12, 4), 0.005, (0.0, 0.0, 0.0))
    speeds = {}
    for mode in ("slip", "sticky", "separate"):
        cfg = SolverConfig(grid_resolution=20, precision="f64", arch="cpu",
                           domain_min=(-0.03, -0.03, -0.05), domain_max=(0.17, 0.09, 0.05),
                           ground=GroundConfig(height=0.0, friction=0.3, mode=mode))
        model = make_model(x0, 0.005**3, 1000.0, 5e5, 0.3, cfg, v0=np.array([0.3, 0.0, 0.0]))
        sim = Rollout(model, Control(), 0.01, 7)
        sim.forward()
        speeds[mode] = [float(s.v[:, 0].mean()) for s in sim.checkpoints]
    assert abs(speeds["slip"][-1] - 0.3) < 0.01 * 0.3
    assert speeds["sticky"][-1] < 0.25 * 0.3
    # Coulomb: a sliding block decelerates at mu g (grid friction on one node layer: within 25%)
    decel = (speeds["separate"][1] - speeds["separate"][-1]) / 0.06
    assert abs(decel - 0.3 * 9.81) < 0.25 * 0.3 * 9.81, decel


def test_step_api_matches_rollout(ti64):
    """solver.step(state_in, state_out, control, dt) gives the same state as a Rollout substep by substep."""
    x0 = block((3, 3, 3), 0.01, (0.0, 0.0, 0.0))
    cfg = SolverConfig(grid_resolution=12, precision="f64", arch="cpu")
    model = make_model(x0, 1e-6, 1000.0, 1e4, 0.3, cfg, v0=np.array([0.1, 0, 0]))
    sim = Rollout(model, Control(), 0.01, 1, substeps=20)
    xs = sim.forward()
    sv = sim.solver
    a, b = sv.state(0), sv.state(1)
    sv.write_state(0, State.rest(model))
    for _ in range(20):
        sv.step(a, b, Control(), 0.01 / 20)
        a, b = b, a
    assert np.allclose(a.numpy().x, xs[-1], atol=1e-12)


def test_a_grip_weight_per_contact_particle_in_0_1_is_checked():
    """Control.grip: one weight per contact particle, each in (0, 1]; anything else is refused by name."""
    Control("point_adherent", contact=np.array([0, 1]), grip=np.array([0.25, 1.0]))
    with pytest.raises(ValueError, match="Control.grip: 1 weights for 2 contact particles"):
        Control("point_adherent", contact=np.array([0, 1]), grip=np.array([0.5]))
    for bad in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"Control.grip: each weight must lie in \(0, 1\]"):
            Control("point_adherent", contact=np.array([0, 1]), grip=np.array([0.5, bad]))
