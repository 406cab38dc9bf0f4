"""A stand-in backend for testing the add-on's plumbing (not physics).

Called exactly like the real one, through an executable wrapper that plays the
role of the backend's Python::

    <wrapper> -m physinteract simulate JOB_DIR --cache CACHE_DIR

It reads the job with the contract and writes a contract cache frame by frame,
moving every point rigidly by the trajectory's displacement from its first
sample: x(frame) = x_rest + (trajectory[i] - trajectory[0]), i = frame - frame_start.
So tests know the exact answer; a Gaussian point set also turns and grows (gaussian_frame).
``--material DIR`` reads the estimated field (as the real command does); the "start" event
records the folder and the median E it uses.

``<wrapper> -m physinteract estimate JOB_DIR --cache DIR [--mode M] [--iterations N] [--quiet]``
writes an "estimate" cache like the real estimator's (frames at rest, material_E.npy,
material_nu.npy, estimate_trajectory*.npy, estimate_contact.npy, estimate.json; events start / scan / progress / done)
with a known field: after k of K iterations E_i = E0_i (1 + 3 r_i k / K), r_i = i / (N - 1),
nu_i = 0.25, so the finished median is 2.5 E0. SIGTERM stops it after the current iteration,
writing the field so far with status "cancelled" and exit code 130 (as the real one does).

``<wrapper> -m physinteract init JOB_DIR [--interaction T] [--contact-box X0,Y0,X1,Y1]`` updates the job
in place with a known interaction (known_initialisation) and writes JOB_DIR/init_events.jsonl.

Environment knobs:
    PHYSINTERACT_FAKE_FRAME_DELAY  seconds to sleep before each frame (default 0)
    PHYSINTERACT_FAKE_ITER_DELAY   seconds to sleep before each estimate iteration (default 0)
    PHYSINTERACT_FAKE_FAIL_AT      estimate: fail (error event, exit 1) at this iteration
    PHYSINTERACT_FAKE_WARNING      simulate: the one warning of its "resolution" event (default none)
    PHYSINTERACT_FAKE_TEARING      simulate: the one warning of its "tearing" event, after the last frame (default none)
    PHYSINTERACT_FAKE_STAGE_DELAY  init: seconds to sleep before each stage (default 0)
    PHYSINTERACT_FAKE_INIT_FAIL    init: fail (error event, exit 1) in this stage
Exit codes follow the real command line: 2 for an invalid job (ContractError).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from physinteract import contract

INIT_STAGES = ("video", "vlm", "pose", "segment", "contact", "track", "write")  # as physinteract.perception.init.STAGES

def known_field(E0: np.ndarray, done: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """The fake estimate's (E [N] Pa, nu [N]) after ``done`` of ``total`` iterations."""
    r = np.linspace(0.0, 1.0, len(E0)) if len(E0) > 1 else np.zeros(len(E0))
    return np.asarray(E0, float) * (1.0 + 3.0 * r * done / max(total, 1)), np.full(len(E0), 0.25)


def known_contact(contact: np.ndarray) -> np.ndarray:
    """The fake estimate's contact set: the job's with particle 0 toggled (a known, visible change)."""
    return np.setxor1d(np.asarray(contact, np.int64), [0])


def estimate(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("job")
    p.add_argument("--cache", required=True)
    p.add_argument("--mode", default="joint")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    cache = Path(args.cache)
    events = contract.EventLog(cache / contract.EVENTS_FILE)
    try:
        job = contract.read_job(args.job)
    except contract.ContractError as e:
        events.emit("error", message=str(e))
        print(f"physinteract estimate: invalid input: {e}", file=sys.stderr)
        return 2
    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    delay = float(os.environ.get("PHYSINTERACT_FAKE_ITER_DELAY", "0"))
    fail_at = int(os.environ.get("PHYSINTERACT_FAKE_FAIL_AT", "0"))
    total, done = args.iterations, 0
    events.emit("start", mode=args.mode, iterations=total, particles=len(job.particles))
    events.emit("scan", step=0, log10_factor=0.0, loss=1.0)
    for it in range(total):
        if stop["requested"]:
            break
        if delay:
            time.sleep(delay)
        if it + 1 == fail_at:
            events.emit("error", message=f"fake estimate failed at iteration {it + 1}")
            return 1
        done = it + 1
        E, _ = known_field(job.E, done, total)
        events.emit("progress", iteration=done, iterations=total, loss=1.0 / (done + 1), psnr=20.0 + done,
                    E_median=float(np.median(E)), eta_s=delay * (total - done), fraction=done / total)
    if done == 0:
        return 130
    sets = [contract.PointSetInfo("particles", len(job.particles))]
    sets += [contract.PointSetInfo(ps.name, len(ps.rest_positions), np.linalg.inv(ps.object_to_world)) for ps in job.point_sets]
    w = contract.CacheWriter(cache, "estimate", job.fps, job.frame_start, job.frame_end, sets, job=str(args.job))
    rest = {"particles": {"positions": job.particles}, **{ps.name: {"positions": ps.rest_positions} for ps in job.point_sets}}
    for frame in range(job.frame_start, job.frame_end + 1):
        w.write_frame(frame, rest)
    E, nu = known_field(job.E, done, total)
    w.write_material(E, nu)
    contract.atomic_save_npy(cache / "estimate_trajectory.npy", np.asarray(job.trajectory, float))
    contract.atomic_save_npy(cache / "estimate_trajectory_times.npy", np.asarray(job.trajectory_times, float))
    contract.atomic_save_npy(cache / contract.CONTACT_FILE, known_contact(job.contact))
    contract.atomic_write_json(cache / "estimate.json", {"iterations": done, "E": {"median": float(np.median(E))}})
    w.finish("cancelled" if stop["requested"] else "complete")
    events.emit("done", iterations=done, E={"median": float(np.median(E))})
    return 130 if stop["requested"] else 0


GAUSSIAN_TURN = 0.1  # rad per frame about world +z: the fake's Gaussians turn ...
GAUSSIAN_GROWTH = 0.05  # ... and grow by this fraction of their rest size per frame


def gaussian_frame(rest_rotations: np.ndarray, rest_scales: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    """The fake's Gaussians ``i`` frames after rest: (rotations [V, 4] w-first = q_z(i GAUSSIAN_TURN) * q_rest,
    scales [V, 3] = rest (1 + i GAUSSIAN_GROWTH)), both world."""
    half = 0.5 * GAUSSIAN_TURN * i
    qw, qz = np.cos(half), np.sin(half)
    q = np.asarray(rest_rotations, np.float64)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    turned = np.stack([qw * w - qz * z, qw * x - qz * y, qw * y + qz * x, qw * z + qz * w], axis=1)
    return turned, np.asarray(rest_scales, np.float64) * (1.0 + GAUSSIAN_GROWTH * i)


INIT_LIFT = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.02], [0.02, 0.0, 0.03]])  # m, the fake T0's offsets from the contact centroid


def known_initialisation(job: contract.Job, interaction: str | None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """The fake init's answer: (type, contact = the particles in the top 30% of the height, T0 times [3] s spanning the
    clip, T0 [3, 3] m = the contact centroid + INIT_LIFT)."""
    z = np.asarray(job.particles)[:, 2]
    contact = np.flatnonzero(z >= z.max() - 0.3 * np.ptp(z)).astype(np.int64)
    times = np.linspace(0.0, (job.num_frames - 1) / job.fps, len(INIT_LIFT))
    return interaction or "point_non_adherent", contact, times, np.asarray(job.particles)[contact].mean(0) + INIT_LIFT


def known_contact_weights(job: contract.Job, contact: np.ndarray) -> np.ndarray:
    """The fake init's share of each contact particle a grasp holds: half for the lowest tenth of the set's height,
    whole above."""
    z = np.asarray(job.particles)[contact, 2]
    return np.where(z < z.min() + 0.1 * np.ptp(z), 0.5, 1.0)


def init(argv: list[str]) -> int:
    """``init JOB_DIR [--interaction T] [--contact-box X0,Y0,X1,Y1]``: updates the job in place with the known answer."""
    p = argparse.ArgumentParser()
    p.add_argument("job")
    p.add_argument("--interaction", default=None)
    p.add_argument("--contact-box", type=lambda v: [int(c) for c in v.split(",")], default=None)
    args = p.parse_args(argv)
    events = contract.EventLog(Path(args.job) / "init_events.jsonl")
    events.emit("start", stage="start", fraction=0.0, message="fake init")
    try:
        job = contract.read_job(args.job)
    except contract.ContractError as e:
        events.emit("error", message=str(e))
        return 2
    delay = float(os.environ.get("PHYSINTERACT_FAKE_STAGE_DELAY", "0"))
    stages = INIT_STAGES
    for k, stage in enumerate(stages):
        if delay:
            time.sleep(delay)
        events.emit("stage", stage=stage, fraction=k / len(stages), message=f"{stage}...")
        if os.environ.get("PHYSINTERACT_FAKE_INIT_FAIL") == stage:
            events.emit("error", stage=stage, message=f"fake init failed in stage '{stage}'")
            return 1
        events.emit("progress", stage=stage, fraction=(k + 1) / len(stages))
    kind, contact, times, traj = known_initialisation(job, args.interaction)
    job.interaction.type, job.contact, job.trajectory_times, job.trajectory = kind, contact, times, traj
    job.contact_weights = known_contact_weights(job, contact) if kind == "point_adherent" else None
    contract.write_job(job, args.job)
    events.emit("done", interaction_type=kind, contact_count=len(contact), keyframes=len(times), contact_box=args.contact_box)
    return 0


def main(argv: list[str]) -> int:
    if argv[:3] == ["-m", "physinteract", "estimate"]:
        return estimate(argv[3:])
    if argv[:3] == ["-m", "physinteract", "init"]:
        return init(argv[3:])
    if argv[:3] != ["-m", "physinteract", "simulate"]:
        print(f"fake backend: unsupported command {argv}", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser()
    p.add_argument("job")
    p.add_argument("--cache", required=True)
    p.add_argument("--material", default=None)
    args = p.parse_args(argv[3:])
    try:
        job = contract.read_job(args.job)
        if args.material is not None:
            job.E, job.nu = contract.read_material(args.material, len(job.particles))
    except contract.ContractError as e:
        print(f"physinteract simulate: invalid input: {e}", file=sys.stderr)
        return 2
    delay = float(os.environ.get("PHYSINTERACT_FAKE_FRAME_DELAY", "0"))
    sets = [contract.PointSetInfo(ps.name, len(ps.rest_positions), np.linalg.inv(ps.object_to_world),
                                  has_rotations=ps.rest_rotations is not None, has_scales=ps.rest_scales is not None)
            for ps in job.point_sets]
    sets.append(contract.PointSetInfo("particles", len(job.particles)))
    gaussian_sets = {ps.name: ps for ps in job.point_sets if ps.rest_rotations is not None and ps.rest_scales is not None}
    rest = {ps.name: np.asarray(ps.rest_positions, float) for ps in job.point_sets}
    rest["particles"] = np.asarray(job.particles, float)
    w = contract.CacheWriter(args.cache, "simulate", job.fps, job.frame_start, job.frame_end, sets, job=str(args.job))
    traj = np.asarray(job.trajectory, float)
    total = job.num_frames
    warning = os.environ.get("PHYSINTERACT_FAKE_WARNING")
    w.events.emit("resolution", warnings=[warning] if warning else [])  # as the real one, before "start"
    w.events.emit("start", frames_total=total, material=args.material, E_median=float(np.median(job.E)))
    for i, frame in enumerate(range(job.frame_start, job.frame_end + 1)):
        if delay:
            time.sleep(delay)
        d = traj[min(i, len(traj) - 1)] - traj[0] if len(traj) else np.zeros(3)
        data = {name: {"positions": x + d} for name, x in rest.items()}
        for name, ps in gaussian_sets.items():
            data[name]["rotations"], data[name]["scales"] = gaussian_frame(ps.rest_rotations, ps.rest_scales, i)
        w.write_frame(frame, data)
        w.events.emit("frame", frame=frame, frames_done=i + 1, frames_total=total)
    tearing = os.environ.get("PHYSINTERACT_FAKE_TEARING")
    w.events.emit("tearing", warnings=[tearing] if tearing else [])  # as the real one, after the last frame
    w.finish("complete")
    w.events.emit("done", message="fake bake complete")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
