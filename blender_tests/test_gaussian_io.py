"""File > Import / Export > 3D Gaussian Splatting (.ply): attributes kept exactly, display, round trip, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import addon_utils
import bpy
import numpy as np
import pytest
from test_ui import _draw

from physinteract.geometry.gaussians import GaussianCloud, read_gaussian_ply, write_gaussian_ply
from physinteract.geometry.plyfile import write_ply

SH_C0 = 0.28209479177387814
N = 257


def _cloud(seed: int = 0, n: int = N) -> GaussianCloud:
    """Random Gaussians with degree-1 SH (9 f_rest), normals, and float, uint8 and uint32 (past 2^31) extra properties."""
    rng = np.random.default_rng(seed)
    f = np.float32
    return GaussianCloud(
        means=rng.normal(0.0, 0.3, (n, 3)).astype(f), f_dc=rng.normal(0.0, 1.5, (n, 3)).astype(f),
        f_rest=rng.normal(0.0, 0.2, (n, 9)).astype(f), opacity_logit=rng.normal(0.0, 2.0, n).astype(f),
        log_scales=rng.normal(-4.0, 0.5, (n, 3)).astype(f), rotations=rng.normal(size=(n, 4)).astype(f),
        normals=rng.normal(size=(n, 3)).astype(f),
        extra={"confidence": rng.random(n).astype(f), "segment": rng.integers(0, 256, n).astype(np.uint8),
               "uid": rng.integers(2**31 - 10, 2**32, n, dtype=np.uint32)},
    )


def _columns(c: GaussianCloud) -> dict[str, np.ndarray]:
    """PLY name -> [N] column for every property but x y z."""
    cols = {"opacity": c.opacity_logit, **c.extra}
    for group, names in ((c.normals, "nx ny nz"), (c.f_dc, "f_dc_0 f_dc_1 f_dc_2"), (c.log_scales, "scale_0 scale_1 scale_2"),
                         (c.rotations, "rot_0 rot_1 rot_2 rot_3"), (c.f_rest, " ".join(f"f_rest_{i}" for i in range(9)))):
        assert group is not None
        cols.update({name: group[:, j] for j, name in enumerate(names.split())})
    return cols


def _attr(mesh: bpy.types.Mesh, name: str) -> np.ndarray:
    attr = mesh.attributes[name]
    dtype = {"FLOAT": np.float32, "INT": np.int32, "INT8": np.int8}[attr.data_type]
    out = np.empty(len(mesh.vertices), dtype)
    attr.data.foreach_get("value", out)
    return out


def _import(path: Path, **kwargs: float) -> bpy.types.Object:
    assert bpy.ops.physinteract.import_gaussians(filepath=str(path), **kwargs) == {"FINISHED"}
    obj = bpy.context.active_object
    assert obj is not None and obj.type == "MESH"
    return obj


def _evaluated_radius(obj: bpy.types.Object) -> np.ndarray:
    bpy.context.view_layer.update()
    geometry = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()  # keep it alive
    points = geometry.pointcloud
    assert points is not None, "the display modifier made no point cloud"
    r = np.empty(len(points.points), np.float32)
    points.attributes["radius"].data.foreach_get("value", r)
    return r


def _scene_state() -> dict[str, list[str]]:
    return {kind: sorted(getattr(bpy.data, kind).keys()) for kind in ("objects", "meshes", "materials", "node_groups")} | {
        "scene_objects": sorted(o.name for o in bpy.context.scene.objects)}


def test_import_keeps_every_ply_property_as_a_point_attribute_exactly(empty_scene: bpy.types.Scene, addon: str,
                                                                      tmp_path: Path) -> None:
    """Known answer: one vertex per Gaussian at (x, y, z); every PLY property a point attribute equal (float32-exact,
    uint8 as integers) to the file's values; colour = clamp(0.5 + C0 f_dc, 0, 1); the object is marked as Gaussians."""
    props = sys.modules[f"{addon}.properties"]
    cloud = _cloud()
    path = tmp_path / "bunny.ply"
    write_gaussian_ply(path, cloud)
    obj = _import(path)
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    assert obj.name == "bunny" and len(mesh.vertices) == N and len(mesh.edges) == 0 and len(mesh.polygons) == 0
    co = np.empty(N * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    np.testing.assert_array_equal(co.reshape(N, 3), cloud.means)
    cols = _columns(cloud)
    assert len(cols) == 3 + 3 + 9 + 1 + 3 + 4 + 3
    for name, want in cols.items():
        attr = mesh.attributes.get(name)
        assert attr is not None and attr.domain == "POINT", name
        got = _attr(mesh, name)
        np.testing.assert_array_equal(got.view(np.uint32) if want.dtype == np.uint32 else got, want, err_msg=name)
    assert mesh.attributes["segment"].data_type == "INT" and mesh.attributes["confidence"].data_type == "FLOAT"
    col = mesh.attributes["Col"]
    assert col.data_type == "FLOAT_COLOR" and col.domain == "POINT"
    rgba = np.empty(N * 4, np.float32)
    col.data.foreach_get("color", rgba)
    rgba = rgba.reshape(N, 4)
    np.testing.assert_allclose(rgba[:, :3], np.clip(0.5 + SH_C0 * cloud.f_dc.astype(np.float64), 0, 1), atol=1e-6)
    assert (rgba[:, :3] == 0).any() and (rgba[:, :3] == 1).any()  # the clamp was exercised
    np.testing.assert_array_equal(rgba[:, 3], 1.0)
    o = props.object_settings(obj)
    assert o.representation == "GAUSSIANS" and Path(o.gaussian_file) == path
    assert bpy.context.active_object == obj and obj.select_get()


def test_display_radius_is_size_times_geometric_mean_sigma(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: the display modifier's points have radius size * exp(mean(scale_0..2)) and the colour material;
    the Display Size slider rescales them; a second import reuses the one node group and material."""
    props = sys.modules[f"{addon}.properties"]
    gaussians = sys.modules[f"{addon}.gaussians"]
    cloud = _cloud(1)
    path = tmp_path / "g.ply"
    write_gaussian_ply(path, cloud)
    obj = _import(path, display_size=1.5)
    mod = obj.modifiers.get(gaussians.MODIFIER_NAME)
    assert mod is not None and mod.type == "NODES" and mod.node_group is not None
    assert "GeometryNodeMeshToPoints" in {n.bl_idname for n in mod.node_group.nodes}
    sigma = np.exp(cloud.log_scales.astype(np.float64).mean(axis=1))
    np.testing.assert_allclose(_evaluated_radius(obj), 1.5 * sigma, rtol=1e-5)
    props.object_settings(obj).gaussian_display_size = 0.5
    np.testing.assert_allclose(_evaluated_radius(obj), 0.5 * sigma, rtol=1e-5)
    mat = obj.data.materials[0]
    attr_nodes = [n for n in mat.node_tree.nodes if n.bl_idname == "ShaderNodeAttribute"]
    assert [n.attribute_name for n in attr_nodes] == ["Col"] and attr_nodes[0].outputs["Color"].is_linked
    other = _import(path)
    assert other.modifiers[gaussians.MODIFIER_NAME].node_group == mod.node_group and other.data.materials[0] == mat
    assert len([g for g in bpy.data.node_groups if g.get("physinteract_gaussian_display")]) == 1
    assert len([m for m in bpy.data.materials if m.get("physinteract_gaussian_display")]) == 1


def test_export_after_import_is_byte_identical(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: import -> export of a binary float32 3DGS PLY writes the same bytes, and reading it back gives
    every property with the same values and types (extra uint8 stays uint8), in object space despite a transform."""
    cloud = _cloud(2)
    src, out = tmp_path / "in.ply", tmp_path / "out.ply"
    write_gaussian_ply(src, cloud)
    obj = _import(src)
    obj.location = (1.0, 2.0, 3.0)  # object space: the transform is not written
    obj.scale = (2.0, 2.0, 2.0)
    assert bpy.ops.physinteract.export_gaussians(filepath=str(out)) == {"FINISHED"}
    back = read_gaussian_ply(out)
    for field in ("means", "f_dc", "f_rest", "opacity_logit", "log_scales", "rotations", "normals"):
        got, want = getattr(back, field), getattr(cloud, field)
        assert got.dtype == want.dtype and np.array_equal(got, want), field
    assert list(back.extra) == ["confidence", "segment", "uid"]
    for k, want in cloud.extra.items():
        assert back.extra[k].dtype == want.dtype and np.array_equal(back.extra[k], want), k
    assert out.read_bytes() == src.read_bytes()


def test_ascii_file_round_trips_values_through_blender(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """Known answer: an ASCII 3DGS PLY without f_rest or normals imports and exports (binary) with the values it was
    read with (float32-exact), and no f_rest/normals appear that were not in the file."""
    c = _cloud(3, n=20)
    cloud = GaussianCloud(c.means, c.f_dc, np.zeros((20, 0), np.float32), c.opacity_logit, c.log_scales, c.rotations)
    src, out = tmp_path / "a.ply", tmp_path / "b.ply"
    write_gaussian_ply(src, cloud, binary=False)
    want = read_gaussian_ply(src)
    obj = _import(src)
    assert not any(a.name.startswith(("f_rest", "nx")) for a in obj.data.attributes)
    assert bpy.ops.physinteract.export_gaussians(filepath=str(out)) == {"FINISHED"}
    assert out.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
    back = read_gaussian_ply(out)
    assert back.normals is None and back.f_rest.shape == (20, 0) and not back.extra
    for field in ("means", "f_dc", "opacity_logit", "log_scales", "rotations"):
        np.testing.assert_array_equal(getattr(back, field), getattr(want, field), err_msg=field)


def test_world_gaussians_transform_covariance_by_the_object_matrix(empty_scene: bpy.types.Scene, addon: str,
                                                                   tmp_path: Path) -> None:
    """Known answer: with object matrix M and s metres per unit, centres become s M x and covariances
    (s M3) Sigma (s M3)^T (rotated, non-uniformly stretched); colours 0.5 + C0 f_dc clamped; opacity sigmoid(logit)."""
    from physinteract.geometry.deform import covariance

    gaussians = sys.modules[f"{addon}.gaussians"]
    cloud = _cloud(7, n=50)
    path = tmp_path / "g.ply"
    write_gaussian_ply(path, cloud)
    obj = _import(path)
    obj.location, obj.rotation_euler, obj.scale = (0.3, -1.0, 2.0), (0.4, -0.2, 1.1), (2.0, 1.0, 0.5)
    bpy.context.view_layer.update()
    s = 0.25
    got = gaussians.world_gaussians(obj, s)
    m = np.array(obj.matrix_world, np.float64)
    a = s * m[:3, :3]
    np.testing.assert_allclose(got["rest_positions"], cloud.means @ a.T + s * m[:3, 3], rtol=1e-6, atol=1e-7)
    want_cov = a @ covariance(cloud.rotations, cloud.log_scales) @ a.T
    np.testing.assert_allclose(np.linalg.norm(got["rest_rotations"], axis=1), 1.0, atol=1e-12)
    got_cov = covariance(got["rest_rotations"], np.log(got["rest_scales"]))
    np.testing.assert_allclose(got_cov, want_cov, rtol=1e-6, atol=1e-6 * np.abs(want_cov).max())
    np.testing.assert_allclose(got["colors"], np.clip(0.5 + SH_C0 * cloud.f_dc.astype(np.float64), 0, 1), atol=1e-6)
    np.testing.assert_allclose(got["opacities"], 1 / (1 + np.exp(-cloud.opacity_logit.astype(np.float64))), rtol=1e-6)
    world_ply = tmp_path / "world.ply"
    assert gaussians.write_world_gaussian_ply(obj, str(world_ply), s) == 50
    back = read_gaussian_ply(world_ply)
    np.testing.assert_allclose(back.means, got["rest_positions"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.exp(back.log_scales.astype(np.float64)), got["rest_scales"], rtol=1e-5)
    np.testing.assert_array_equal(back.f_dc, cloud.f_dc)


def test_malformed_file_reports_file_and_property_and_changes_nothing(empty_scene: bpy.types.Scene, addon: str,
                                                                      tmp_path: Path) -> None:
    """A 3DGS PLY missing f_dc_0, a truncated one and a non-PLY file each fail with an error naming the file (and the
    missing property), and leave objects, meshes, materials and node groups as they were."""
    good = tmp_path / "good.ply"
    write_gaussian_ply(good, _cloud(4))
    _import(good)  # the scene is not empty: a failed import must not touch what is there
    cols = {"x": np.zeros(4, np.float32), "y": np.zeros(4, np.float32), "z": np.zeros(4, np.float32)}
    cols |= {k: np.zeros(4, np.float32) for k in ("f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                                                     "rot_0", "rot_1", "rot_2", "rot_3")}
    no_dc = tmp_path / "no_dc.ply"
    write_ply(no_dc, {"vertex": cols})
    truncated = tmp_path / "truncated.ply"
    truncated.write_bytes(good.read_bytes()[:-100])
    text = tmp_path / "notes.ply"
    text.write_text("not a ply file\n")
    before = _scene_state()
    for path, what in ((no_dc, "f_dc_0"), (truncated, ""), (text, ""), (tmp_path / "missing.ply", "")):
        with pytest.raises(RuntimeError) as err:
            bpy.ops.physinteract.import_gaussians(filepath=str(path))
        assert str(path) in str(err.value) and what in str(err.value), str(err.value)
        assert _scene_state() == before


def test_export_without_a_required_attribute_names_it_and_writes_nothing(empty_scene: bpy.types.Scene, addon: str,
                                                                         tmp_path: Path) -> None:
    """Removing the 'opacity' attribute makes export fail with an error naming the object and 'opacity'; no file."""
    src, out = tmp_path / "in.ply", tmp_path / "out.ply"
    write_gaussian_ply(src, _cloud(5))
    obj = _import(src)
    obj.data.attributes.remove(obj.data.attributes["opacity"])
    with pytest.raises(RuntimeError, match=r"'in'.*'opacity'"):
        bpy.ops.physinteract.export_gaussians(filepath=str(out))
    assert not out.exists()
    bpy.ops.object.select_all(action="DESELECT")
    bpy.context.view_layer.objects.active = None
    assert not bpy.ops.physinteract.export_gaussians.poll()  # nothing to export


def test_panel_shows_gaussian_count_and_display_size(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """The Object panel of a Gaussian target shows its count (N) and the display-size slider."""
    props = sys.modules[f"{addon}.properties"]
    path = tmp_path / "g.ply"
    write_gaussian_ply(path, _cloud(6))
    props.scene_settings(empty_scene).target = _import(path)
    log = _draw("PHYSINTERACT_PT_object")
    assert "prop:gaussian_display_size" in log and f"label:{N} Gaussians" in log


def test_menu_entries_come_and_go_with_the_addon(addon: str) -> None:
    """File > Import/Export list the 3DGS entries while the add-on is enabled and nothing of them after disabling,
    over two cycles; the operators go too."""
    io = sys.modules[f"{addon}.operators.gaussian_io"]

    def entries() -> list[str]:
        found = []
        for menu in (bpy.types.TOPBAR_MT_file_import, bpy.types.TOPBAR_MT_file_export):
            found += [f.__name__ for f in menu._dyn_ui_initialize() if getattr(f, "__module__", "").startswith(addon)]
        return found

    assert entries() == ["menu_import", "menu_export"] and io.PHYSINTERACT_OT_import_gaussians.is_registered
    try:
        for _ in range(2):
            addon_utils.disable(addon, default_set=True)
            assert entries() == []
            assert "import_gaussians" not in dir(bpy.ops.physinteract) and not hasattr(bpy.types, "PHYSINTERACT_OT_import_gaussians")
            addon_utils.enable(addon, default_set=True)
            assert entries() == ["menu_import", "menu_export"]
    finally:
        if addon not in bpy.context.preferences.addons:
            addon_utils.enable(addon, default_set=True)


def test_gaussian_reader_imports_no_torch_or_taichi() -> None:
    """The reader the import operator uses (physinteract.geometry.gaussians) loads numpy only: no torch, no taichi."""
    code = ("import sys, physinteract.geometry.gaussians as g; "
            "print(sorted(m for m in ('torch', 'taichi', 'scipy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert proc.stdout.strip().splitlines()[-1] == "[]"
