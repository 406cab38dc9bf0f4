"""Operators: fill preview, bake / estimate / initialise from video / cancel / free, backend environment, 3DGS PLY import / export."""

from __future__ import annotations

import bpy

from .. import gaussian_playback
from . import bake, environment, estimate, fill, gaussian_io, init_video

CLASSES = (*fill.CLASSES, *bake.CLASSES, *estimate.CLASSES, *init_video.CLASSES, *environment.CLASSES, *gaussian_io.CLASSES)
HANDLERS = (*bake.HANDLERS, *gaussian_playback.HANDLERS)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(CLASSES)


def register() -> None:
    _register_classes()
    for handlers, fn in HANDLERS:
        handlers.append(fn)
    for menu, draw in gaussian_io.MENUS:
        menu.append(draw)  # type: ignore[arg-type]  # the stubs omit the menu argument


def unregister() -> None:
    for menu, draw in gaussian_io.MENUS:
        menu.remove(draw)  # type: ignore[arg-type]
    for handlers, fn in HANDLERS:
        if fn in handlers:
            handlers.remove(fn)
    gaussian_playback.clear_memo()
    _unregister_classes()
