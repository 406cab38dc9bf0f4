"""Add-on preferences: which Python runs the backend, default cache folder."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
from bpy.props import StringProperty

ADDON_ID = __package__ or "physinteract_addon"


def venv_dir() -> Path:
    """Where "Create backend environment" puts the backend's virtual environment:
    the extension's own writable user folder."""
    try:
        return Path(bpy.utils.extension_path_user(ADDON_ID, path="backend_venv", create=False))
    except ValueError:  # not installed as an extension (e.g. run from the source tree)
        return Path(bpy.utils.user_resource("SCRIPTS", path="physinteract")) / "backend_venv"


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


class PhysInteractPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(  # type: ignore[valid-type]
        name="Backend Python",
        description="Python interpreter with the physinteract backend installed (empty: the environment "
        "made by 'Create Backend Environment')",
        default="", subtype="FILE_PATH",
    )
    default_cache_dir: StringProperty(  # type: ignore[valid-type]
        name="Default Cache Folder",
        description="Where caches and jobs go while the .blend file is not saved yet (empty: the system temp folder)",
        default="", subtype="DIR_PATH",
    )
    env_status: StringProperty(name="Environment Status", default="")  # type: ignore[valid-type]

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "python_path")
        row = layout.row()
        row.operator("physinteract.create_backend_env", icon="CONSOLE")
        row.label(text=f"Environment: {venv_dir()}")
        if self.env_status:
            layout.label(text=self.env_status)
        layout.prop(self, "default_cache_dir")


def addon_preferences(context: bpy.types.Context | None = None) -> PhysInteractPreferences | None:
    prefs = (context or bpy.context).preferences
    entry = None if prefs is None else prefs.addons.get(ADDON_ID)
    return None if entry is None else entry.preferences  # type: ignore[return-value]


def backend_python(context: bpy.types.Context | None = None) -> str:
    """The interpreter that runs the backend. Raises RuntimeError with advice when none is set up."""
    prefs = addon_preferences(context)
    if prefs is not None and prefs.python_path:
        path = bpy.path.abspath(prefs.python_path)
        if not Path(path).is_file():
            raise RuntimeError(f"Backend Python '{path}' (add-on preferences) does not exist")
        return path
    py = venv_python(venv_dir())
    if py.is_file():
        return str(py)
    raise RuntimeError("No backend Python: set one in the add-on preferences or press 'Create Backend Environment'")


CLASSES = (PhysInteractPreferences,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
