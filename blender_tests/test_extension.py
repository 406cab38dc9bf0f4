"""The built extension zip: valid manifest, installs through Blender's extension
API, registers and unregisters cleanly, and imports the contract without torch/taichi."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import addon_utils
import bpy
import pytest
from conftest import ADDON_MODULE, install_extension

BLENDER_EXT = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def test_zip_layout_manifest_and_wheel(extension_zip: Path) -> None:
    """The zip holds the manifest and __init__.py at its root and the backend wheel its manifest lists."""
    with zipfile.ZipFile(extension_zip) as zf:
        names = set(zf.namelist())
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert {"blender_manifest.toml", "__init__.py", "operators/bake.py", "backend_process.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert manifest["id"] == "physinteract" and manifest["version"] == "0.1.0"
    assert manifest["schema_version"] == "1.0.0" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    tag = manifest["tagline"]
    assert len(tag) <= 64 and tag[-1].isalnum()
    assert set(manifest["permissions"]) <= {"files", "network"} and "files" in manifest["permissions"]
    assert manifest["wheels"] == ["./wheels/physinteract-0.1.0-py3-none-any.whl"]
    assert manifest["wheels"][0][2:] in names
    with zipfile.ZipFile(extension_zip) as zf, zf.open(manifest["wheels"][0][2:]) as wf, zipfile.ZipFile(wf) as wheel:
        wnames = set(wheel.namelist())
    assert {"physinteract/contract/cache.py", "physinteract/contract/job.py", "physinteract/cli.py"} <= wnames


def test_blender_validates_the_zip(extension_zip: Path) -> None:
    """Blender's own extension tool (blender_ext.py validate) accepts the zip."""
    assert BLENDER_EXT.is_file(), BLENDER_EXT
    proc = subprocess.run([sys.executable, str(BLENDER_EXT), "validate", str(extension_zip)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _snapshot() -> dict[str, object]:
    """Everything an add-on can leave behind in Blender."""
    wm = bpy.context.window_manager
    handlers = {name: [getattr(f, "__module__", "") + "." + getattr(f, "__name__", repr(f)) for f in getattr(bpy.app.handlers, name)]
                for name in dir(bpy.app.handlers) if isinstance(getattr(bpy.app.handlers, name), list)}
    keymaps = {}
    for kc in (wm.keyconfigs.addon, wm.keyconfigs.user):
        if kc is not None:
            for km in kc.keymaps:
                keymaps[f"{kc.name}/{km.name}"] = sorted(kmi.idname for kmi in km.keymap_items)
    return {
        "types": sorted(n for n in dir(bpy.types) if "physinteract" in n.lower()),
        "ops": sorted(dir(bpy.ops.physinteract)),
        "scene_props": sorted(bpy.types.Scene.bl_rna.properties.keys()),
        "object_props": sorted(bpy.types.Object.bl_rna.properties.keys()),
        "wm_props": sorted(bpy.types.WindowManager.bl_rna.properties.keys()),
        "handlers": handlers,
        "keymaps": keymaps,
        "addons": sorted(bpy.context.preferences.addons.keys()),
    }


def _addon_functions(module_name: str) -> list[object]:
    """Every function defined in the add-on's modules (to ask bpy.app.timers about)."""
    funcs = []
    for name, mod in list(sys.modules.items()):
        if name == module_name or name.startswith(module_name + "."):
            funcs += [v for v in vars(mod).values() if callable(v) and getattr(v, "__module__", "") == name]
    return funcs


def test_register_unregister_three_times_leaves_nothing(addon: str) -> None:
    """Disabling then enabling the installed add-on 3 times: each disable restores Blender exactly."""
    addon_utils.disable(addon, default_set=True)
    before = _snapshot()
    assert not before["types"] and not before["ops"], before
    for _ in range(3):
        addon_utils.enable(addon, default_set=True)
        enabled = _snapshot()
        # Enabling really registers something (else the comparison below proves nothing).
        assert "PHYSINTERACT_OT_bake" in enabled["types"] and "PHYSINTERACT_PT_bake" in enabled["types"]
        assert "physinteract" in enabled["scene_props"] and "physinteract" in enabled["object_props"]
        assert "bake" in enabled["ops"] and "cancel" in enabled["ops"] and "free_bake" in enabled["ops"]
        cli = sys.modules[addon + ".cli"]
        handles = list(cli._handles)
        assert len(handles) == 1
        funcs = _addon_functions(addon)
        addon_utils.disable(addon, default_set=True)
        after = _snapshot()
        assert after == before
        assert not cli._handles
        with pytest.raises(ValueError):  # the CLI command's handle is gone from Blender
            bpy.utils.unregister_cli_command(handles[0])
        assert not [f for f in funcs if bpy.app.timers.is_registered(f)]
    addon_utils.enable(addon, default_set=True)
    assert ADDON_MODULE in bpy.context.preferences.addons


def test_reinstall_over_itself(extension_zip: Path, addon: str) -> None:
    """Installing the same zip again (overwrite) keeps one enabled add-on."""
    install_extension(extension_zip)
    assert [k for k in bpy.context.preferences.addons.keys() if k.endswith(".physinteract")] == [ADDON_MODULE]
    assert hasattr(bpy.types.Scene, "physinteract")


_ISOLATION_SCRIPT = r"""
import json, os, sys
zip_path = sys.argv[1]
# Forbid the editable checkout so the contract can only come from the extension's wheel.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()]
import bpy
before = set(sys.modules)
r = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
assert r == {"FINISHED"}, r
from physinteract import contract
import physinteract
print(json.dumps({
    "file": physinteract.__file__,
    "has_write_pc2": hasattr(contract, "write_pc2"),
    "enabled": "bl_ext.user_default.physinteract" in bpy.context.preferences.addons,
    "heavy": sorted(m for m in ("torch", "taichi", "sam2") if m in sys.modules),
    "heavy_before": sorted(m for m in ("torch", "taichi", "sam2") if m in before),
}))
"""


def test_contract_import_in_blender_loads_no_torch_taichi_sam2(extension_zip: Path, tmp_path: Path) -> None:
    """In a fresh Blender process, installing + enabling the extension and importing the
    contract (from the bundled wheel) leaves torch, taichi and sam2 out of sys.modules."""
    env = dict(os.environ)
    for key in ("BLENDER_USER_CONFIG", "BLENDER_USER_SCRIPTS", "BLENDER_USER_EXTENSIONS", "BLENDER_USER_DATAFILES"):
        env.pop(key, None)
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", _ISOLATION_SCRIPT, str(extension_zip)],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["enabled"] and out["has_write_pc2"]
    # The contract came from the wheel Blender installed for the extension.
    assert Path(out["file"]).is_relative_to(tmp_path / "user" / "extensions"), out["file"]
    assert out["heavy"] == [] and out["heavy_before"] == []
