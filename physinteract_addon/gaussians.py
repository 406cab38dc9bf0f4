"""3D Gaussians as Blender objects: a vertex-only mesh, one vertex per Gaussian.

The object (``object.physinteract.representation == "GAUSSIANS"``) keeps every
property of the 3DGS PLY it came from as a point attribute under the PLY name
(``f_dc_0..2``, ``f_rest_*``, ``opacity`` logit, ``scale_0..2`` natural logs of
the standard deviations, ``rot_0..3`` quaternion w first, ``nx ny nz`` and any
other property); ``x y z`` are the vertex positions in OBJECT space (Blender
units; the object's transform is never baked into the file). Values are stored
as 32-bit floats, so a float32 file round-trips exactly; integer properties are
kept as integer attributes and their PLY type is remembered in
``object.physinteract.gaussian_layout`` (JSON: ``[[name, numpy code], ...]`` in
file order).

Display: a geometry-nodes modifier (:data:`MODIFIER_NAME`, one shared node
group) turns the vertices into points of radius
``size * exp(mean(scale_0..2))`` (the geometric mean of the three standard
deviations) with a material that shows :data:`COLOR_ATTRIBUTE`, the degree-0
colour ``clamp(0.5 + C0 * f_dc, 0, 1)``. The colours show in Material Preview
and Rendered shading.

The backend reader/writer (``physinteract.geometry.gaussians``, numpy only) is
imported inside the functions that need it, never at module import.
"""

from __future__ import annotations

import json
import re
from typing import Any

import bpy
import numpy as np

SH_C0 = 0.28209479177387814  # the degree-0 real spherical harmonic, 1 / (2 sqrt(pi))
COLOR_ATTRIBUTE = "Col"
MODIFIER_NAME = "Gaussian Display"
NODE_GROUP_NAME = "PhysInteract Gaussian Points"
MATERIAL_NAME = "PhysInteract Gaussian Colour"
REST_PREFIX = ".physinteract_rest_"  # internal copies of rot_i / scale_i at rest while a bake plays (gaussian_playback)
_MARKER = "physinteract_gaussian_display"  # ID property tagging our node group and material
_VERSION = 1
SIZE_SOCKET = "Size"

_STANDARD = ["nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
             "rot_0", "rot_1", "rot_2", "rot_3"]
REQUIRED_ATTRIBUTES = [n for n in _STANDARD if not n.startswith("n")]
_F_REST = re.compile(r"^f_rest_(\d+)$")
# numpy type code -> the attribute type that holds it exactly (u4 is stored bit-cast into int32).
_ATTRIBUTE_TYPES = {"f4": "FLOAT", "f8": "FLOAT", "i1": "INT8", "u1": "INT", "i2": "INT", "u2": "INT", "i4": "INT", "u4": "INT"}
# attribute type -> (foreach key, numpy dtype in Blender, PLY code written when the layout does not say)
_ATTRIBUTE_ARRAYS = {"FLOAT": ("value", np.float32, "f4"), "INT": ("value", np.int32, "i4"),
                     "INT8": ("value", np.int8, "i1"), "BOOLEAN": ("value", np.bool_, "u1")}


class GaussianObjectError(ValueError):
    """The object cannot be written as 3DGS (a missing attribute, a gap in f_rest)."""


def display_colors(f_dc: np.ndarray) -> np.ndarray:
    """[N, 4] RGBA in [0, 1] from the degree-0 SH coefficients ``f_dc`` [N, 3] (alpha 1)."""
    rgba = np.ones((len(f_dc), 4), np.float32)
    rgba[:, :3] = np.clip(0.5 + SH_C0 * np.asarray(f_dc, np.float64), 0.0, 1.0)
    return rgba


def cloud_columns(cloud: Any) -> list[tuple[str, np.ndarray]]:
    """(PLY name, [N] column) of every property of a GaussianCloud except x y z, in the writer's order."""
    cols: list[tuple[str, np.ndarray]] = []

    def put(names: list[str], a: np.ndarray) -> None:
        a = np.asarray(a)
        a = a[:, None] if a.ndim == 1 else a
        cols.extend((n, a[:, j]) for j, n in enumerate(names))

    if cloud.normals is not None:
        put(["nx", "ny", "nz"], cloud.normals)
    put([f"f_dc_{i}" for i in range(3)], cloud.f_dc)
    put([f"f_rest_{i}" for i in range(cloud.f_rest.shape[1])], cloud.f_rest)
    put(["opacity"], cloud.opacity_logit)
    put([f"scale_{i}" for i in range(3)], cloud.log_scales)
    put([f"rot_{i}" for i in range(4)], cloud.rotations)
    cols.extend((k, np.asarray(a)) for k, a in cloud.extra.items())
    return cols


def _code(a: np.ndarray) -> str:
    return a.dtype.kind + str(a.dtype.itemsize)


def is_gaussian_object(obj: bpy.types.Object | None) -> bool:
    """True for a mesh object marked as Gaussians that holds the required attributes."""
    if obj is None or obj.type != "MESH" or getattr(obj, "physinteract", None) is None:
        return False
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    return obj.physinteract.representation == "GAUSSIANS" and "f_dc_0" in mesh.attributes  # type: ignore[attr-defined]


def create_gaussian_object(context: bpy.types.Context, name: str, cloud: Any, source: str = "",
                           size: float = 1.0) -> bpy.types.Object:
    """A new vertex-only mesh object holding ``cloud`` (a GaussianCloud), linked to the active collection.

    Vertices are ``cloud.means`` in object space; every other PLY property is a point
    attribute with its PLY name; :data:`COLOR_ATTRIBUTE` is the display colour.
    Nothing is left behind in ``bpy.data`` when this raises.
    """
    columns = cloud_columns(cloud)
    seen = {"position", COLOR_ATTRIBUTE}
    for prop, _ in columns:
        if prop in seen or prop.startswith("."):
            raise ValueError(f"property '{prop}' clashes with a Blender attribute name")
        seen.add(prop)
    n = len(cloud)
    mesh = bpy.data.meshes.new(name)
    attributes: Any = mesh.attributes  # the typed stubs know neither the type names nor each attribute's .data
    obj: bpy.types.Object | None = None
    try:
        mesh.vertices.add(n)
        mesh.vertices.foreach_set("co", np.ascontiguousarray(cloud.means, np.float32).ravel())
        for prop, col in columns:
            code = _code(col)
            attr_type = _ATTRIBUTE_TYPES.get(code)
            if attr_type is None:
                raise ValueError(f"property '{prop}' has type {col.dtype}, which no Blender attribute holds")
            key, dtype, _ = _ATTRIBUTE_ARRAYS[attr_type]
            values = col.astype(np.uint32).view(np.int32) if code == "u4" else col.astype(dtype)
            attr = attributes.new(prop, attr_type, "POINT")
            if attr.name != prop:
                raise ValueError(f"property '{prop}' cannot be a Blender attribute name (too long?)")
            attr.data.foreach_set(key, np.ascontiguousarray(values))
        color = attributes.new(COLOR_ATTRIBUTE, "FLOAT_COLOR", "POINT")
        color.data.foreach_set("color", display_colors(cloud.f_dc).ravel())
        mesh.color_attributes.active_color = color
        mesh.update()
        obj = bpy.data.objects.new(name, mesh)
        o = obj.physinteract  # type: ignore[attr-defined]
        o.representation = "GAUSSIANS"
        o.gaussian_file = source
        means = np.asarray(cloud.means)
        o.gaussian_layout = json.dumps([[c, _code(means)] for c in "xyz"] + [[p, _code(c)] for p, c in columns])
        o.gaussian_display_size = size
        ensure_display(obj, size)
        (context.collection or context.scene.collection).objects.link(obj)  # type: ignore[union-attr]
    except Exception:
        if obj is not None:
            bpy.data.objects.remove(obj)
        bpy.data.meshes.remove(mesh)
        raise
    return obj


def cloud_from_object(obj: bpy.types.Object) -> Any:
    """The object's Gaussians as a GaussianCloud (positions in object space, Blender units).

    Every point attribute that is a scalar (float, int, bool) and not internal becomes a
    property: the standard ones go to their fields, the rest to ``extra`` (file order
    first, then new attributes by name), each cast back to the PLY type it was imported
    with. While a bake plays, rot_i and scale_i come from their rest copies (REST_PREFIX),
    so this is always the Gaussians at rest. Raises GaussianObjectError naming the object
    and the attribute at fault.
    """
    from physinteract.geometry.gaussians import GaussianCloud

    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh):
        raise GaussianObjectError(f"'{obj.name}' is not a mesh")
    if obj.mode == "EDIT":
        obj.update_from_editmode()
    n = len(mesh.vertices)
    layout: dict[str, str] = {}
    try:
        layout = dict(json.loads(obj.physinteract.gaussian_layout or "[]"))  # type: ignore[attr-defined]
    except (ValueError, TypeError):
        layout = {}
    cols: dict[str, np.ndarray] = {}
    for attr in mesh.attributes:
        if attr.domain != "POINT" or attr.name.startswith(".") or attr.data_type not in _ATTRIBUTE_ARRAYS:
            continue
        key, dtype, default_code = _ATTRIBUTE_ARRAYS[attr.data_type]
        a = np.empty(n, dtype)
        attr.data.foreach_get(key, a)  # type: ignore[attr-defined]
        code = layout.get(attr.name, default_code)
        cols[attr.name] = a.view(np.uint32) if code == "u4" and a.dtype == np.int32 else a.astype(np.dtype(code))
    for attr in mesh.attributes:  # a playing bake overwrote rot_i / scale_i: the rest values are these copies
        if attr.name.startswith(REST_PREFIX) and attr.name[len(REST_PREFIX):] in cols:
            cols[attr.name[len(REST_PREFIX):]] = read_float(mesh, attr.name)
    for name in REQUIRED_ATTRIBUTES:
        if name not in cols:
            raise GaussianObjectError(f"'{obj.name}' has no point attribute '{name}' (a 3DGS property)")
    rest = sorted(int(m.group(1)) for c in cols if (m := _F_REST.match(c)))
    if rest != list(range(len(rest))):
        gap = min(set(range(len(rest))) - set(rest))
        raise GaussianObjectError(f"'{obj.name}' has f_rest attributes with a gap: no 'f_rest_{gap}'")

    def stack(names: list[str]) -> np.ndarray:
        return np.stack([cols.pop(c) for c in names], axis=1) if names else np.zeros((n, 0), np.float32)

    co = np.empty(n * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    means = co.reshape(n, 3).astype(np.float64 if layout.get("x") == "f8" else np.float32)
    normals = stack(["nx", "ny", "nz"]) if all(c in cols for c in ("nx", "ny", "nz")) else None
    f_dc = stack([f"f_dc_{i}" for i in range(3)])
    f_rest = stack([f"f_rest_{i}" for i in rest])
    opacity = cols.pop("opacity")
    log_scales = stack([f"scale_{i}" for i in range(3)])
    rotations = stack([f"rot_{i}" for i in range(4)])
    order = {name: i for i, name in enumerate(layout)}
    extra_names = sorted(cols, key=lambda c: (order.get(c, len(order)), c))
    return GaussianCloud(means=means, f_dc=f_dc, f_rest=f_rest, opacity_logit=opacity, log_scales=log_scales,
                         rotations=rotations, normals=normals, extra={c: cols[c] for c in extra_names})


def read_float(mesh: bpy.types.Mesh, name: str) -> np.ndarray:
    """[V] float32 values of the mesh's float point attribute ``name``."""
    a = np.empty(len(mesh.vertices), np.float32)
    mesh.attributes[name].data.foreach_get("value", a)  # type: ignore[attr-defined]
    return a


def world_gaussians(obj: bpy.types.Object, metres_per_unit: float) -> dict[str, np.ndarray]:
    """The object's Gaussians in world metres, as the fields of a ``contract.PointSet``.

    Returns rest_positions [V, 3] m (world), rest_rotations [V, 4] unit quaternions
    (w, x, y, z, world), rest_scales [V, 3] standard deviations (m), colors [V, 3]
    in [0, 1] (0.5 + C0 f_dc, clamped), opacities [V] in (0, 1]. The object's matrix
    (rotation, non-uniform scale) acts on each covariance as M Sigma M^T, so a
    stretched object gives correctly stretched Gaussians.
    """
    from physinteract.geometry.deform import deform_gaussians

    cloud = cloud_from_object(obj)
    m = np.array(obj.matrix_world, np.float64)
    m[:3, :] *= float(metres_per_unit)
    rotations, log_scales = deform_gaussians(cloud.rotations, cloud.log_scales, np.broadcast_to(m[:3, :3], (len(cloud), 3, 3)))
    opacity = 1.0 / (1.0 + np.exp(-np.asarray(cloud.opacity_logit, np.float64)))
    return {
        "rest_positions": np.asarray(cloud.means, np.float64) @ m[:3, :3].T + m[:3, 3],
        "rest_rotations": rotations,
        "rest_scales": np.exp(log_scales),
        "colors": display_colors(cloud.f_dc)[:, :3].astype(np.float64),
        "opacities": np.clip(opacity, 1e-6, 1.0),
    }


def write_world_gaussian_ply(obj: bpy.types.Object, path: str, metres_per_unit: float) -> int:
    """Write the object's Gaussians in world metres as a 3DGS PLY (for ``physinteract fill``); returns the count.

    Centres, rotations and scales come from :func:`world_gaussians`; f_dc, f_rest, the
    opacity logit and extra properties are copied unchanged (the SH are not rotated).
    """
    from physinteract.geometry.gaussians import GaussianCloud, write_gaussian_ply

    cloud = cloud_from_object(obj)
    world = world_gaussians(obj, metres_per_unit)
    out = GaussianCloud(means=world["rest_positions"].astype(np.float32), f_dc=cloud.f_dc, f_rest=cloud.f_rest,
                        opacity_logit=cloud.opacity_logit, log_scales=np.log(world["rest_scales"]).astype(np.float32),
                        rotations=world["rest_rotations"].astype(np.float32), extra=cloud.extra)
    write_gaussian_ply(path, out)
    return len(out)


# -- display ---------------------------------------------------------------------------------------


def _tagged(collection: Any) -> Any:
    return next((d for d in collection if d.get(_MARKER) == _VERSION), None)


def display_material() -> bpy.types.Material:
    """The shared unlit material showing :data:`COLOR_ATTRIBUTE` (created once)."""
    mat = _tagged(bpy.data.materials)
    if mat is not None:
        return mat  # type: ignore[no-any-return]
    mat = bpy.data.materials.new(MATERIAL_NAME)
    mat[_MARKER] = _VERSION
    tree = mat.node_tree
    assert tree is not None
    tree.nodes.clear()
    attr = tree.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"  # type: ignore[attr-defined]
    attr.attribute_name = COLOR_ATTRIBUTE  # type: ignore[attr-defined]
    # Gaussians store radiance as seen by the cameras: show it unlit.
    emit = tree.nodes.new("ShaderNodeEmission")
    out = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(attr.outputs["Color"], emit.inputs["Color"])
    tree.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    attr.location, emit.location, out.location = (-400, 0), (-150, 0), (100, 0)
    return mat


def display_node_group() -> bpy.types.GeometryNodeTree:
    """The shared node group: vertices -> points of radius Size * exp(mean(scale_0..2)) (created once)."""
    ng = _tagged(bpy.data.node_groups)
    if ng is not None:
        return ng  # type: ignore[no-any-return]
    ng = bpy.data.node_groups.new(NODE_GROUP_NAME, "GeometryNodeTree")
    assert isinstance(ng, bpy.types.GeometryNodeTree)
    ng[_MARKER] = _VERSION
    ng.is_modifier = True
    iface: Any = ng.interface  # the typed stubs list only 'DEFAULT' as a socket type
    iface.new_socket(name="Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    size = iface.new_socket(name=SIZE_SOCKET, in_out="INPUT", socket_type="NodeSocketFloat")
    size.default_value, size.min_value, size.max_value = 1.0, 0.0, 100.0
    size.description = "Point radius in standard deviations of each Gaussian (geometric mean of its three axes)"
    iface.new_socket(name="Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = ng.nodes, ng.links
    group_in, group_out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    log_sum: Any = None
    for i in range(3):
        named = nodes.new("GeometryNodeInputNamedAttribute")
        named.data_type = "FLOAT"  # type: ignore[attr-defined]
        named.inputs["Name"].default_value = f"scale_{i}"  # type: ignore[attr-defined]
        named.location = (-800, 200 - 150 * i)
        if log_sum is None:
            log_sum = named.outputs["Attribute"]
            continue
        add = nodes.new("ShaderNodeMath")
        add.operation = "ADD"  # type: ignore[attr-defined]
        add.location = (-550, 150 - 150 * i)
        links.new(log_sum, add.inputs[0])
        links.new(named.outputs["Attribute"], add.inputs[1])
        log_sum = add.outputs[0]
    mean = nodes.new("ShaderNodeMath")
    mean.operation = "MULTIPLY"  # type: ignore[attr-defined]
    mean.inputs[1].default_value = 1.0 / 3.0  # type: ignore[attr-defined]
    sigma = nodes.new("ShaderNodeMath")
    sigma.operation = "EXPONENT"  # type: ignore[attr-defined]
    radius = nodes.new("ShaderNodeMath")
    radius.operation = "MULTIPLY"  # type: ignore[attr-defined]
    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.mode = "VERTICES"  # type: ignore[attr-defined]
    set_mat = nodes.new("GeometryNodeSetMaterial")
    set_mat.inputs["Material"].default_value = display_material()  # type: ignore[attr-defined]
    links.new(log_sum, mean.inputs[0])
    links.new(mean.outputs[0], sigma.inputs[0])
    links.new(sigma.outputs[0], radius.inputs[0])
    links.new(group_in.outputs[SIZE_SOCKET], radius.inputs[1])
    links.new(group_in.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(radius.outputs[0], to_points.inputs["Radius"])
    links.new(to_points.outputs["Points"], set_mat.inputs["Geometry"])
    links.new(set_mat.outputs["Geometry"], group_out.inputs[0])
    for i, node in enumerate((mean, sigma, radius)):
        node.location = (-300 + 150 * i, 0)
    group_in.location, to_points.location, set_mat.location, group_out.location = (-800, -350), (200, 0), (400, 0), (600, 0)
    return ng


def display_modifier(obj: bpy.types.Object) -> bpy.types.NodesModifier | None:
    mod = obj.modifiers.get(MODIFIER_NAME)
    return mod if isinstance(mod, bpy.types.NodesModifier) else None


def _size_identifier(ng: bpy.types.NodeTree) -> str:
    assert ng.interface is not None
    for item in ng.interface.items_tree:
        if isinstance(item, bpy.types.NodeTreeInterfaceSocket) and item.in_out == "INPUT" and item.name == SIZE_SOCKET:
            return str(item.identifier)
    raise RuntimeError(f"node group '{ng.name}' has no '{SIZE_SOCKET}' input")


def ensure_display(obj: bpy.types.Object, size: float) -> bpy.types.NodesModifier:
    """Add (or update) the object's display modifier and material slot; ``size`` in standard deviations."""
    mod = display_modifier(obj)
    if mod is None:
        new = obj.modifiers.new(MODIFIER_NAME, "NODES")
        assert isinstance(new, bpy.types.NodesModifier)
        mod = new
        mod.node_group = display_node_group()
        mesh = obj.data
        assert isinstance(mesh, bpy.types.Mesh)
        if not mesh.materials:
            mesh.materials.append(display_material())
    if mod.node_group is not None:
        mod[_size_identifier(mod.node_group)] = float(size)
        obj.update_tag()
    return mod


def update_display_size(self: Any, context: bpy.types.Context) -> None:
    """``gaussian_display_size`` update: keep the display modifier's Size input equal to it."""
    obj = self.id_data
    if isinstance(obj, bpy.types.Object) and is_gaussian_object(obj):
        ensure_display(obj, self.gaussian_display_size)
