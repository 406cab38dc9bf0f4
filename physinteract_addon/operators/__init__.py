"""Operators: fill preview, bake / estimate / cancel / free, backend environment, 3DGS PLY import / export."""

from __future__ import annotations

import bpy

from . import bake, environment, estimate, fill, gaussian_io

CLASSES = (*fill.CLASSES, *bake.CLASSES, *estimate.CLASSES, *environment.CLASSES, *gaussian_io.CLASSES)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    for handlers, fn in bake.HANDLERS:
        handlers.append(fn)
    for menu, draw in gaussian_io.MENUS:
        menu.append(draw)  # type: ignore[arg-type]  # the stubs omit the menu argument


def unregister() -> None:
    for menu, draw in gaussian_io.MENUS:
        menu.remove(draw)  # type: ignore[arg-type]
    for handlers, fn in bake.HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    _unregister_classes()
