"""The ``physinteract`` command line.

Each subcommand lives in ``physinteract.commands.<name>`` and defines ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import
nothing heavy at module level, so ``physinteract --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from physinteract import __version__
from physinteract.contract import ContractError

# name -> module; the order is the order of ``--help``.
COMMANDS: dict[str, str] = {
    "doctor": "physinteract.commands.doctor",
    "validate": "physinteract.commands.validate",
    "example": "physinteract.commands.example",
    "fill": "physinteract.commands.fill",
    "models": "physinteract.commands.models",
    "simulate": "physinteract.commands.simulate",
    "init": "physinteract.commands.init",
    "estimate": "physinteract.commands.estimate",
    "bench": "physinteract.commands.bench",
    "benchmark": "physinteract.commands.benchmark",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physinteract",
        description="PhysInteract backend: differentiable MPM estimation of material and interaction "
        "from video, and baking of novel interactions into Blender point caches.",
    )
    parser.add_argument("--version", action="version", version=f"physinteract {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:  # command not built yet in this checkout
                continue
            raise
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ContractError as e:
        print(f"physinteract {args.command}: invalid input: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"physinteract {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
