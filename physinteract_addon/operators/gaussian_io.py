"""File > Import / Export > 3D Gaussian Splatting (.ply).

Import reads the file with the backend's numpy-only reader
(``physinteract.geometry.gaussians``) and makes a vertex-only mesh object holding
every PLY property as a point attribute (see :mod:`..gaussians`). Export writes
the active Gaussian object's attributes back as a binary little-endian 3DGS PLY,
positions in OBJECT space (the object's location, rotation and scale are not
applied; the file matches what was imported). Bad files become a report naming
the file and what is wrong, and the scene is left as it was.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy.props import FloatProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from physinteract import contract

from .. import gaussians
from ..utils import OperatorResult


def export_object(context: bpy.types.Context) -> bpy.types.Object | None:
    """The Gaussian object to export: the active object, else the only selected Gaussian object."""
    if gaussians.is_gaussian_object(context.active_object):
        return context.active_object
    chosen = [o for o in (context.selected_objects or []) if gaussians.is_gaussian_object(o)]
    return chosen[0] if len(chosen) == 1 else None


class PHYSINTERACT_OT_import_gaussians(bpy.types.Operator, ImportHelper):  # type: ignore[misc]
    """Import a 3D Gaussian Splatting PLY as a point object keeping every Gaussian property"""

    bl_idname = "physinteract.import_gaussians"
    bl_label = "Import 3D Gaussian Splatting"
    bl_description = ("Import a 3D Gaussian Splatting PLY: one vertex per Gaussian, every PLY property "
                      "(f_dc, f_rest, opacity, scale, rot, ...) kept as a point attribute")
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]
    display_size: FloatProperty(  # type: ignore[valid-type]
        name="Display Size",
        description="Viewport point radius in standard deviations of each Gaussian (geometric mean of its three axes)",
        default=1.0, min=0.0, soft_max=5.0,
    )

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        from physinteract.geometry.gaussians import read_gaussian_ply

        path = Path(self.filepath)  # type: ignore[attr-defined]  # ImportHelper/ExportHelper property
        try:
            cloud = read_gaussian_ply(path)
        except (contract.ContractError, OSError, ValueError) as e:
            self.report({"ERROR"}, f"Cannot import {path}: {e}")
            return {"CANCELLED"}
        try:
            obj = gaussians.create_gaussian_object(context, path.stem or "Gaussians", cloud, str(path), self.display_size)
        except (ValueError, RuntimeError) as e:
            self.report({"ERROR"}, f"Cannot import {path}: {e}")
            return {"CANCELLED"}
        for other in context.selected_objects or []:
            other.select_set(False)
        if context.view_layer is not None:
            context.view_layer.objects.active = obj
        obj.select_set(True)
        doubles = [n for n, a in gaussians.cloud_columns(cloud) if a.dtype.itemsize == 8 and a.dtype.kind == "f"]
        if doubles or cloud.means.dtype.itemsize == 8:
            self.report({"WARNING"}, f"{path}: double-precision properties are kept as 32-bit floats")
        self.report({"INFO"}, f"Imported {len(cloud)} Gaussians from {path.name} "
                              f"({len(gaussians.cloud_columns(cloud)) + 3} properties)")
        return {"FINISHED"}


class PHYSINTERACT_OT_export_gaussians(bpy.types.Operator, ExportHelper):  # type: ignore[misc]
    """Export the active Gaussian object as a 3D Gaussian Splatting PLY (positions in object space)"""

    bl_idname = "physinteract.export_gaussians"
    bl_label = "Export 3D Gaussian Splatting"
    bl_description = ("Write the active Gaussian object's point attributes as a binary 3D Gaussian Splatting PLY; "
                      "positions are in object space (the object's transform is not applied)")
    bl_options = {"REGISTER"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return export_object(context) is not None

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        from physinteract.geometry.gaussians import write_gaussian_ply

        obj = export_object(context)
        assert obj is not None
        path = Path(self.filepath)  # type: ignore[attr-defined]  # ImportHelper/ExportHelper property
        try:
            cloud = gaussians.cloud_from_object(obj)
            write_gaussian_ply(path, cloud, binary=True)
        except (gaussians.GaussianObjectError, contract.ContractError, OSError, ValueError) as e:
            self.report({"ERROR"}, f"Cannot export '{obj.name}' to {path}: {e}")
            return {"CANCELLED"}
        if not np.allclose(np.array(obj.matrix_world), np.eye(4)):
            self.report({"WARNING"}, f"'{obj.name}' is transformed: its Gaussians were written in object space")
        self.report({"INFO"}, f"Exported {len(cloud)} Gaussians to {path}")
        return {"FINISHED"}


def menu_import(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    if self.layout is not None:
        self.layout.operator(PHYSINTERACT_OT_import_gaussians.bl_idname, text="3D Gaussian Splatting (.ply)")


def menu_export(self: bpy.types.Menu, context: bpy.types.Context) -> None:
    if self.layout is not None:
        self.layout.operator(PHYSINTERACT_OT_export_gaussians.bl_idname, text="3D Gaussian Splatting (.ply)")


# (menu, draw function) pairs that operators.register() appends and unregister() removes.
MENUS = ((bpy.types.TOPBAR_MT_file_import, menu_import), (bpy.types.TOPBAR_MT_file_export, menu_export))

CLASSES = (PHYSINTERACT_OT_import_gaussians, PHYSINTERACT_OT_export_gaussians)
