"""Importing physinteract.render and physinteract.estimate is light: torch loads only when a name is used."""

from __future__ import annotations

import subprocess
import sys


def test_render_and_estimate_packages_do_not_import_torch():
    """`import physinteract.render, physinteract.estimate` leaves torch unloaded; `physinteract.render.render` loads it."""
    code = (
        "import sys, physinteract.render, physinteract.estimate\n"
        "assert 'torch' not in sys.modules, 'torch imported by a package __init__'\n"
        "assert callable(physinteract.render.render) and 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
