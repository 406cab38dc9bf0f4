"""Headless bake of a .blend file with the bpy module (no Blender binary needed).

    python scripts/bake_blend.py FILE.blend [--scene NAME] [--cache DIR] [--job DIR] [--python PY] [--save]

The same as ``blender FILE.blend --background --command physinteract bake ...``
(the CLI command the add-on registers), for environments that only have the
bpy module: it enables the add-on from this source tree, opens the file and
calls the command's handler. Exit code 0 on a complete bake.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("blend", type=Path, help="the .blend file to bake")
    args, rest = p.parse_known_args(argv)
    if not args.blend.is_file():
        print(f"bake_blend: {args.blend}: no such .blend file", file=sys.stderr)
        return 2
    # A throw-away Blender user folder: never touch the user's own Blender config.
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="physinteract_bake_user_"))
    import bpy

    addon_utils = importlib.import_module("addon_utils")  # Blender's own module, importable once bpy is
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    addon_utils.enable("physinteract_addon", default_set=True)
    bpy.ops.wm.open_mainfile(filepath=str(args.blend.resolve()))
    cli = importlib.import_module("physinteract_addon.cli")
    return int(cli.bake_command(["bake", *rest]))


if __name__ == "__main__":
    sys.exit(main())
