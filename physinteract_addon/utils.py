"""Small typed helpers for bpy's optional context members."""

from __future__ import annotations

from typing import Literal

import bpy

OperatorResult = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


def format_pascals(e: float, spec: str = "g") -> str:
    """A stress or modulus in the largest of GPa, MPa, kPa, Pa that keeps it >= 1 (``spec``: the number's format)."""
    for unit, f in (("GPa", 1e9), ("MPa", 1e6), ("kPa", 1e3)):
        if e >= f:
            return f"{e / f:{spec}} {unit}"
    return f"{e:{spec}} Pa"


def scene_of(context: bpy.types.Context) -> bpy.types.Scene:
    scene = context.scene
    if scene is None:
        raise RuntimeError("no active scene")
    return scene


def window_manager_of(context: bpy.types.Context) -> bpy.types.WindowManager:
    wm = context.window_manager
    if wm is None:
        raise RuntimeError("no window manager")
    return wm


def layout_of(panel: bpy.types.Panel | bpy.types.AddonPreferences) -> bpy.types.UILayout:
    layout = panel.layout
    if layout is None:
        raise RuntimeError("panel has no layout")
    return layout
