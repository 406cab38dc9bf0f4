"""Build a .blend file that plays a PhysInteract cache.

    python scripts/example_blend.py --cache CACHE --job JOB --out FILE.blend [--zip EXTENSION.zip]

Imports bpy (the Blender-as-a-module package), enables the add-on (from this
source tree, or from the built extension zip with --zip, installed into a
temporary user folder), then builds the scene:

- one mesh object per point set of the job (rest positions, plus the triangles
  of the point set's optional ``faces`` when the job has them), with a Mesh
  Cache modifier playing ``<cache>/<name>.pc2`` through a '//'-relative path;
- the particles as a vertex-only object playing ``particles.pc2``;
- the job's camera (OpenCV K and per-frame extrinsics converted back to a
  Blender camera, keyed per frame);
- the scene's frame range and frame rate from the cache.

Writes FILE.blend and prints its path.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _enable_addon(zip_path: Path | None) -> str:
    """Enable the add-on; returns its module name."""
    import importlib

    import bpy

    addon_utils = importlib.import_module("addon_utils")  # Blender's own module, importable once bpy is

    if zip_path is None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        module = "physinteract_addon"
        addon_utils.enable(module, default_set=True)
    else:
        result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
        if result != {"FINISHED"}:
            raise SystemExit(f"example_blend: installing {zip_path} failed: {result}")
        module = "bl_ext.user_default.physinteract"
    if module not in bpy.context.preferences.addons:
        raise SystemExit(f"example_blend: could not enable the add-on '{module}'")
    return module


def _camera(scene: Any, job: Any, scale: float) -> Any:
    """A Blender camera reproducing the job's OpenCV camera (HORIZONTAL sensor fit)."""
    import bpy
    import mathutils
    import numpy as np

    from physinteract import contract

    cam = job.camera
    data = bpy.data.cameras.new("PhysInteract Camera")
    data.sensor_fit = "HORIZONTAL"
    fx, fy, cx, cy = cam.K[0, 0], cam.K[1, 1], cam.K[0, 2], cam.K[1, 2]
    data.lens = fx * data.sensor_width / cam.width
    data.shift_x = (cam.width / 2.0 - cx) / cam.width
    data.shift_y = (cy - cam.height / 2.0) / cam.width
    scene.render.resolution_x, scene.render.resolution_y = cam.width, cam.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, float(fx / fy)
    obj = bpy.data.objects.new("PhysInteract Camera", data)
    scene.collection.objects.link(obj)
    scene.camera = obj
    for i, w2c in enumerate(cam.world_to_camera):
        m = np.array(w2c, np.float64)
        m[:3, 3] /= scale  # metres -> Blender units
        obj.matrix_world = mathutils.Matrix(contract.blender_matrix_from_world_to_camera(m).tolist())
        for path in ("location", "rotation_euler"):
            obj.keyframe_insert(path, frame=job.frame_start + i)
    return obj


def build(cache: Path, job_dir: Path, out: Path, zip_path: Path | None = None) -> Path:
    import bpy
    import mathutils
    import numpy as np

    from physinteract import contract

    module = _enable_addon(zip_path)
    cache_to_scene = sys.modules[f"{module}.cache_to_scene"]

    job = contract.read_job(job_dir)
    manifest = contract.read_cache_manifest(cache)
    scale = float(job.metadata.get("blender", {}).get("metres_per_unit", 1.0))

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.name = "PhysInteract"
    fps = float(manifest["fps"])
    scene.render.fps, scene.render.fps_base = max(1, round(fps)), max(1, round(fps)) / fps
    scene.frame_start, scene.frame_end = int(manifest["frame_start"]), int(manifest["frame_end"])

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Save first so '//' paths can be made relative to the .blend's folder; no .blend1 backups
    # (this process's preferences are never saved).
    bpy.context.preferences.filepaths.save_version = 0
    bpy.ops.wm.save_as_mainfile(filepath=str(out))

    cached = {ps["name"] for ps in manifest["point_sets"]}
    to_units = np.diag([1.0 / scale, 1.0 / scale, 1.0 / scale, 1.0])
    for ps in job.point_sets:
        if ps.name not in cached or not (cache / f"{ps.name}.pc2").is_file():
            continue
        o2w = np.asarray(ps.object_to_world, np.float64)
        w2o = np.linalg.inv(o2w)
        local = np.asarray(ps.rest_positions, np.float64) @ w2o[:3, :3].T + w2o[:3, 3]
        faces = [] if ps.faces is None else np.asarray(ps.faces).tolist()
        mesh = bpy.data.meshes.new(ps.name)
        mesh.from_pydata(local.tolist(), [], faces)
        mesh.update()
        obj = bpy.data.objects.new(ps.name, mesh)
        obj.matrix_world = mathutils.Matrix((to_units @ o2w).tolist())
        scene.collection.objects.link(obj)
        cache_to_scene.attach_mesh_cache(obj, cache / f"{ps.name}.pc2", relative=True)
    if (cache / "particles.pc2").is_file():
        cache_to_scene.particles_object(scene, cache, scale, relative=True)
    if job.camera is not None:
        _camera(scene, job, scale)
    scene.frame_set(scene.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Build a .blend that plays a PhysInteract cache.")
    p.add_argument("--cache", type=Path, required=True, help="cache folder (cache.json, <set>.pc2)")
    p.add_argument("--job", type=Path, required=True, help="job folder (job.json) the cache was baked from")
    p.add_argument("--out", type=Path, required=True, help="the .blend file to write")
    p.add_argument("--zip", type=Path, help="enable the add-on from this built extension zip instead of the source tree")
    args = p.parse_args(argv)
    if "BLENDER_USER_RESOURCES" not in os.environ:
        # A throw-away Blender user folder: never touch the user's own Blender config.
        os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="physinteract_example_user_")
    for path, what in ((args.cache / "cache.json", "cache"), (args.job / "job.json", "job")):
        if not path.is_file():
            print(f"example_blend: {path}: not a {what} folder (no {path.name})", file=sys.stderr)
            return 2
    try:
        out = build(args.cache.resolve(), args.job.resolve(), args.out, args.zip)
    except ValueError as e:  # ContractError is a ValueError
        print(f"example_blend: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
