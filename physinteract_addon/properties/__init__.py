"""All settings live under one namespace: scene.physinteract and object.physinteract."""

from __future__ import annotations

import bpy

from . import object as object_props
from . import scene as scene_props
from .object import MATERIAL_PRESETS, PhysInteractObjectSettings
from .scene import PhysInteractSceneSettings

__all__ = ["MATERIAL_PRESETS", "PhysInteractObjectSettings", "PhysInteractSceneSettings", "object_settings", "scene_settings"]

CLASSES = (*object_props.CLASSES, *scene_props.CLASSES)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def scene_settings(scene: bpy.types.Scene) -> PhysInteractSceneSettings:
    """``scene.physinteract`` with its type (the attribute is added at register time)."""
    return scene.physinteract  # type: ignore[attr-defined,no-any-return]


def object_settings(obj: bpy.types.Object) -> PhysInteractObjectSettings:
    """``obj.physinteract`` with its type."""
    return obj.physinteract  # type: ignore[attr-defined,no-any-return]


def register() -> None:
    _register_classes()
    bpy.types.Scene.physinteract = bpy.props.PointerProperty(type=PhysInteractSceneSettings)  # type: ignore[attr-defined]
    bpy.types.Object.physinteract = bpy.props.PointerProperty(type=PhysInteractObjectSettings)  # type: ignore[attr-defined]


def unregister() -> None:
    del bpy.types.Object.physinteract  # type: ignore[attr-defined]
    del bpy.types.Scene.physinteract  # type: ignore[attr-defined]
    _unregister_classes()
