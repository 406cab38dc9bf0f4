"""A stand-in backend for testing the add-on's plumbing (not physics).

Called exactly like the real one, through an executable wrapper that plays the
role of the backend's Python::

    <wrapper> -m physinteract simulate JOB_DIR --cache CACHE_DIR

It reads the job with the contract and writes a contract cache frame by frame,
moving every point rigidly by the trajectory's displacement from its first
sample: x(frame) = x_rest + (trajectory[i] - trajectory[0]), i = frame - frame_start.
So tests know the exact answer. Environment knobs:
    PHYSINTERACT_FAKE_FRAME_DELAY  seconds to sleep before each frame (default 0)
Exit codes follow the real command line: 2 for an invalid job (ContractError).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from physinteract import contract


def main(argv: list[str]) -> int:
    if argv[:3] != ["-m", "physinteract", "simulate"]:
        print(f"fake backend: unsupported command {argv}", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser()
    p.add_argument("job")
    p.add_argument("--cache", required=True)
    args = p.parse_args(argv[3:])
    try:
        job = contract.read_job(args.job)
    except contract.ContractError as e:
        print(f"physinteract simulate: invalid input: {e}", file=sys.stderr)
        return 2
    delay = float(os.environ.get("PHYSINTERACT_FAKE_FRAME_DELAY", "0"))
    sets = [contract.PointSetInfo(ps.name, len(ps.rest_positions), np.linalg.inv(ps.object_to_world)) for ps in job.point_sets]
    sets.append(contract.PointSetInfo("particles", len(job.particles)))
    rest = {ps.name: np.asarray(ps.rest_positions, float) for ps in job.point_sets}
    rest["particles"] = np.asarray(job.particles, float)
    w = contract.CacheWriter(args.cache, "simulate", job.fps, job.frame_start, job.frame_end, sets, job=str(args.job))
    traj = np.asarray(job.trajectory, float)
    total = job.num_frames
    w.events.emit("start", frames_total=total)
    for i, frame in enumerate(range(job.frame_start, job.frame_end + 1)):
        if delay:
            time.sleep(delay)
        d = traj[min(i, len(traj) - 1)] - traj[0] if len(traj) else np.zeros(3)
        w.write_frame(frame, {name: {"positions": x + d} for name, x in rest.items()})
        w.events.emit("frame", frame=frame, frames_done=i + 1, frames_total=total)
    w.finish("complete")
    w.events.emit("done", message="fake bake complete")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
