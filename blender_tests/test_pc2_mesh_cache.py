"""PC2 files written by the contract play in Blender's Mesh Cache modifier."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from physinteract.contract import write_pc2


def _triangle_object(name: str = "tri") -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], [], [(0, 1, 2), (0, 1, 3)])
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _evaluated_coords(obj: bpy.types.Object) -> np.ndarray:
    dg = bpy.context.evaluated_depsgraph_get()
    mesh = obj.evaluated_get(dg).data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    return co.reshape(-1, 3)


@pytest.mark.parametrize("start", [1, 7, -3])
def test_mesh_cache_plays_contract_pc2_sample_k_at_frame_start_plus_k(empty_scene: bpy.types.Scene, addon: str,
                                                                      tmp_path: Path, start: int) -> None:
    """Known answer: at scene frame start+k the evaluated vertices equal the k-th written
    sample (float32-exact), and frames outside the cache hold the first/last sample."""
    cache_to_scene = sys.modules[addon + ".cache_to_scene"]
    obj = _triangle_object()
    obj.modifiers.new("Wave", "DISPLACE").strength = 0.0  # an existing modifier: the cache must go first
    rng = np.random.default_rng(start + 10)
    samples = rng.normal(size=(5, 4, 3)).astype(np.float32)
    pc2 = tmp_path / "tri.pc2"
    write_pc2(pc2, samples, start_frame=start)
    md = cache_to_scene.attach_mesh_cache(obj, pc2)
    assert md.frame_start == start and obj.modifiers[0] == md
    scene = empty_scene
    for k in (0, 1, 3, 4):
        scene.frame_set(start + k)
        np.testing.assert_allclose(_evaluated_coords(obj), samples[k], rtol=0, atol=1e-6)
    scene.frame_set(start - 2)
    np.testing.assert_allclose(_evaluated_coords(obj), samples[0], rtol=0, atol=1e-6)
    scene.frame_set(start + 9)
    np.testing.assert_allclose(_evaluated_coords(obj), samples[-1], rtol=0, atol=1e-6)
    # Removing the modifier restores the rest mesh.
    assert cache_to_scene.remove_mesh_cache(obj)
    np.testing.assert_allclose(_evaluated_coords(obj), [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], atol=0)


def test_mesh_cache_refuses_pc2_with_other_vertex_count(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """A PC2 of 3 points cannot drive a 4-vertex mesh: ContractError naming the file and num_points."""
    from physinteract.contract import ContractError

    cache_to_scene = sys.modules[addon + ".cache_to_scene"]
    obj = _triangle_object()
    pc2 = tmp_path / "bad.pc2"
    write_pc2(pc2, np.zeros((2, 3, 3)), start_frame=1)
    with pytest.raises(ContractError, match="num_points") as e:
        cache_to_scene.attach_mesh_cache(obj, pc2)
    assert str(pc2) in str(e.value)
    assert len(obj.modifiers) == 0
