"""Panels for scene.physinteract: Video & Camera, Estimate, Bake."""

from __future__ import annotations

import bpy

from ..properties import scene_settings
from ..utils import layout_of, scene_of
from .common import SidebarPanel


def _progress(layout: bpy.types.UILayout, context: bpy.types.Context) -> None:
    s = scene_settings(scene_of(context))
    if s.is_running:
        layout.progress(factor=s.progress, type="BAR", text=s.status or "running")
        row = layout.row(align=True)
        row.operator("physinteract.cancel", icon="CANCEL")
        row.operator("physinteract.reset_status", text="", icon="LOOP_BACK")
    elif s.status:
        layout.label(text=s.status)


class PHYSINTERACT_PT_video(SidebarPanel):
    bl_label = "Video & Camera"
    bl_order = 4

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        s = scene_settings(scene_of(context))
        layout.prop(s, "clip")
        layout.prop(s, "camera")
        layout.prop(s, "use_scene_range")
        if not s.use_scene_range:
            row = layout.row(align=True)
            row.prop(s, "frame_start")
            row.prop(s, "frame_end")


class PHYSINTERACT_PT_estimate(SidebarPanel):
    bl_label = "Estimate"
    bl_order = 5

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        s = scene_settings(scene_of(context))
        layout.prop(s, "estimate_mode")
        layout.prop(s, "estimate_iterations")
        layout.operator("physinteract.estimate", icon="VIEWZOOM")
        _progress(layout, context)
        if s.is_running and s.estimate_progress_total > 0:
            layout.label(text=f"Iteration {s.estimate_progress_iteration}/{s.estimate_progress_total}, "
                              f"loss {s.estimate_loss:.4g}, ETA {s.estimate_eta_s:.0f} s")
        if s.estimate_E_median > 0.0:
            layout.label(text=f"Median E {s.estimate_E_median:.4g} Pa, nu {s.estimate_nu_median:.3f}", icon="MOD_PHYSICS")


class PHYSINTERACT_PT_bake(SidebarPanel):
    bl_label = "Bake"
    bl_order = 6

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        s = scene_settings(scene_of(context))
        layout.prop(s, "grid_resolution")
        row = layout.row(align=True)
        row.prop(s, "use_ground")
        sub = row.row()
        sub.active = s.use_ground
        sub.prop(s, "ground_height", text="")
        layout.prop(s, "cache_dir")
        layout.prop(s, "job_dir")
        row = layout.row(align=True)
        row.operator("physinteract.bake", icon="PHYSICS")
        row.operator("physinteract.free_bake", icon="TRASH")
        _progress(layout, context)
        if s.max_tick_ms > 0.0:
            layout.label(text=f"Longest UI tick: {s.max_tick_ms:.1f} ms")


CLASSES = (PHYSINTERACT_PT_video, PHYSINTERACT_PT_estimate, PHYSINTERACT_PT_bake)
