"""Reverse-mode gradients of the MPM rollout checked against central finite differences (float64, CPU)."""

from __future__ import annotations

import numpy as np
import pytest

from physinteract.mpm.config import SolverConfig
from physinteract.mpm.model import Control, make_model, nu_from_theta, theta_from_nu
from physinteract.mpm.rollout import Rollout
from physinteract.mpm.solver import MPMSolver
from tests.mpm.conftest import block

H = 1e-6


class Scene:
    """A tiny elastic block, 2 output frames, checkpointed backward with 4-substep segments."""

    def __init__(self, drive: str, partial_grip: bool = False) -> None:
        rng = np.random.default_rng(7)
        # off the grid's lattice by 0.3 cells along x, so the held face's nodes take a share of the grasp's mass
        # between 0 and 1/2, where grid_node's hold fades and its derivative is checked too
        self.x0 = block((4, 4, 4), 0.005, (0.0015, 0.0, 0.2))
        n = len(self.x0)
        self.cfg = SolverConfig(grid_resolution=8, precision="f64", arch="cpu", backward_segment=4, gravity=(0.0, 0.0, -1.0),
                                domain_min=(-0.01, -0.01, 0.19), domain_max=(0.03, 0.03, 0.23))
        self.E = 300.0 * np.exp(0.3 * rng.normal(size=n))
        self.theta = theta_from_nu(np.full(n, 0.3) + 0.05 * rng.uniform(-1, 1, n))
        self.v0 = 0.05 * rng.normal(size=(n, 3))
        self.contact = np.arange(16)  # the x = min face
        self.grip = rng.uniform(0.3, 1.0, len(self.contact)) if partial_grip else None  # held in part
        self.times = np.array([0.0, 0.03, 0.06, 0.09])
        if drive == "velocity":
            steps = np.array([[0, 0, 0], [0.002, 0, 0.001], [0.003, -0.001, 0.003], [0.004, 0, 0.002]])
            self.values = self.x0[self.contact].mean(0) + steps
        else:
            self.values = np.array([[0.0, 0.0, 0.01], [0.02, 0.0, 0.01], [0.01, -0.01, 0.03], [0.0, 0.01, 0.02]])
        self.drive = drive
        self.wx = rng.normal(size=(2, n, 3))
        self.wF = rng.normal(size=(n, 3, 3))
        self.sim: Rollout | None = None

    def run(self, E=None, theta=None, v0=None, values=None, requires_grad=False) -> float:
        model = make_model(self.x0, 0.005**3, 1000.0, self.E if E is None else E,
                           nu_from_theta(self.theta if theta is None else theta), self.cfg,
                           v0=self.v0 if v0 is None else v0)
        ctrl = Control("point_adherent", self.drive, contact=self.contact, grip=self.grip, times=self.times,
                       values=self.values if values is None else values)
        if self.sim is None:
            self.sim = Rollout(model, ctrl, 1 / 30, 2, requires_grad=True)
        self.sim.model, self.sim.control = model, ctrl
        self.sim.solver.set_material(model.E, model.nu)
        xs = self.sim.forward()
        return float(np.sum(self.wx[0] * xs[1]) + np.sum(self.wx[1] * xs[2]) + np.sum(self.wF * self.sim.checkpoints[2].F))

    def gradients(self):
        self.run()
        assert self.sim is not None
        return self.sim.backward({1: self.wx[0], 2: self.wx[1]}, {2: self.wF})


@pytest.fixture(scope="module")
def velocity_scene(ti64):
    s = Scene("velocity")
    return s, s.gradients()


@pytest.fixture(scope="module")
def force_scene(ti64):
    s = Scene("force")
    return s, s.gradients()


@pytest.fixture(scope="module")
def partial_grip_scene(ti64):
    s = Scene("velocity", partial_grip=True)
    return s, s.gradients()


def check(fd: float, ad: float) -> None:
    assert abs(fd - ad) <= 1e-2 * max(abs(fd), 1e-12), (fd, ad)
    assert abs(fd) > 1e-10  # the direction matters to the loss


def test_gradient_log_E_matches_finite_differences(velocity_scene):
    """dL/dlog(E), per particle, against central differences along a random direction."""
    s, g = velocity_scene
    d = np.random.default_rng(1).normal(size=len(s.E))
    fd = (s.run(E=s.E * np.exp(H * d)) - s.run(E=s.E * np.exp(-H * d))) / (2 * H)
    check(fd, float(g.log_E @ d))


def test_gradient_bounded_nu_matches_finite_differences(velocity_scene):
    """dL/dtheta with nu = 0.49 sigmoid(theta), against central differences."""
    s, g = velocity_scene
    d = np.random.default_rng(2).normal(size=len(s.E))
    fd = (s.run(theta=s.theta + H * d) - s.run(theta=s.theta - H * d)) / (2 * H)
    check(fd, float(g.theta @ d))


def test_gradient_keyframes_matches_finite_differences(velocity_scene):
    """dL/d(trajectory keyframe positions) of a grasp, against central differences."""
    s, g = velocity_scene
    d = np.random.default_rng(3).normal(size=s.values.shape)
    fd = (s.run(values=s.values + H * d) - s.run(values=s.values - H * d)) / (2 * H)
    check(fd, float(np.sum(g.keyframes * d)))


def test_gradient_initial_velocity_matches_finite_differences(velocity_scene):
    """dL/d(initial velocity), per particle, against central differences."""
    s, g = velocity_scene
    d = np.random.default_rng(4).normal(size=s.v0.shape)
    fd = (s.run(v0=s.v0 + H * d) - s.run(v0=s.v0 - H * d)) / (2 * H)
    check(fd, float(np.sum(g.v0 * d)))


def test_gradients_of_a_grasp_holding_each_particle_in_part_match_finite_differences(partial_grip_scene):
    """A grasp that holds each contact particle in part (Control.grip in [0.3, 1]): its particles take that share of
    the hand's velocity and the rest from the grid. dL/d(keyframes), dL/d(initial velocity) and dL/dlog(E) against
    central differences."""
    s, g = partial_grip_scene
    rng = np.random.default_rng(11)
    d = rng.normal(size=s.values.shape)
    check((s.run(values=s.values + H * d) - s.run(values=s.values - H * d)) / (2 * H), float(np.sum(g.keyframes * d)))
    d = rng.normal(size=s.v0.shape)
    check((s.run(v0=s.v0 + H * d) - s.run(v0=s.v0 - H * d)) / (2 * H), float(np.sum(g.v0 * d)))
    d = rng.normal(size=len(s.E))
    check((s.run(E=s.E * np.exp(H * d)) - s.run(E=s.E * np.exp(-H * d))) / (2 * H), float(g.log_E @ d))


def test_gradient_force_keyframes_matches_finite_differences(force_scene):
    """dL/d(force keyframes) of the external-force parameterisation, against central differences."""
    s, g = force_scene
    d = np.random.default_rng(5).normal(size=s.values.shape)
    fd = (s.run(values=s.values + H * d) - s.run(values=s.values - H * d)) / (2 * H)
    check(fd, float(np.sum(g.keyframes * d)))


def test_poker_keyframe_gradient_matches_finite_differences(ti64):
    """dL/d(collider keyframes) of a frictionless sphere poke, against central differences."""
    x0 = block((4, 4, 4), 0.005, (0.0, 0.0, 0.0))
    cfg = SolverConfig(grid_resolution=10, precision="f64", arch="cpu", gravity=(0, 0, 0), backward_segment=8,
                       domain_min=(-0.02, -0.01, -0.01), domain_max=(0.03, 0.04, 0.04))
    model = make_model(x0, 0.005**3, 1000.0, 300.0, 0.3, cfg)
    times = np.array([0.0, 0.05, 0.1])
    values = np.array([[-0.008, 0.01, 0.01], [0.0, 0.011, 0.009], [0.003, 0.01, 0.01]])
    w = np.random.default_rng(6).normal(size=x0.shape)
    sim = Rollout(model, Control(), 0.05, 2, requires_grad=True, substeps=16)

    def run(vals):
        sim.control = Control("point_non_adherent", "velocity", times=times, values=vals, collider="sphere", radius=0.006)
        return float(np.sum(w * sim.forward()[-1]))

    run(values)
    g = sim.backward({2: w})
    d = np.random.default_rng(8).normal(size=values.shape)
    fd = (run(values + H * d) - run(values - H * d)) / (2 * H)
    check(fd, float(np.sum(g.keyframes * d)))


@pytest.mark.parametrize("drive", ["velocity", "force"])
def test_frames_kept_on_the_tape_give_the_recomputed_gradients(ti64, drive):
    """Frames whose substeps the forward pass left on the tape (all of them, or the last one)
    give the same gradients as recomputing every frame from its checkpoint, and a rollout run
    on the solver in between makes the backward pass recompute instead of reading its slots."""
    ref = Scene(drive)
    g0 = ref.gradients()
    assert ref.sim is not None and ref.sim.kept == 2  # 4 slots hold no whole frame: all recomputed
    s = ref.sim.substeps[0]
    for slots, kept in ((2 * s + 1, 0), (s + 1, 1)):
        sc = Scene(drive)
        model = make_model(sc.x0, 0.005**3, 1000.0, sc.E, nu_from_theta(sc.theta), sc.cfg, v0=sc.v0)
        ctrl = Control("point_adherent", drive, contact=sc.contact, times=sc.times, values=sc.values)
        sc.sim = Rollout(model, ctrl, 1 / 30, 2, requires_grad=True,
                         solver=MPMSolver(model, sc.cfg, slots=slots, requires_grad=True))
        sc.run()
        assert sc.sim.kept == kept
        g = sc.sim.backward({1: sc.wx[0], 2: sc.wx[1]}, {2: sc.wF})
        for name in ("log_E", "theta", "keyframes", "v0", "x0"):
            a, b = getattr(g, name), getattr(g0, name)
            assert np.allclose(a, b, rtol=1e-9, atol=1e-12 * np.abs(b).max()), (slots, name)
        # another rollout on the same solver overwrites the slots: the backward pass must notice
        sc.run()
        other = Rollout(model, ctrl, 1 / 30, 2, solver=sc.sim.solver)
        other.forward()
        g = sc.sim.backward({1: sc.wx[0], 2: sc.wx[1]}, {2: sc.wF})
        assert np.allclose(g.log_E, g0.log_E, rtol=1e-9, atol=1e-12 * np.abs(g0.log_E).max())

