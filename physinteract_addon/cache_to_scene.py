"""Contract cache folder -> objects that play it (Mesh Cache modifiers on PC2 files).

Blender's Mesh Cache modifier ignores the start frame stored in a PC2 header:
it plays sample ``(scene frame - modifier.frame_start) * frame_scale``. So the
modifier's ``frame_start`` is set from the header (checked by
blender_tests/test_pc2_mesh_cache.py). The PC2 holds object-local coordinates
(contract), so the modifier overwrites the vertices in place.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import bpy
import mathutils
import numpy as np

from physinteract import contract
from physinteract.contract.pc2 import PC2_SIGNATURE

from . import field_display, gaussian_playback, gaussians

MODIFIER_NAME = "PhysInteract Cache"
PARTICLES = "particles"
PARTICLES_OBJECT = "PhysInteract Particles"
CONTACT_ATTRIBUTE = "contact"  # the estimate's contact set (point domain, boolean)
E_COLOR_ATTRIBUTE = "E_color"  # log10 E on the field_display ramp (point domain, linear RGBA)
NU_COLOR_ATTRIBUTE = "nu_color"  # nu over [0, 0.5) on the same ramp
FILL_PREVIEW_SUFFIX = " Fill Preview"  # the fill preview of object X is "X Fill Preview"
_PC2_HEADER = struct.Struct("<12siiffi")


def pc2_header(path: str | Path) -> tuple[int, float, float, int]:
    """(num_points, start_frame, sample_rate, num_samples) of a PC2 file, read from
    its 32-byte header only. Raises ContractError for a file that is not PC2."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(_PC2_HEADER.size)
    except OSError as e:
        raise contract.ContractError(path, "", "a readable PC2 file", str(e)) from None
    if len(head) < _PC2_HEADER.size:
        raise contract.ContractError(path, "header", f"{_PC2_HEADER.size} header bytes", f"{len(head)} bytes")
    sig, _version, n_points, start, rate, n_samples = _PC2_HEADER.unpack(head)
    if sig != PC2_SIGNATURE:
        raise contract.ContractError(path, "signature", repr(PC2_SIGNATURE), repr(sig))
    return n_points, start, rate, n_samples


def blend_path(path: str | Path, relative: bool = True) -> str:
    """``path`` as Blender stores it: '//'-relative to the saved .blend when possible."""
    path = os.path.abspath(path)
    if relative and bpy.data.filepath:
        try:
            return bpy.path.relpath(path)
        except ValueError:  # another drive on Windows
            pass
    return path


def attach_mesh_cache(obj: bpy.types.Object, pc2: str | Path, relative: bool = True) -> bpy.types.MeshCacheModifier:
    """Add (or update) the PhysInteract Mesh Cache modifier of ``obj`` playing ``pc2``.

    Raises ContractError when the file is not a PC2 of ``obj``'s vertex count.
    """
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh):
        raise ValueError(f"'{obj.name}' is not a mesh object")
    n_points, start, rate, _ = pc2_header(pc2)
    if n_points != len(mesh.vertices):
        raise contract.ContractError(pc2, "num_points", f"{len(mesh.vertices)} points (vertices of '{obj.name}')", str(n_points))
    md = obj.modifiers.get(MODIFIER_NAME)
    if md is None or md.type != "MESH_CACHE":
        md = obj.modifiers.new(MODIFIER_NAME, "MESH_CACHE")
    assert isinstance(md, bpy.types.MeshCacheModifier)
    index = obj.modifiers.find(md.name)
    if index > 0:  # first in the stack: it replaces the rest mesh's vertices, before any other modifier
        obj.modifiers.move(index, 0)
    md.cache_format = "PC2"
    md.filepath = blend_path(pc2, relative)
    md.time_mode = "FRAME"
    md.play_mode = "SCENE"
    md.frame_start = start
    md.frame_scale = 1.0 / rate if rate > 0 else 1.0
    md.deform_mode = "OVERWRITE"
    md.forward_axis, md.up_axis = "POS_Y", "POS_Z"  # identity: the PC2 is already object-local
    return md


def remove_mesh_cache(obj: bpy.types.Object) -> bool:
    md = obj.modifiers.get(MODIFIER_NAME)
    if md is None:
        return False
    obj.modifiers.remove(md)
    return True


def find_point_set(manifest: dict, name: str) -> dict | None:
    """The manifest's entry of the point set ``name`` (None when it has none)."""
    return next((dict(p) for p in manifest["point_sets"] if p.get("name") == name), None)


def world_to_object(point_set: dict) -> np.ndarray:
    """[4, 4] a manifest point set's world (m) -> object-local map of its PC2 (identity when absent)."""
    return np.asarray(point_set.get("world_to_object", np.eye(4).tolist()), np.float64)


def _point_set(manifest: dict, name: str) -> dict:
    ps = find_point_set(manifest, name)
    if ps is None:
        raise contract.ContractError(Path(contract.CACHE_MANIFEST), "point_sets", f"a point set named '{name}'",
                                     str([p.get("name") for p in manifest["point_sets"]]))
    return ps


def particles_object(
    scene: bpy.types.Scene, cache_dir: str | Path, scale: float = 1.0, name: str = PARTICLES_OBJECT,
    relative: bool = True,
) -> bpy.types.Object:
    """A vertex-only mesh object playing the cache's ``particles`` PC2.

    Its vertices start at the first completed frame's positions; its matrix maps
    the PC2's space (the manifest's ``world_to_object``, metres) back to Blender
    units (``scale`` metres per unit)."""
    cache_dir = Path(cache_dir)
    m = contract.read_cache_manifest(cache_dir)
    ps = _point_set(m, PARTICLES)
    pc2 = cache_dir / f"{PARTICLES}.pc2"
    n_points, *_ = pc2_header(pc2)
    w2o = world_to_object(ps)
    frames = contract.completed_frames(cache_dir)
    if frames:
        x = contract.read_frame(cache_dir, frames[0])[f"{PARTICLES}.positions"].astype(np.float64)
        local = x @ w2o[:3, :3].T + w2o[:3, 3]
    else:
        local = np.zeros((n_points, 3))
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "MESH" or len(obj.data.vertices) != n_points:  # type: ignore[union-attr,arg-type]
        mesh = bpy.data.meshes.new(name)
        mesh.vertices.add(n_points)
        if obj is None or obj.type != "MESH":
            obj = bpy.data.objects.new(name, mesh)
        else:
            obj.data = mesh
    data = obj.data
    assert isinstance(data, bpy.types.Mesh)
    data.vertices.foreach_set("co", local.astype(np.float32).ravel())
    data.update()
    if obj.name not in scene.collection.all_objects:
        scene.collection.objects.link(obj)
    inv_scale = np.diag([1.0 / scale, 1.0 / scale, 1.0 / scale, 1.0])
    obj.matrix_world = mathutils.Matrix((inv_scale @ np.linalg.inv(w2o)).tolist())
    attach_mesh_cache(obj, pc2, relative)
    return obj


def play_cache(
    scene: bpy.types.Scene, cache_dir: str | Path, target: bpy.types.Object | None, point_set: str | None,
    scale: float = 1.0, relative: bool = True, particles: bool = True,
) -> list[bpy.types.Object]:
    """Make the scene play a cache: the target mesh through its point set's PC2 (Gaussians also
    their rotations and scales, gaussian_playback), and (optionally) the particles as their own
    object. Returns the objects."""
    cache_dir = Path(cache_dir)
    out = []
    if target is not None and point_set:
        attach_mesh_cache(target, cache_dir / f"{point_set}.pc2", relative)
        if gaussians.is_gaussian_object(target) and gaussian_playback.attach(target, cache_dir, point_set, relative):
            gaussian_playback.show_frame(scene, target)
        out.append(target)
    if particles and (cache_dir / f"{PARTICLES}.pc2").is_file():
        out.append(particles_object(scene, cache_dir, scale, relative=relative))
    return out


def store_material(obj: bpy.types.Object, E: np.ndarray, nu: np.ndarray) -> bool:
    """Put a material field on a particle object as float point attributes "E" (Pa) and "nu", and
    as the colour attributes :data:`E_COLOR_ATTRIBUTE` (log10 E on a ramp, field_display.E_colors;
    made the active colour, so Attribute colour shading shows it) and :data:`NU_COLOR_ATTRIBUTE`.

    ``E`` and ``nu`` are [N], one value per particle in the job's particle order; an object
    whose vertex count is not N is left alone (returns False)."""
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh) or len(mesh.vertices) != len(E) or len(nu) != len(E):
        return False
    for name, values in (("E", E), ("nu", nu)):
        _point_attribute(mesh, name, "FLOAT").data.foreach_set("value", np.ascontiguousarray(values, np.float32))
    for name, colors in ((E_COLOR_ATTRIBUTE, field_display.E_colors(E)), (NU_COLOR_ATTRIBUTE, field_display.nu_colors(nu))):
        _point_attribute(mesh, name, "FLOAT_COLOR").data.foreach_set("color", np.ascontiguousarray(colors, np.float32).ravel())
    e_color = mesh.color_attributes.get(E_COLOR_ATTRIBUTE)
    mesh.color_attributes.active_color = e_color
    mesh.color_attributes.render_color_index = mesh.color_attributes.find(E_COLOR_ATTRIBUTE)
    mesh.update()
    return True


def store_contact(obj: bpy.types.Object, contact: np.ndarray) -> bool:
    """Mark the estimated contact set on a particle object: boolean point attribute
    :data:`CONTACT_ATTRIBUTE`, true on the particles ``contact`` [K] (indices in the job's particle
    order). Returns False (and leaves the object alone) when an index is out of its range."""
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh) or (len(contact) and int(np.max(contact)) >= len(mesh.vertices)):
        return False
    mask = np.zeros(len(mesh.vertices), bool)
    mask[np.asarray(contact, np.int64)] = True
    _point_attribute(mesh, CONTACT_ATTRIBUTE, "BOOLEAN").data.foreach_set("value", mask)
    mesh.update()
    return True


def _point_attribute(mesh: bpy.types.Mesh, name: str, data_type: str) -> Any:
    """The mesh's point attribute ``name`` of ``data_type``, (re)made when it is missing or of another kind."""
    attributes: Any = mesh.attributes  # the typed stubs know neither the type names nor each attribute's .data
    attr = attributes.get(name)
    if attr is not None and (attr.domain != "POINT" or attr.data_type != data_type):
        attributes.remove(attr)
        attr = None
    return attr if attr is not None else attributes.new(name, data_type, "POINT")
