"""Filling: which particles the simulation uses, and a preview of them.

"Vertices": the mesh's vertices are the particles (nothing to run).
"Volume": the Fill operator runs ``physinteract fill`` out of process on the
object's surface (an OBJ in world metres in the job folder's fill/ folder; for
3D Gaussians a 3DGS PLY of the Gaussians in world metres, filled with
``--gaussians``) and remembers the particle PLY it wrote and the object state it was made from.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import mathutils
import numpy as np

from physinteract import contract

from .. import backend_process, cache_to_scene, filling, gaussians, scene_to_job
from ..preferences import backend_python
from ..properties import object_settings, scene_settings
from ..utils import OperatorResult, scene_of
from .chain_runner import ChainOperatorMixin

PREVIEW_SUFFIX = cache_to_scene.FILL_PREVIEW_SUFFIX


def fill_object(context: bpy.types.Context) -> bpy.types.Object | None:
    """The object the Filling panel is about: the scene's target, else the active mesh."""
    scene = context.scene
    obj = scene_settings(scene).target if scene is not None else None
    obj = obj or context.active_object
    return obj if obj is not None and obj.type == "MESH" else None


def preview_points_bu(obj: bpy.types.Object) -> np.ndarray:
    """The particles of ``obj`` in world Blender units: its vertices, or its volume fill."""
    o = object_settings(obj)
    if o.fill_mode == "VOLUME":
        return filling.read_particles_ply(o.fill_file)["positions"] / float(o.scale)
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    m = np.array(obj.matrix_world)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def remove_preview(obj: bpy.types.Object) -> bool:
    old = bpy.data.objects.get(obj.name + PREVIEW_SUFFIX)
    if old is None:
        return False
    mesh = old.data
    bpy.data.objects.remove(old)
    if isinstance(mesh, bpy.types.Mesh) and mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    return True


def show_preview(context: bpy.types.Context, obj: bpy.types.Object) -> bpy.types.Object:
    """(Re)create the point object showing ``obj``'s particles (world positions, identity matrix)."""
    remove_preview(obj)
    pts = preview_points_bu(obj)
    name = obj.name + PREVIEW_SUFFIX
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(pts))
    mesh.vertices.foreach_set("co", pts.astype(np.float32).ravel())
    mesh.update()
    preview = bpy.data.objects.new(name, mesh)
    preview.matrix_world = mathutils.Matrix.Identity(4)
    preview.hide_select = True
    preview.show_in_front = True
    (context.collection or scene_of(context).collection).objects.link(preview)
    return preview


class PHYSINTERACT_OT_fill_preview(bpy.types.Operator):
    """Show (or hide) the object's simulation particles as a point object"""

    bl_idname = "physinteract.fill_preview"
    bl_label = "Preview Particles"
    bl_description = "Show or hide the object's simulation particles (vertices or volume fill) as a separate point object"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return fill_object(context) is not None

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        obj = fill_object(context)
        assert obj is not None
        settings = object_settings(obj)
        if remove_preview(obj):
            settings.show_preview = False
            self.report({"INFO"}, "Particle preview hidden")
            return {"FINISHED"}
        if settings.fill_mode == "VOLUME" and not settings.fill_file:
            self.report({"ERROR"}, f"'{obj.name}' has no particles yet: Fill the object first")
            return {"CANCELLED"}
        try:
            preview = show_preview(context, obj)
        except contract.ContractError as e:
            self.report({"ERROR"}, f"No fill to show: {e}")
            return {"CANCELLED"}
        settings.show_preview = True
        self.report({"INFO"}, f"{len(preview.data.vertices)} particles")  # type: ignore[union-attr]
        return {"FINISHED"}


class PHYSINTERACT_OT_fill(ChainOperatorMixin, bpy.types.Operator):
    """Fill the object's interior with particles using the backend (Volume fill)"""

    bl_idname = "physinteract.fill"
    bl_label = "Fill"
    bl_description = "Fill the closed mesh's interior with simulation particles ('physinteract fill', run out of process)"
    bl_options = {"REGISTER", "UNDO"}

    poll_interval_s = 0.05
    _out: Path | None = None
    _obj_name = ""
    _signature = ""

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        obj = fill_object(context)
        return obj is not None and object_settings(obj).fill_mode == "VOLUME"

    def _begin(self, context: bpy.types.Context) -> bool:
        obj = fill_object(context)
        assert obj is not None
        o = object_settings(obj)
        scale = float(o.scale)
        try:
            python = backend_python(context)
            scene = scene_of(context)
            folder = scene_to_job.resolve_dir(scene_settings(scene).job_dir, scene, "job folder") / "fill"
            name = scene_to_job.point_set_name(obj)
            if o.representation == "GAUSSIANS":
                source, kind = folder / f"{name}_gaussians.ply", "gaussians"
                folder.mkdir(parents=True, exist_ok=True)
                gaussians.write_world_gaussian_ply(obj, str(source), scale)
            else:
                verts, tris = scene_to_job.surface_world(obj, scale)
                if len(tris) == 0:
                    raise scene_to_job.SceneError(f"'{obj.name}' has no faces to fill")
                source, kind = folder / f"{name}_surface.obj", "mesh"
                filling.write_obj(source, verts, tris)
            self._out = folder / f"{name}_particles.ply"
            argv = filling.fill_command(python, source, self._out, o.fill_resolution, o.particle_count, kind)
            self._chain = backend_process.CommandChain([argv], folder / f"{name}_fill_log.txt")
            self._chain.start()
        except (scene_to_job.SceneError, contract.ContractError, RuntimeError, OSError, ValueError) as e:
            self.report({"ERROR"}, str(e))
            return False
        self._obj_name, self._signature = obj.name, scene_to_job.object_signature(obj, scale)
        return True

    def _end(self, context: bpy.types.Context, code: int) -> OperatorResult:
        assert self._chain is not None and self._out is not None
        obj = bpy.data.objects.get(self._obj_name)
        if code != 0 or obj is None:
            self.report({"ERROR"}, f"Fill failed (exit {code}): {backend_process.last_log_line(self._chain.log_path)}")
            return {"CANCELLED"}
        try:
            fill = filling.read_particles_ply(self._out)
        except contract.ContractError as e:
            self.report({"ERROR"}, f"Fill wrote no usable particles: {e}")
            return {"CANCELLED"}
        o = object_settings(obj)
        o.fill_file = str(self._out)
        o.fill_signature = self._signature
        o.fill_count = len(fill["labels"])
        if o.show_preview:
            show_preview(context, obj)
        interior = int((fill["labels"] == contract.INTERIOR).sum())
        self.report({"INFO"}, f"Filled '{obj.name}': {o.fill_count} particles ({interior} interior), "
                              f"{fill['volume'].sum():.3g} m³")
        return {"FINISHED"}


CLASSES = (PHYSINTERACT_OT_fill, PHYSINTERACT_OT_fill_preview)
