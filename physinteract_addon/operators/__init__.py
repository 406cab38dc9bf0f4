"""Operators: fill preview, bake / estimate / cancel / free, backend environment."""

from __future__ import annotations

import bpy

from . import bake, environment, fill

CLASSES = (*fill.CLASSES, *bake.CLASSES, *environment.CLASSES)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for handlers, fn in bake.HANDLERS:
        handlers.append(fn)


def unregister() -> None:
    for handlers, fn in bake.HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
