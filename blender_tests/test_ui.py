"""The sidebar panels, presets, fill preview and preferences operators."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bpy
import numpy as np
import pytest


class RecordingLayout:
    """Stands in for bpy.types.UILayout: every prop/operator a panel draws must exist."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.active = True
        self.enabled = True

    def _child(self, *args: Any, **kwargs: Any) -> RecordingLayout:
        return self

    row = column = box = split = _child

    def prop(self, data: Any, name: str, **kwargs: Any) -> None:
        assert name in data.bl_rna.properties, f"{data} has no property '{name}'"
        self.log.append(f"prop:{name}")

    def prop_search(self, data: Any, name: str, search_data: Any, search_name: str, **kwargs: Any) -> None:
        assert name in data.bl_rna.properties and search_name in search_data.bl_rna.properties
        self.log.append(f"prop_search:{name}")

    def operator(self, idname: str, **kwargs: Any) -> None:
        mod, op = idname.split(".")
        assert op in dir(getattr(bpy.ops, mod)), f"no operator {idname}"
        self.log.append(f"operator:{idname}")

    def label(self, **kwargs: Any) -> None:
        self.log.append(f"label:{kwargs.get('text', '')}")

    def progress(self, **kwargs: Any) -> None:
        self.log.append("progress")


PANELS = ["PHYSINTERACT_PT_object", "PHYSINTERACT_PT_filling", "PHYSINTERACT_PT_material", "PHYSINTERACT_PT_interaction",
          "PHYSINTERACT_PT_video", "PHYSINTERACT_PT_estimate", "PHYSINTERACT_PT_bake"]


def _draw(name: str) -> list[str]:
    cls = getattr(bpy.types, name)
    log: list[str] = []
    fake = type("FakePanel", (), {"layout": RecordingLayout(log)})()
    cls.draw(fake, bpy.context)
    return log


def test_panels_in_workflow_order_draw_existing_properties_and_operators(empty_scene: bpy.types.Scene, addon: str) -> None:
    """Every panel of the PhysInteract tab draws only properties and operators that exist,
    in the order Object, Filling, Material, Interaction, Video & Camera, Estimate, Bake."""
    props = sys.modules[f"{addon}.properties"]
    classes = [getattr(bpy.types, n) for n in PANELS]
    assert all(c.bl_category == "PhysInteract" and c.bl_space_type == "VIEW_3D" for c in classes)
    assert [c.bl_order for c in classes] == sorted(c.bl_order for c in classes)
    assert "prop:target" in _draw("PHYSINTERACT_PT_object")
    assert not bpy.types.PHYSINTERACT_PT_material.poll(bpy.context)  # no target yet
    mesh = bpy.data.meshes.new("m")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("Tri", mesh)
    empty_scene.collection.objects.link(obj)
    s = props.scene_settings(empty_scene)
    s.target = obj
    props.object_settings(obj).contact_source = "VERTEX_GROUP"
    s.use_scene_range = False
    s.is_running, s.status = True, "simulate: frame 2/10"
    logs = {n: _draw(n) for n in PANELS}
    assert all(getattr(bpy.types, n).poll(bpy.context) for n in PANELS if hasattr(getattr(bpy.types, n), "poll"))
    assert "prop_search:contact_group" in logs["PHYSINTERACT_PT_interaction"]
    assert "prop:youngs_modulus" in logs["PHYSINTERACT_PT_material"]
    assert {"operator:physinteract.bake", "operator:physinteract.cancel", "progress"} <= set(logs["PHYSINTERACT_PT_bake"])
    assert "prop:frame_start" in logs["PHYSINTERACT_PT_video"]
    s.is_running = False
    # the estimate's result: median E and nu, and the contact set's size only when the estimate has one
    s.estimate_E_median, s.estimate_nu_median = 2.0e4, 0.3
    assert "label:In contact: 12 particles (attribute 'contact')" not in _draw("PHYSINTERACT_PT_estimate")
    s.estimate_contact_count = 12
    drawn = _draw("PHYSINTERACT_PT_estimate")
    assert "label:Median E 2e+04 Pa, nu 0.300" in drawn and "label:In contact: 12 particles (attribute 'contact')" in drawn


@pytest.mark.parametrize("preset", ["RUBBER", "JELLY", "ROPE", "FOAM"])
def test_material_preset_sets_documented_si_values(empty_scene: bpy.types.Scene, addon: str, preset: str) -> None:
    """Choosing a preset writes its (E Pa, nu, density kg/m^3) into the object's settings."""
    props = sys.modules[f"{addon}.properties"]
    obj = bpy.data.objects.new("E", bpy.data.meshes.new("E"))
    o = props.object_settings(obj)
    o.material_preset = preset
    E, nu, rho = props.MATERIAL_PRESETS[preset]
    assert o.youngs_modulus == pytest.approx(E, rel=1e-6)
    assert o.poisson_ratio == pytest.approx(nu, rel=1e-6) and 0.0 <= nu < 0.5
    assert o.density == pytest.approx(rho, rel=1e-6)


def test_fill_preview_shows_the_particles_and_hides_them_again(empty_scene: bpy.types.Scene, addon: str) -> None:
    """Vertices fill: the preview object has the mesh's vertices at the same world positions; a second call removes it."""
    mesh = bpy.data.meshes.new("m")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)], [], [(0, 1, 2)])
    obj = bpy.data.objects.new("Tet", mesh)
    empty_scene.collection.objects.link(obj)
    obj.location = (1.0, 2.0, 3.0)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    prev = bpy.data.objects["Tet Fill Preview"]
    bpy.context.view_layer.update()
    got = np.array([(prev.matrix_world @ v.co)[:] for v in prev.data.vertices])
    want = np.array([(obj.matrix_world @ v.co)[:] for v in mesh.vertices])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    assert "Tet Fill Preview" not in bpy.data.objects


def test_create_backend_env_refuses_without_online_access(empty_scene: bpy.types.Scene, addon: str) -> None:
    """With Blender's online access off (the bpy module's default) the button reports why and does nothing."""
    assert not bpy.app.online_access
    with pytest.raises(RuntimeError, match="[Oo]nline access"):
        bpy.ops.physinteract.create_backend_env()


def test_environment_commands_are_argument_lists_installing_the_sim_extra(addon: str, tmp_path: Path) -> None:
    """venv, then pip install <wheel>[sim,perception] (extras the backend declares) and sam2 without build
    isolation, with the venv's own python; every item a plain string."""
    import tomllib

    env = sys.modules[f"{addon}.operators.environment"]
    cmds = env.environment_commands("/usr/bin/python3", tmp_path / "venv", Path("/x/physinteract-0.1.0-py3-none-any.whl"))
    assert cmds[0] == ["/usr/bin/python3", "-m", "venv", str(tmp_path / "venv")]
    assert cmds[2][-1] == "/x/physinteract-0.1.0-py3-none-any.whl[sim,perception]"
    declared = tomllib.loads((Path(__file__).resolve().parents[1] / "backend" / "pyproject.toml").read_text())
    assert {"sim", "perception"} <= set(declared["project"]["optional-dependencies"])
    assert cmds[3][-3:] == ["--no-build-isolation", "--no-deps", "sam2>=1.1"]
    assert all(c[0] == str(tmp_path / "venv" / "bin" / "python") for c in cmds[1:])
    assert env.bundled_wheel() is not None  # the installed extension carries its wheel


def test_command_chain_stops_at_the_first_failure(addon: str, tmp_path: Path) -> None:
    """CommandChain runs commands in order and returns the first non-zero exit code (3 from step 2)."""
    import time

    bp = sys.modules[f"{addon}.backend_process"]
    marker = tmp_path / "third_ran"
    chain = bp.CommandChain([[sys.executable, "-c", "print('one')"], [sys.executable, "-c", "import sys; sys.exit(3)"],
                             [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]], tmp_path / "log.txt")
    chain.start()
    while (code := chain.poll()) is None:
        time.sleep(0.02)
    assert code == 3 and chain.step == 1 and not marker.exists()
    assert "one" in (tmp_path / "log.txt").read_text()


def test_loading_a_file_clears_a_stale_running_flag(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """A file saved during a bake opens with is_running False (no backend can be running for it)."""
    props = sys.modules[f"{addon}.properties"]
    s = props.scene_settings(empty_scene)
    s.is_running = True
    path = tmp_path / "stale.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    s = props.scene_settings(bpy.context.scene)
    assert not s.is_running and "interrupted" in s.status
