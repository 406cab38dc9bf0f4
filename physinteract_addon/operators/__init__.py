"""Operators: fill preview, bake / estimate / cancel / free, backend environment."""

from __future__ import annotations

import bpy

from . import bake, environment, fill

CLASSES = (*fill.CLASSES, *bake.CLASSES, *environment.CLASSES)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    for handlers, fn in bake.HANDLERS:
        handlers.append(fn)


def unregister() -> None:
    for handlers, fn in bake.HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    _unregister_classes()
