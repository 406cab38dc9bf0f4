"""The "PhysInteract" tab of the 3D viewport sidebar, panels in workflow order.
Each file matches a properties file: object.py -> object.physinteract, scene.py -> scene.physinteract."""

from __future__ import annotations

import bpy

from . import object as object_ui
from . import scene as scene_ui

CLASSES = (*object_ui.CLASSES, *scene_ui.CLASSES)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
