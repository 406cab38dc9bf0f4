"""Panels for object.physinteract (the target object): Object, Filling, Material, Interaction."""

from __future__ import annotations

import bpy

from ..gaussians import is_gaussian_object
from ..properties import object_settings, scene_settings
from ..utils import layout_of, scene_of
from .common import SidebarPanel


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


CLASSES = (PHYSINTERACT_PT_object, PHYSINTERACT_PT_filling, PHYSINTERACT_PT_material, PHYSINTERACT_PT_interaction)
