"""PhysInteract: estimate material and interaction from video, bake novel interactions.

The Blender half of PhysInteract. Importing this package is cheap: it imports
bpy and its own submodules only. The simulation runs out of process (the
``physinteract`` backend, started by :mod:`.backend_process`); inside Blender the
add-on only uses the numpy-only contract (``physinteract.contract``), which the
extension ships as a bundled wheel.

Layout (bpy-free modules marked *):
    properties/   scene.physinteract and object.physinteract settings
    ui/           the "PhysInteract" sidebar tab, one file per properties file
    operators/    fill, bake, estimate, initialise from video, cancel, free, create backend environment,
                  3DGS PLY import / export
    gaussians     3D Gaussians as a vertex-only mesh with point attributes, and their viewport display
    gaussian_playback  a baked Gaussian object's per-frame rotations and scales (frame handler)
    field_display*  colours and legend of an estimated E / nu field (log10 E on a ramp)
    init_session  Initialise from Video: ``physinteract init``, then type, contact and trajectory Empty
    preferences   interpreter path, default cache folder
    scene_to_job  Blender scene -> contract job folder
    filling*      volume fill through ``physinteract fill`` (OBJ out, particle PLY in)
    cache_to_scene  contract cache folder -> Mesh Cache modifiers
    backend_process*  starts and follows the backend subprocess
    bake_session  one bake: job, process, progress, attach (shared by modal, CLI, scripts)
    cli           ``blender --command physinteract bake | estimate | init``
    utils         typed helpers for optional context members
"""

from __future__ import annotations

from . import cli, operators, preferences, properties, ui


def register() -> None:
    properties.register()
    preferences.register()
    operators.register()
    ui.register()
    cli.register()


def unregister() -> None:
    cli.unregister()
    ui.unregister()
    operators.unregister()
    preferences.unregister()
    properties.unregister()
