"""Panels for object.physinteract (the target object): Object, Filling, Material, Interaction."""

from __future__ import annotations

import bpy

from ..gaussians import is_gaussian_object
from ..properties import PhysInteractSceneSettings, object_settings, scene_settings
from ..utils import format_pascals, layout_of, scene_of
from .common import SidebarPanel, draw_progress


class _ObjectPanel(SidebarPanel):
    """A panel about the target object: shown once there is one."""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and scene_settings(scene_of(context)).target is not None


class PHYSINTERACT_PT_object(SidebarPanel):
    bl_label = "Object"
    bl_order = 0

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        s = scene_settings(scene_of(context))
        layout.prop(s, "target")
        if s.target is None:
            layout.label(text="Choose the mesh to estimate or simulate", icon="INFO")
            return
        o = object_settings(s.target)
        layout.prop(o, "representation")
        layout.prop(o, "scale")
        if o.representation == "GAUSSIANS":
            if is_gaussian_object(s.target):
                layout.label(text=f"{len(s.target.data.vertices)} Gaussians", icon="POINTCLOUD_DATA")  # type: ignore[union-attr]
                layout.prop(o, "gaussian_display_size")
            else:
                layout.label(text="Import with File > Import > 3D Gaussian Splatting", icon="INFO")


class PHYSINTERACT_PT_filling(_ObjectPanel):
    bl_label = "Filling"
    bl_order = 1

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        obj = scene_settings(scene_of(context)).target
        o = object_settings(obj)
        layout.prop(o, "fill_mode")
        mesh = obj.data
        if o.fill_mode == "VOLUME":
            col = layout.column(align=True)
            col.prop(o, "fill_resolution")
            col.prop(o, "particle_count")
            layout.operator("physinteract.fill", icon="MOD_PARTICLES")
            if o.fill_count:
                layout.label(text=f"{o.fill_count} particles")
        elif isinstance(mesh, bpy.types.Mesh):
            layout.label(text=f"{len(mesh.vertices)} particles")
        layout.operator("physinteract.fill_preview", icon="HIDE_OFF" if o.show_preview else "HIDE_ON", depress=o.show_preview)


class PHYSINTERACT_PT_material(_ObjectPanel):
    bl_label = "Material"
    bl_order = 2

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        o = object_settings(scene_settings(scene_of(context)).target)
        layout.prop(o, "material_preset")
        col = layout.column(align=True)
        col.prop(o, "youngs_modulus")
        col.prop(o, "poisson_ratio")
        col.prop(o, "density")
        s = scene_settings(scene_of(context))
        if s.estimate_E_median > 0.0:
            draw_legend(layout, s)


def draw_legend(layout: bpy.types.UILayout, s: PhysInteractSceneSettings) -> None:
    """The estimated field's legend: min, median and max E (Pa) beside their colours in the
    'E_color' attribute (log10 E on the ramp), and the median nu."""
    box = layout.box()
    box.label(text="Estimated field (colour attribute 'E_color', log scale)", icon="COLOR")
    for label, value, prop in (("min", s.estimate_E_min, "legend_color_min"), ("median", s.estimate_E_median, "legend_color_median"),
                               ("max", s.estimate_E_max, "legend_color_max")):
        row = box.row(align=True)
        split = row.split(factor=0.25, align=True)
        split.prop(s, prop, text="")
        split.label(text=f"{label} E {format_pascals(value, '.3g')}")
    box.label(text=f"median nu {s.estimate_nu_median:.3f}")


class PHYSINTERACT_PT_interaction(_ObjectPanel):
    bl_label = "Interaction"
    bl_order = 3

    def draw(self, context: bpy.types.Context) -> None:
        layout = layout_of(self)
        obj = scene_settings(scene_of(context)).target
        o = object_settings(obj)
        layout.prop(o, "interaction_type")
        layout.prop(o, "contact_source")
        if o.contact_source == "VERTEX_GROUP":
            layout.prop_search(o, "contact_group", obj, "vertex_groups")
        layout.prop(o, "contact_radius")
        layout.prop(o, "trajectory")
        if o.trajectory is None:
            layout.label(text="Key an Empty's location: its keys are the trajectory", icon="INFO")
        s = scene_settings(scene_of(context))
        box = layout.box()
        box.prop(s, "init_interaction")
        row = box.row(align=True)
        row.prop(s, "use_contact_box")
        sub = row.row(align=True)
        sub.active = s.use_contact_box
        sub.prop(s, "contact_box", text="")
        box.operator("physinteract.init_from_video", icon="TRACKER")
        draw_progress(box, context)
        if o.contact_source == "VIDEO":
            partial = sum(1 for w in o.contact_weights.split() if w != "1")  # a grasp's edge particles, held in part
            box.label(text=f"{len(o.contact_particles.split())} contact particles from the video"
                           + (f", {partial} held in part" if partial else ""))


CLASSES = (PHYSINTERACT_PT_object, PHYSINTERACT_PT_filling, PHYSINTERACT_PT_material, PHYSINTERACT_PT_interaction)
