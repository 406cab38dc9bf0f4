"""Headless command: ``blender FILE.blend --command physinteract bake [options]``.

Registered with ``bpy.utils.register_cli_command``; the handler runs the same
bake session as the Bake button, blocking, and returns a process exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import bpy

from physinteract import contract

from . import bake_session, scene_to_job
from .preferences import backend_python
from .properties import scene_settings

COMMAND = "physinteract"
_handles: list[Any] = []  # the handle register_cli_command returned (needed to unregister)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"blender FILE.blend --command {COMMAND}", description="PhysInteract headless tools")
    sub = parser.add_subparsers(dest="subcommand", required=True)
    bake = sub.add_parser("bake", help="simulate the scene's keyed interaction into its cache folder")
    bake.add_argument("--scene", help="scene name (default: the active scene)")
    bake.add_argument("--cache", help="cache folder (default: the scene's PhysInteract cache folder)")
    bake.add_argument("--job", help="job folder (default: the scene's PhysInteract job folder)")
    bake.add_argument("--python", help="backend Python (default: the add-on preference)")
    bake.add_argument("--save", action="store_true", help="save the .blend file after a successful bake")
    return parser


def bake_command(argv: Sequence[str]) -> int:
    """Handler of ``--command physinteract``. Returns 0 on success, 1 on a failed
    or cancelled bake, 2 on bad arguments."""
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as e:  # argparse printed the usage
        return int(e.code or 0) if isinstance(e.code, int) else 2
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        print(f"physinteract bake: no scene '{args.scene}'", file=sys.stderr)
        return 2
    s = scene_settings(scene)
    if args.cache:
        s.cache_dir = args.cache
    if args.job:
        s.job_dir = args.job
    try:
        python = args.python or backend_python()
        session = bake_session.BackendSession(scene, python, "simulate")
        state = bake_session.run_blocking(session)
    except (scene_to_job.SceneError, contract.ContractError, RuntimeError, OSError, ValueError) as e:
        print(f"physinteract bake: {e}", file=sys.stderr)
        return 1
    print(f"physinteract bake: {state.lower()}: {session.message}")
    if state != bake_session.FINISHED:
        return 1
    if args.save:
        if not bpy.data.filepath:
            print("physinteract bake: --save needs a saved .blend file", file=sys.stderr)
            return 1
        bpy.ops.wm.save_mainfile()
    return 0


def register() -> None:
    _handles.append(bpy.utils.register_cli_command(COMMAND, bake_command))


def unregister() -> None:
    while _handles:
        bpy.utils.unregister_cli_command(_handles.pop())
