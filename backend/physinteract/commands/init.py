"""``physinteract init JOB_DIR``: the initial interaction from the video (VLM, pose fit, SAM 2, contact, T0)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "initialise a job from its video: interaction type, camera fit, silhouettes, contact particles and trajectory T0"
DESCRIPTION = (
    "The paper's initialisation stage: reads the video (a file, a frame folder or the job's own frames), asks a "
    "vision-language model for the interaction type (falling back to --interaction), fits the camera by differentiable "
    "rendering, segments the object and the contact region with SAM 2, back-projects the contact region to the contact "
    "particles, tracks it (Lucas-Kanade or mask centroids) and lifts it to the keyframed trajectory T0. Writes the job "
    "atomically at the end; progress as JSON lines in --events (default JOB_DIR/init_events.jsonl). Models are never "
    "downloaded: see `physinteract models`."
)


def _floats(n: int, name: str):
    def parse(text: str) -> tuple[float, ...]:
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != n:
            raise argparse.ArgumentTypeError(f"{name}: expected {n} comma-separated numbers, got {text!r}")
        return values

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from physinteract.contract import INTERACTION_TYPES

    p.add_argument("job", type=Path, metavar="JOB_DIR", help="a job folder (job.json) with particles, a camera and Gaussians")
    p.add_argument("--video", type=Path, default=None, help="a video file or a folder of frames (default: the job's video.frames)")
    p.add_argument("--start", type=int, default=0, help="first source frame (from 0)")
    p.add_argument("--end", type=int, default=None, help="last source frame, inclusive (default: the last)")
    p.add_argument("--stride", type=int, default=1, help="keep every N-th frame")
    p.add_argument("--max-size", type=int, default=None, metavar="PX", help="downscale frames to this longest side")
    p.add_argument("--vlm", default=None, metavar="MODEL", help="vision-language model folder or hub id")
    p.add_argument("--sam2", default=None, metavar="MODEL", help="SAM 2 checkpoint folder, .pt or hub id")
    p.add_argument("--sam2-image-size", type=int, default=None, metavar="PX", help=argparse.SUPPRESS)
    p.add_argument("--interaction", choices=INTERACTION_TYPES, default=None,
                   help="the interaction type to use when the VLM is missing or unsure")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--contact-box", type=_floats(4, "--contact-box"), default=None, metavar="X0,Y0,X1,Y1",
                   help="box around the contact region on the first frame (px)")
    g.add_argument("--contact-point", type=_floats(2, "--contact-point"), default=None, metavar="U,V",
                   help="a click on the contact region on the first frame (px)")
    g.add_argument("--contact-mask", type=Path, default=None, metavar="PNG", help="the contact region on the first frame")
    p.add_argument("--keyframe-spacing", type=int, default=2, metavar="N", help="frames between trajectory keyframes")
    p.add_argument("--no-pose-fit", action="store_true", help="keep the job's camera")
    p.add_argument("--events", type=Path, default=None, metavar="FILE", help="JSON-lines progress file")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")


def run(args: argparse.Namespace) -> int:
    from physinteract.contract import ContractError
    from physinteract.perception.init import InitOptions, run_init

    opts = InitOptions(
        video=args.video, start=args.start, end=args.end, stride=args.stride, max_size=args.max_size, vlm=args.vlm,
        sam2=args.sam2, interaction=args.interaction, contact_box=args.contact_box, contact_point=args.contact_point,
        contact_mask=args.contact_mask, keyframe_spacing=args.keyframe_spacing, pose_fit=not args.no_pose_fit,
        events=args.events, device=args.device, sam2_image_size=args.sam2_image_size,
    )
    try:
        result = run_init(args.job, opts)
    except ContractError as e:
        print(f"physinteract init: invalid input: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"physinteract init: failed: {e}", file=sys.stderr)
        return 1
    s = result.summary
    print(f"init: {s['interaction']['type']} ({s['interaction']['source']}), {s['contact_count']} contact particles, "
          f"{s['keyframes']} keyframes (tracker {result.tracker}) -> {args.job}")
    return 0
