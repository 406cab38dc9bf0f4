"""What every PhysInteract panel shares: the tab it lives in, the running job's progress."""

from __future__ import annotations

import bpy

from ..properties import scene_settings
from ..utils import scene_of


class SidebarPanel(bpy.types.Panel):
    """Base of the panels of the "PhysInteract" tab in the 3D viewport's sidebar (not registered itself)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "PhysInteract"


def draw_progress(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    """The running job's progress bar and Cancel, or the last run's status line."""
    s = scene_settings(scene_of(context))
    if s.is_running:
        layout.progress(factor=s.progress, type="BAR", text=s.status or "running")
        row = layout.row(align=True)
        row.operator("physinteract.cancel", icon="CANCEL")
        row.operator("physinteract.reset_status", text="", icon="LOOP_BACK")
    elif s.status:
        layout.label(text=s.status)
