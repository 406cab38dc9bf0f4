"""The "PhysInteract" tab of the 3D viewport sidebar, panels in workflow order.
Each file matches a properties file: object.py -> object.physinteract, scene.py -> scene.physinteract."""

from __future__ import annotations

import bpy

from . import object as object_ui
from . import scene as scene_ui

CLASSES = (*object_ui.CLASSES, *scene_ui.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
