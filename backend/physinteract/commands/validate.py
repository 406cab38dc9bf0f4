"""``physinteract validate``: check a job or cache folder against the contract."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "check a job folder (job.json) or cache folder (cache.json) against the contract"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", type=Path, help="a job or cache folder")


def run(args: argparse.Namespace) -> int:
    from physinteract import contract

    folder: Path = args.folder
    if (folder / contract.JOB_MANIFEST).is_file():
        job = contract.read_job(folder)
        print(json.dumps({"kind": "job", "name": job.name, "particles": len(job.particles), "frames": job.num_frames,
                          "interaction": job.interaction.type}))
        return 0
    m = contract.read_cache_manifest(folder)
    frames = contract.completed_frames(folder, verify=True)
    print(json.dumps({"kind": "cache", "status": m["status"], "frames_completed": len(frames),
                      "frame_range": [m["frame_start"], m["frame_end"]]}))
    return 0
