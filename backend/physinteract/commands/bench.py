"""``physinteract bench TARGET``: benchmarks that print JSON numbers.

Each target is a module with ``add_arguments(parser)`` and ``run(args) -> dict``;
the dict is printed as JSON on stdout. Speed is measured here, never in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json

HELP = "run a benchmark and print JSON (targets: mpm, bending, ply, render)"

TARGETS = {
    "mpm": "physinteract.mpm.bench",
    "bending": "physinteract.mpm.bending",
    "ply": "physinteract.geometry.bench",
    "render": "physinteract.render.bench",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, modname in TARGETS.items():
        q = sub.add_parser(name, help=f"benchmark {name}")
        q.set_defaults(_bench_module=modname)
        try:
            importlib.import_module(modname).add_arguments(q)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise


def run(args: argparse.Namespace) -> int:
    mod = importlib.import_module(args._bench_module)
    result = mod.run(args)
    print(json.dumps(result, indent=2))
    return 0
