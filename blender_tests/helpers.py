"""Scene builders, backends and readers shared by the Blender tests (no fixtures: those live in conftest.py)."""

from __future__ import annotations

import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bpy
import numpy as np

from physinteract import contract

TESTS = Path(__file__).resolve().parent
# A UI tick must never wait for the backend. The fake backends' steps last FAKE_STEP_S in the tests
# that check this, so a tick that waited for one would take at least that long; below it, a tick
# only did its own work. On a slow 2-core CI machine that work took up to 112 ms (the last tick of
# a cancel, which assembles the completed frames), so the bound is not a few tens of ms.
FAKE_STEP_S = 0.25
TICK_LIMIT_MS = 1000.0 * FAKE_STEP_S


def write_fake_python(folder: Path) -> str:
    """An executable ``folder/python`` that runs blender_tests/fake_backend.py (a stand-in backend); returns its path."""
    wrapper = folder / "python"
    wrapper.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                       "import fake_backend\nsys.exit(fake_backend.main(sys.argv[1:]))\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def set_prefs_python(addon: str, python: str) -> None:
    """Make ``python`` the add-on's backend interpreter."""
    bpy.context.preferences.addons[addon].preferences.python_path = python


def add_grip(scene: bpy.types.Scene, top: Sequence[float], frames: tuple[int, int], lift: float = 0.02) -> bpy.types.Object:
    """An Empty "Grip" keyed at ``top`` (frame frames[0]) and ``lift`` units higher (frames[1]): a grasp
    trajectory. The scene's range becomes ``frames`` and its current frame frames[0]."""
    empty = bpy.data.objects.new("Grip", None)
    scene.collection.objects.link(empty)
    x, y, z = top
    empty.location = (x, y, z)
    empty.keyframe_insert("location", frame=frames[0])
    empty.location = (x, y, z + lift)
    empty.keyframe_insert("location", frame=frames[1])
    scene.frame_start, scene.frame_end = frames
    scene.frame_set(frames[0])
    return empty


def use_target(props: Any, scene: bpy.types.Scene, obj: bpy.types.Object, tmp: Path) -> None:
    """Make ``obj`` the scene's target, with cache and job folders under ``tmp`` and a 16-cell grid."""
    s = props.scene_settings(scene)
    s.target, s.cache_dir, s.job_dir, s.grid_resolution = obj, str(tmp / "cache"), str(tmp / "job"), 16


def eval_local(obj: bpy.types.Object) -> np.ndarray:
    """[V, 3] the evaluated mesh's vertex positions (object's local space)."""
    dg = bpy.context.evaluated_depsgraph_get()
    me = obj.evaluated_get(dg).data
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    return co.reshape(-1, 3).astype(np.float64)


def expected_local(cache: Path, frame: int, name: str) -> np.ndarray:
    """A point set's positions of ``frame`` in its object's local space (manifest's world_to_object)."""
    m = contract.read_cache_manifest(cache)
    w2o = np.asarray(next(p for p in m["point_sets"] if p["name"] == name)["world_to_object"])
    x = contract.read_frame(cache, frame)[f"{name}.positions"].astype(np.float64)
    return x @ w2o[:3, :3].T + w2o[:3, 3]
