"""Shared fixtures for the backend tests."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from physinteract import contract


@pytest.fixture(autouse=True)
def _free_solvers():
    """Collect each test's leftovers: an Estimator's simulator and solver outlive it until the
    cyclic collector runs (seen with weakrefs), and the solver's Taichi fields (hundreds of MB,
    freed by MPMSolver.__del__) must not pile up across tests."""
    yield
    gc.collect()


def make_job(n: int = 40, frames: int = 6, with_camera: bool = True, seed: int = 0) -> contract.Job:
    """A small valid job: a 4 cm cube of random particles pulled by two of them."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.02, 0.02, size=(n, 3)) + np.array([0.0, 0.0, 0.05])
    labels = (np.linalg.norm(x - x.mean(0), axis=1) < 0.01).astype(np.uint8)
    job = contract.Job(
        particles=x,
        labels=labels,
        volume=np.full(n, 0.04**3 / n),
        E=np.full(n, 2.0e5),
        nu=np.full(n, 0.3),
        density=np.full(n, 1000.0),
        contact=np.array([0, 1]),
        trajectory_times=np.array([0.0, 0.1, 0.2]),
        trajectory=np.array([[0.0, 0.0, 0.05], [0.0, 0.0, 0.06], [0.0, 0.0, 0.07]]),
        interaction=contract.Interaction(type="point_adherent"),
        fps=24.0,
        frame_start=1,
        frame_end=frames,
        name="tiny",
        metadata={"source": "test"},
        point_sets=[contract.PointSet("mesh", rng.normal(size=(8, 3)) * 0.01, np.eye(4))],
    )
    if with_camera:
        w2c = np.tile(np.eye(4), (frames, 1, 1))
        w2c[:, 2, 3] = 0.5
        job.camera = contract.Camera(64, 48, np.array([[80.0, 0, 32], [0, 80.0, 24], [0, 0, 1]]), w2c)
    return job


@pytest.fixture
def tiny_job() -> contract.Job:
    return make_job()
