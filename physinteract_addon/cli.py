"""Headless commands: ``blender FILE.blend --command physinteract <bake|estimate|init> [options]``.

Registered with ``bpy.utils.register_cli_command``; each subcommand runs the same
session as its button (Bake, Estimate Material, Initialise from Video), blocking,
prints the progress lines as they change and returns a process exit code: 0 on
success, 1 on a failed or cancelled run (the message on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import bpy

from physinteract import contract

from . import bake_session, init_session, scene_to_job
from .preferences import backend_python
from .properties import scene_settings
from .properties.object import INTERACTION_ITEMS

COMMAND = "physinteract"
_handles: list[Any] = []  # the handle register_cli_command returned (needed to unregister)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scene", help="scene name (default: the active scene)")
    p.add_argument("--cache", help="cache folder (default: the scene's PhysInteract cache folder)")
    p.add_argument("--job", help="job folder (default: the scene's PhysInteract job folder)")
    p.add_argument("--python", help="backend Python (default: the add-on preference)")
    p.add_argument("--save", action="store_true", help="save the .blend file after a successful run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"blender FILE.blend --command {COMMAND}", description="PhysInteract headless tools")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    bake = sub.add_parser("bake", help="simulate the scene's keyed interaction into its cache folder")
    _common(bake)
    bake.add_argument("--initial-material", action="store_true",
                      help="bake with the initial E, nu even when the scene has an estimated material")
    est = sub.add_parser("estimate", help="estimate the material field from the scene's video into <cache>/estimate")
    _common(est)
    est.add_argument("--mode", choices=("joint", "material_only", "trajectory_only"), help="default: the scene's setting")
    est.add_argument("--iterations", type=int, help="gradient iterations (default: the scene's setting)")
    init = sub.add_parser("init", help="initialise the interaction (type, contact, trajectory) from the scene's video")
    _common(init)
    init.add_argument("--interaction", choices=[i[0] for i in INTERACTION_ITEMS], help="the interaction type (default: detect)")
    init.add_argument("--contact-box", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"),
                      help="the contact region's box in the first video frame (pixels)")
    return parser


def _session(args: argparse.Namespace, scene: bpy.types.Scene, python: str) -> bake_session.BackendSession:
    s = scene_settings(scene)
    if args.subcommand == "estimate":
        if args.mode:
            s.estimate_mode = args.mode
        if args.iterations is not None:
            s.estimate_iterations = args.iterations
        return bake_session.EstimateSession(scene, python, s.estimate_mode, s.estimate_iterations)
    if args.subcommand == "init":
        if args.interaction:
            s.init_interaction = args.interaction
        if args.contact_box:
            s.use_contact_box, s.contact_box = True, args.contact_box
        return init_session.InitSession(scene, python)
    session = bake_session.BackendSession(scene, python, "simulate")
    if args.initial_material:
        session.use_estimate = False
    return session


def run_command(argv: Sequence[str]) -> int:
    """Handler of ``--command physinteract``. Returns 0 on success, 1 on a failed or
    cancelled run, 2 on bad arguments."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as e:  # argparse printed the usage
        return int(e.code or 0) if isinstance(e.code, int) else 2
    name = f"{COMMAND} {args.subcommand}"
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        print(f"{name}: no scene '{args.scene}'", file=sys.stderr)
        return 2
    s = scene_settings(scene)
    if args.cache:
        s.cache_dir = args.cache
    if args.job:
        s.job_dir = args.job
    try:
        python = args.python or backend_python()
        session = _session(args, scene, python)
        state = bake_session.run_blocking(session, report=lambda line: print(f"{name}: {line}", flush=True))
    except (scene_to_job.SceneError, contract.ContractError, RuntimeError, OSError, ValueError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    if state != bake_session.FINISHED:
        print(f"{name}: {state.lower()}: {session.message}", file=sys.stderr)
        return 1
    print(f"{name}: {state.lower()}: {session.message}")
    if args.save:
        if not bpy.data.filepath:
            print(f"{name}: --save needs a saved .blend file", file=sys.stderr)
            return 1
        bpy.ops.wm.save_mainfile()
    return 0


bake_command = run_command  # the handler's first name (scripts/bake_blend.py calls it)


def register() -> None:
    _handles.append(bpy.utils.register_cli_command(COMMAND, run_command))


def unregister() -> None:
    while _handles:
        bpy.utils.unregister_cli_command(_handles.pop())

