"""Gaussian objects play their bake: positions, rotations and scales per frame.

The positions play through the Mesh Cache modifier like any mesh (cache_to_scene).
The per-frame rotations and scales (the cache's ``<set>.rotations`` [V, 4] w-first
and ``<set>.scales`` [V, 3] m, both world) have no modifier, so a persistent
``frame_change_post`` handler writes them into the object's 3DGS attributes
(``rot_0..3``, ``scale_0..2`` natural logs, object space) whenever the frame
changes, and a ``load_post`` handler does it once a file is opened. The object
remembers its cache folder in ``object.physinteract.gaussian_cache`` ('//'-relative
to the saved .blend where possible), so a reopened file plays its bake.

World -> object: the covariance Sigma_w = R S^2 R^T maps to A Sigma_w A^T with A
the 3x3 part of the manifest's ``world_to_object`` (the same map as the positions'
PC2), then back to a rotation and scales (geometry.deform, numpy only).

The rest values are kept in internal attributes (``gaussians.REST_PREFIX`` + name,
hidden and never exported); ``gaussians.cloud_from_object`` reads them, so jobs,
fills and exports always see the Gaussians at rest, and freeing the bake restores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
import numpy as np

from physinteract import contract

from . import gaussians
from .properties import object_settings

ROTATIONS = [f"rot_{i}" for i in range(4)]
SCALES = [f"scale_{i}" for i in range(3)]

# What a frame change needs besides the frame's arrays, read once per cache version:
# (cache folder, point set) -> (version stamp, completed frames, [3, 3] world -> object or None: no such set).
# Cleared when a file loads and when the add-on is unregistered (clear_memo).
_memo: dict[tuple[str, str], tuple[tuple[int, ...], list[int], np.ndarray | None]] = {}


def clear_memo() -> None:
    _memo.clear()


def _write(mesh: bpy.types.Mesh, name: str, values: np.ndarray) -> None:
    attributes: Any = mesh.attributes
    attributes[name].data.foreach_set("value", np.ascontiguousarray(values, np.float32))


def _version(cache: Path) -> tuple[int, ...] | None:
    """A stamp that changes whenever the cache's manifest or completed frames change (every contract write is a
    rename into its folder: a new inode, a new folder mtime); None when the cache is incomplete (nothing memoised)."""
    try:
        m, f = (cache / contract.CACHE_MANIFEST).stat(), (cache / contract.FRAMES_DIR).stat()
    except OSError:
        return None
    return m.st_ino, m.st_mtime_ns, m.st_size, f.st_ino, f.st_mtime_ns


def _playable(cache: Path, point_set: str) -> tuple[list[int], np.ndarray | None]:
    """(completed frames, [3, 3] world -> object linear map of ``point_set``, None when the manifest has no such
    set) of a cache; memoised while the cache's version stamp stays the same, so a frame change reads no manifest."""
    from .cache_to_scene import find_point_set, world_to_object

    key, version = (str(cache), point_set), _version(cache)
    hit = _memo.get(key)
    if hit is not None and version is not None and hit[0] == version:
        return hit[1], hit[2]
    frames = contract.completed_frames(cache)
    A = None
    if frames:
        ps = find_point_set(contract.read_cache_manifest(cache), point_set)
        A = None if ps is None else world_to_object(ps)[:3, :3]
    if version is not None:
        _memo[key] = (version, frames, A)
    return frames, A


def attach(obj: bpy.types.Object, cache_dir: str | Path, point_set: str, relative: bool = True) -> bool:
    """Make the Gaussian object ``obj`` play the rotations and scales of ``point_set`` in ``cache_dir``
    from now on (and show the current frame). False when the cache has none for it."""
    from .cache_to_scene import blend_path, find_point_set

    ps = find_point_set(contract.read_cache_manifest(cache_dir), point_set)
    if ps is None or not (ps.get("rotations") and ps.get("scales")):
        return False
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    attributes: Any = mesh.attributes
    for name in ROTATIONS + SCALES:
        rest = gaussians.REST_PREFIX + name
        if attributes.get(rest) is None:
            values = gaussians.read_float(mesh, name)
            attributes.new(rest, "FLOAT", "POINT")
            _write(mesh, rest, values)
    o = object_settings(obj)
    o.gaussian_cache, o.gaussian_point_set = blend_path(cache_dir, relative), point_set
    return True


def detach(obj: bpy.types.Object) -> bool:
    """Stop playing: the rest rotations and scales go back into the attributes. False when nothing played."""
    o = object_settings(obj)
    mesh = obj.data
    if not isinstance(mesh, bpy.types.Mesh):
        return False
    attributes: Any = mesh.attributes
    restored = False
    for name in ROTATIONS + SCALES:
        rest = attributes.get(gaussians.REST_PREFIX + name)
        if rest is not None:
            _write(mesh, name, gaussians.read_float(mesh, rest.name))
            attributes.remove(rest)
            restored = True
    if restored:
        mesh.update()
    o.gaussian_cache, o.gaussian_point_set = "", ""
    return restored


def show_frame(scene: bpy.types.Scene, obj: bpy.types.Object) -> int | None:
    """Write the cache's rotations and scales of the scene's frame (clamped to the completed frames, as the
    Mesh Cache modifier holds its ends) into the object's attributes. Returns the frame shown (None: no frames).

    The frame handler's body: per call it reads only that frame's arrays (manifest and frame list: _playable)."""
    o = object_settings(obj)
    cache = Path(bpy.path.abspath(o.gaussian_cache))
    frames, A = _playable(cache, o.gaussian_point_set)
    if not frames or A is None:
        return None
    frame = min(max(int(scene.frame_current), frames[0]), frames[-1])
    rot_key, scale_key = f"{o.gaussian_point_set}.rotations", f"{o.gaussian_point_set}.scales"
    data = contract.read_frame(cache, frame, keys=(rot_key, scale_key))
    rot_w = np.asarray(data[rot_key], np.float64)
    scales_w = np.asarray(data[scale_key], np.float64)
    mesh = obj.data
    assert isinstance(mesh, bpy.types.Mesh)
    if len(rot_w) != len(mesh.vertices):
        return None
    from physinteract.geometry.deform import deform_gaussians

    rot_o, log_scales_o = deform_gaussians(rot_w, np.log(np.maximum(scales_w, 1e-12)), np.broadcast_to(A, (len(rot_w), 3, 3)))
    for i, name in enumerate(ROTATIONS):
        _write(mesh, name, rot_o[:, i])
    for i, name in enumerate(SCALES):
        _write(mesh, name, log_scales_o[:, i])
    mesh.update()
    return frame


def show_scene(scene: bpy.types.Scene) -> None:
    """Every playing Gaussian object of ``scene`` shows the current frame; a missing or damaged cache is
    reported on the console and leaves the object as it is (a handler must not raise)."""
    for obj in scene.objects:
        if obj.type != "MESH" or not object_settings(obj).gaussian_cache:
            continue
        try:
            show_frame(scene, obj)
        except (contract.ContractError, OSError, ValueError, KeyError) as e:
            print(f"PhysInteract: '{obj.name}' cannot play its Gaussians' cache: {e}")


@bpy.app.handlers.persistent
def on_frame_change(scene: bpy.types.Scene, _depsgraph: Any = None) -> None:
    show_scene(scene)


@bpy.app.handlers.persistent
def on_load(_filepath: str = "") -> None:
    clear_memo()
    for scene in bpy.data.scenes:
        show_scene(scene)


HANDLERS = ((bpy.app.handlers.frame_change_post, on_frame_change), (bpy.app.handlers.load_post, on_load))
