"""simulate_job and `physinteract simulate`: a contract job in, a valid contract cache out."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from physinteract import contract
from physinteract.contract import Ground, Interaction, Job, PointSet, SolverSettings
from tests.mpm.conftest import block


def small_job(frames: int = 4) -> Job:
    x = block((6, 6, 6), 0.005, (0.0, 0.0, 0.05))
    n = len(x)
    top = np.where(x[:, 2] > x[:, 2].max() - 1e-9)[0]  # grasp the top layer
    verts = np.array([[0.0, 0.0, 0.05], [0.03, 0.03, 0.08], [0.015, 0.015, 0.065]])
    o2w = np.eye(4)
    o2w[:3, 3] = [1.0, 2.0, 3.0]
    return Job(
        particles=x, labels=np.zeros(n, np.uint8), volume=np.full(n, 0.005**3), E=np.full(n, 2e4), nu=np.full(n, 0.3),
        density=np.full(n, 500.0), contact=top, trajectory_times=np.array([0.0, 0.2]),
        trajectory=np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.02]]) + x[top].mean(0),
        interaction=Interaction(type="point_adherent"), fps=24.0, frame_start=1, frame_end=frames,
        solver=SolverSettings(grid_resolution=6, precision="f64", arch="cpu", ground=Ground(height=0.05, mode="separate")),
        point_sets=[PointSet("mesh", verts, o2w), PointSet("gauss", verts[:2], np.eye(4), np.tile([1.0, 0, 0, 0], (2, 1)),
                                                         np.full((2, 3), 0.002))],
    )


def test_simulate_job_writes_a_complete_cache_with_tracers(ti64, tmp_path):
    """The cache holds every frame; frame_start is the rest state; tracers move with the body; PC2s are written."""
    from physinteract.mpm import simulate_job

    job = small_job()
    seen = []
    simulate_job(job, tmp_path / "cache", progress=seen.append)
    m = contract.read_cache_manifest(tmp_path / "cache")
    assert m["status"] == "complete"
    assert contract.completed_frames(tmp_path / "cache", verify=True) == [1, 2, 3, 4]
    f1 = contract.read_frame(tmp_path / "cache", 1)
    assert np.allclose(f1["particles.positions"], job.particles.astype(np.float32))
    assert np.allclose(f1["mesh.positions"], job.point_sets[0].rest_positions.astype(np.float32))
    f4 = contract.read_frame(tmp_path / "cache", 4)
    # the grasped set rises 2 cm in 0.2 s; by frame 4 (0.125 s) the body and the centre tracer have risen
    assert f4["particles.positions"][:, 2].mean() > job.particles[:, 2].mean() + 1e-3
    assert f4["mesh.positions"][2, 2] > job.point_sets[0].rest_positions[2, 2] + 1e-3
    assert f4["gauss.rotations"].shape == (2, 4) and np.allclose(np.linalg.norm(f4["gauss.rotations"], axis=1), 1, atol=1e-5)
    assert f4["gauss.scales"].shape == (2, 3)
    pc2 = contract.read_pc2(tmp_path / "cache" / "mesh.pc2")
    samples = pc2[0] if isinstance(pc2, tuple) else pc2
    assert np.allclose(np.asarray(samples)[0], job.point_sets[0].rest_positions - [1.0, 2.0, 3.0], atol=1e-6)
    # first the discretisation: 5 mm particles on 1 cm cells (grid 6 over the 6 cm domain that the tracers pad):
    # 2 per cell, and the block, 6 particles wide, is 3 cells thick
    assert seen[0]["event"] == "resolution" and seen[0]["particles_per_cell"] == pytest.approx(2.0, rel=1e-6)
    assert seen[0]["thinnest_cells"] == pytest.approx(3.0, rel=1e-6)
    assert [w for w in seen[0]["warnings"] if "thinner than 4 grid cells" in w]
    assert [e["frame"] for e in seen[1:-1]] == [1, 2, 3, 4]
    # last, whether it tore: lifted gently, no particle leaves its rest neighbours
    assert seen[-1]["event"] == "tearing" and seen[-1]["share"] == 0.0 and seen[-1]["warnings"] == []
    assert 1.0 <= seen[-1]["max_stretch"] < 1.2


def test_a_block_too_soft_to_hold_its_weight_tears_and_the_simulator_warns(ti64, tmp_path):
    """Hung from its top layer, a 3 cm block must carry rho g h = 150 Pa of its own weight: at E = 20 kPa that
    strains it under 1 % and nothing tears; at E = 20 Pa (strain ~7) it falls apart within 8 frames, and the
    "tearing" event warns."""
    from physinteract.mpm import simulate_job

    for E, torn in ((2e4, False), (20.0, True)):
        job = small_job(8)
        job.trajectory = job.trajectory[:1].repeat(2, axis=0)  # the hand stays still
        job.E = np.full(len(job.particles), E)
        seen: list[dict] = []
        simulate_job(job, tmp_path / f"c{E:g}", progress=seen.append)
        tear = seen[-1]
        assert tear["event"] == "tearing"
        if torn:
            assert tear["share"] > 0.05 and tear["max_stretch"] > 3.0 and "tore" in tear["warnings"][0]
        else:
            assert tear["share"] == 0.0 and tear["max_stretch"] < 1.05 and tear["warnings"] == []


def test_simulate_job_cancel_keeps_written_frames(ti64, tmp_path):
    """should_stop() turning true finishes the cache as cancelled with the frames so far valid."""
    from physinteract.mpm import simulate_job

    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    simulate_job(small_job(6), tmp_path / "c", should_stop=stop)
    assert contract.read_cache_manifest(tmp_path / "c")["status"] == "cancelled"
    assert contract.completed_frames(tmp_path / "c", verify=True) == [1, 2, 3]


def test_simulate_command_runs_and_reports_bad_input(tmp_path):
    """`physinteract simulate` bakes a job (exit 0) and fails clearly (non-zero, error event) on a missing job."""
    contract.write_job(small_job(3), tmp_path / "job")
    cmd = [sys.executable, "-m", "physinteract", "simulate", str(tmp_path / "job"), "--cache", str(tmp_path / "cache"), "--arch", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert contract.read_cache_manifest(tmp_path / "cache")["status"] == "complete"
    r = subprocess.run([sys.executable, "-m", "physinteract", "simulate", str(tmp_path / "nojob"), "--cache", str(tmp_path / "c2")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "job.json" in r.stderr
    events, _ = contract.follow_events(tmp_path / "c2" / contract.EVENTS_FILE)
    assert events and events[-1]["event"] == "error"
