"""``physinteract validate``: check a job or cache folder against the contract."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = ("check a job folder (job.json) or cache folder (cache.json) against the contract; for a job, also how "
        "well its grid resolves the object (particles per cell, cells across thin parts)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a job or cache folder")


def run(args: argparse.Namespace) -> int:
    from physinteract import contract

    folder: Path = args.folder
    if (folder / contract.JOB_MANIFEST).is_file():
        job = contract.read_job(folder)
        report: dict[str, object] = {"kind": "job", "name": job.name, "particles": len(job.particles),
                                     "frames": job.num_frames, "interaction": job.interaction.type}
        from physinteract.mpm.resolution import job_resolution  # numpy only, like the contract

        resolution = job_resolution(job)
        report["resolution"] = resolution.summary()
        for warning in resolution.warnings():
            print(f"physinteract validate: warning: {folder}: {warning}", file=sys.stderr)
        print(json.dumps(report))
        return 0
    m = contract.read_cache_manifest(folder)
    frames = contract.completed_frames(folder, verify=True)
    print(json.dumps({"kind": "cache", "status": m["status"], "frames_completed": len(frames),
                      "frame_range": [m["frame_start"], m["frame_end"]]}))
    return 0
