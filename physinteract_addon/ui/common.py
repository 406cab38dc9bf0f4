"""What every PhysInteract panel shares: the tab it lives in."""

from __future__ import annotations

import bpy


class SidebarPanel(bpy.types.Panel):
    """Base of the panels of the "PhysInteract" tab in the 3D viewport's sidebar (not registered itself)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "PhysInteract"
