"""Panels for scene.physinteract: Video & Camera, Estimate, Bake."""

from __future__ import annotations

import bpy

from ..bake_session import has_estimate
from ..properties import scene_settings
from ..scene_to_job import SceneError, resolve_dir
from ..utils import layout_of, scene_of
from .common import SidebarPanel, draw_progress


def estimate_exists(context: bpy.types.Context) -> bool:
    """Whether the scene's cache folder holds an estimated material field (a cheap file check, fine in draw())."""
    scene = scene_of(context)
    try:
        return has_estimate(resolve_dir(scene_settings(scene).cache_dir, scene, "cache folder"))
    except SceneError:
        return False


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
        draw_progress(layout, context)
        if s.is_running and s.estimate_progress_total > 0:
            layout.label(text=f"Iteration {s.estimate_progress_iteration}/{s.estimate_progress_total}, "
                              f"loss {s.estimate_loss:.4g}, ETA {s.estimate_eta_s:.0f} s")
        if s.estimate_E_median > 0.0:
            layout.label(text=f"Median E {s.estimate_E_median:.4g} Pa, nu {s.estimate_nu_median:.3f}", icon="MOD_PHYSICS")
            if s.estimate_contact_count >= 0:
                layout.label(text=f"In contact: {s.estimate_contact_count} particles (attribute 'contact')", icon="PIVOT_CURSOR")


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
        row = layout.row()
        row.active = estimate_exists(context)
        row.prop(s, "use_estimated_material")
        if s.use_estimated_material and not row.active:
            layout.label(text="No estimate yet: the bake uses the initial material", icon="INFO")
        row = layout.row(align=True)
        row.operator("physinteract.bake", icon="PHYSICS")
        row.operator("physinteract.free_bake", icon="TRASH")
        draw_progress(layout, context)
        if s.max_tick_ms > 0.0:
            layout.label(text=f"Longest UI tick: {s.max_tick_ms:.1f} ms")


CLASSES = (PHYSINTERACT_PT_video, PHYSINTERACT_PT_estimate, PHYSINTERACT_PT_bake)
