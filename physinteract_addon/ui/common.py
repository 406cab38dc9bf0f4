"""What every PhysInteract panel shares: the tab it lives in, the running job's progress."""

from __future__ import annotations

import textwrap

import bpy

from ..properties import scene_settings
from ..utils import scene_of

WRAP_CHARS = 48  # a warning's line length in the sidebar


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
    if s.backend_warning:
        col = layout.column(align=True)
        for i, line in enumerate(textwrap.wrap(s.backend_warning, WRAP_CHARS)):
            col.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
