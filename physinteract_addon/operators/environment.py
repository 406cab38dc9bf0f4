"""Create the backend's own Python environment: ``python -m venv`` then
``pip install <bundled wheel>[sim,perception]`` (taichi, torch, transformers, OpenCV) and SAM 2,
without blocking the UI."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy

from .. import backend_process
from ..preferences import addon_preferences, venv_dir, venv_python
from ..utils import OperatorResult
from .chain_runner import ChainOperatorMixin

ADDON_ROOT = Path(__file__).resolve().parent.parent


def bundled_wheel() -> Path | None:
    """The backend wheel shipped in the extension's wheels/ folder (None from a source checkout)."""
    wheels = sorted((ADDON_ROOT / "wheels").glob("physinteract-*.whl"))
    return wheels[-1] if wheels else None


def environment_commands(base_python: str, folder: Path, wheel: Path) -> list[list[str]]:
    """Argument lists: make the venv, upgrade pip, install the wheel with its [sim] and [perception]
    extras, then SAM 2 (source only: built against the installed torch, its optional CUDA extension
    is skipped where there is no CUDA compiler)."""
    py = str(venv_python(folder))
    return [
        [base_python, "-m", "venv", str(folder)],
        [py, "-m", "pip", "install", "--upgrade", "pip", "setuptools", "wheel"],
        [py, "-m", "pip", "install", f"{wheel}[sim,perception]"],
        [py, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "sam2>=1.1"],
    ]


class PHYSINTERACT_OT_create_backend_env(ChainOperatorMixin, bpy.types.Operator):
    """Create a Python environment for the simulation backend and install it with pip"""

    bl_idname = "physinteract.create_backend_env"
    bl_label = "Create Backend Environment"
    bl_description = ("Create a virtual environment in the extension's user folder and pip-install the bundled backend "
                      "with taichi and torch (downloads; needs Online Access)")
    bl_options = {"REGISTER"}
    poll_interval_s = 0.5

    def _begin(self, context: bpy.types.Context) -> bool:
        wheel = bundled_wheel()
        if wheel is None:
            self.report({"ERROR"}, "No bundled backend wheel: install PhysInteract from its extension zip")
            return False
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Online access is off (Preferences > System > Network): pip cannot download taichi and torch")
            return False
        folder = venv_dir()
        self._chain = backend_process.CommandChain(environment_commands(sys.executable, folder, wheel),
                                                   folder.parent / "backend_venv_log.txt")
        try:
            self._chain.start()
        except OSError as e:
            self.report({"ERROR"}, f"Could not start {sys.executable}: {e}")
            return False
        self._set_status(context, "creating the environment (1/3)")
        return True

    def _set_status(self, context: bpy.types.Context, text: str) -> None:
        prefs = addon_preferences(context)
        if prefs is not None:
            prefs.env_status = text

    def _end(self, context: bpy.types.Context, code: int) -> OperatorResult:
        assert self._chain is not None
        if code == 0:
            self._set_status(context, f"ready: {venv_python(venv_dir())}")
            self.report({"INFO"}, "Backend environment ready")
            return {"FINISHED"}
        msg = f"step {self._chain.step + 1} failed (exit {code}): {backend_process.last_log_line(self._chain.log_path)}"
        self._set_status(context, msg)
        self.report({"ERROR"}, f"Creating the backend environment failed: {msg} (log: {self._chain.log_path})")
        return {"CANCELLED"}

    def _tick(self, context: bpy.types.Context) -> None:
        assert self._chain is not None
        self._set_status(context, f"step {self._chain.step + 1}/{len(self._chain.commands)} running")


CLASSES = (PHYSINTERACT_OT_create_backend_env,)
