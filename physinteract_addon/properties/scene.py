"""scene.physinteract: the scene-wide settings and the running job's status."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    IntVectorProperty,
    PointerProperty,
    StringProperty,
)

from .object import INTERACTION_ITEMS


def _is_mesh(self: Any, obj: bpy.types.Object) -> bool:
    return obj.type == "MESH"


def _is_camera(self: Any, obj: bpy.types.Object) -> bool:
    return obj.type == "CAMERA"


class PhysInteractSceneSettings(bpy.types.PropertyGroup):
    """Scene-wide PhysInteract settings (scene.physinteract)."""

    target: PointerProperty(  # type: ignore[valid-type]
        name="Object", description="The mesh object to estimate or simulate", type=bpy.types.Object, poll=_is_mesh,
    )
    # Video & camera
    clip: PointerProperty(  # type: ignore[valid-type]
        name="Video", description="Movie Clip of the observed interaction (an image sequence is passed frame by frame)",
        type=bpy.types.MovieClip,
    )
    camera: PointerProperty(  # type: ignore[valid-type]
        name="Camera", description="Camera that filmed the video (empty: the scene camera)", type=bpy.types.Object,
        poll=_is_camera,
    )
    use_scene_range: BoolProperty(  # type: ignore[valid-type]
        name="Scene Frame Range", description="Use the scene's frame range", default=True,
    )
    frame_start: IntProperty(name="Start", description="First frame", default=1)  # type: ignore[valid-type]
    frame_end: IntProperty(name="End", description="Last frame", default=48)  # type: ignore[valid-type]
    # Solver
    grid_resolution: IntProperty(  # type: ignore[valid-type]
        name="Grid Resolution", description="MPM grid cells along the domain's longest side", default=48, min=4, soft_max=256,
    )
    use_ground: BoolProperty(name="Ground", description="A ground plane at z = Ground Height", default=False)  # type: ignore[valid-type]
    ground_height: FloatProperty(  # type: ignore[valid-type]
        name="Ground Height", description="Ground plane height (Blender units, world)", default=0.0, subtype="DISTANCE",
    )
    # Folders
    cache_dir: StringProperty(  # type: ignore[valid-type]
        name="Cache Folder", description="Folder of the baked cache ('//' = beside the .blend file)",
        default="//physinteract_cache", subtype="DIR_PATH",
    )
    job_dir: StringProperty(  # type: ignore[valid-type]
        name="Job Folder", description="Folder the job for the backend is written to",
        default="//physinteract_job", subtype="DIR_PATH",
    )
    # Initialise from Video (physinteract init)
    init_interaction: EnumProperty(  # type: ignore[valid-type]
        name="Type", description="The interaction type 'Initialise from Video' assumes",
        items=[("AUTO", "Detect", "Let the backend recognise the interaction in the video (vision-language model)"),
               *INTERACTION_ITEMS],
        default="AUTO",
    )
    use_contact_box: BoolProperty(  # type: ignore[valid-type]
        name="Contact Box", description="Prompt the contact segmentation with a box in the first video frame", default=False,
    )
    contact_box: IntVectorProperty(  # type: ignore[valid-type]
        name="Box (px)", description="The contact region's box in the first video frame: x0, y0, x1, y1 (pixels)", size=4,
        min=0, default=(0, 0, 0, 0),
    )
    # Estimate (Estimate Material: physinteract estimate, into <cache folder>/estimate)
    estimate_mode: EnumProperty(  # type: ignore[valid-type]
        name="Mode", description="What the estimate optimises",
        items=[
            ("joint", "Material + Trajectory", "Estimate the material field and refine the interaction trajectory together"),
            ("material_only", "Material Only", "Estimate the material field; the keyed trajectory stays as it is"),
            ("trajectory_only", "Trajectory Only", "Refine the trajectory; the material stays at the initial guess"),
        ],
        default="joint",
    )
    estimate_iterations: IntProperty(  # type: ignore[valid-type]
        name="Iterations", description="Gradient iterations (0: the backend's default)", default=0, min=0, soft_max=1000,
    )
    estimate_progress_iteration: IntProperty(name="Iteration", default=0)  # type: ignore[valid-type]
    estimate_progress_total: IntProperty(name="Iterations", default=0)  # type: ignore[valid-type]
    estimate_loss: FloatProperty(name="Loss", description="The running estimate's latest loss", default=0.0)  # type: ignore[valid-type]
    estimate_eta_s: FloatProperty(name="ETA (s)", description="Seconds the running estimate still needs", default=0.0)  # type: ignore[valid-type]
    estimate_E_median: FloatProperty(  # type: ignore[valid-type]
        name="Median E (Pa)", description="Median Young's modulus of the last estimate (Pa; 0: none yet)", default=0.0,
    )
    estimate_nu_median: FloatProperty(name="Median nu", description="Median Poisson's ratio of the last estimate", default=0.0)  # type: ignore[valid-type]
    estimate_contact_count: IntProperty(  # type: ignore[valid-type]
        name="Contact particles", description="Particles the last estimate holds in contact (point attribute 'contact'; "
        "-1: the estimate has no contact set)", default=-1,
    )
    estimate_E_min: FloatProperty(name="Min E (Pa)", description="Smallest Young's modulus of the last estimate (Pa)", default=0.0)  # type: ignore[valid-type]
    estimate_E_max: FloatProperty(name="Max E (Pa)", description="Largest Young's modulus of the last estimate (Pa)", default=0.0)  # type: ignore[valid-type]
    # The legend's colours (the E_color attribute's ramp at min, median, max E; linear RGB)
    legend_color_min: FloatVectorProperty(  # type: ignore[valid-type]
        name="Min E Colour", description="Colour of the softest particles", subtype="COLOR", size=3, min=0.0, max=1.0,
    )
    legend_color_median: FloatVectorProperty(  # type: ignore[valid-type]
        name="Median E Colour", description="Colour of the median Young's modulus", subtype="COLOR", size=3, min=0.0, max=1.0,
    )
    legend_color_max: FloatVectorProperty(  # type: ignore[valid-type]
        name="Max E Colour", description="Colour of the stiffest particles", subtype="COLOR", size=3, min=0.0, max=1.0,
    )
    use_estimated_material: BoolProperty(  # type: ignore[valid-type]
        name="Use Estimated Material",
        description="Bake with the estimated material field (<cache folder>/estimate) instead of the initial E, nu "
                    "(only when an estimate exists)",
        default=True,
    )
    estimate_dir: StringProperty(  # type: ignore[valid-type]
        name="Estimate Folder", description="The estimate cache the stored field came from", subtype="DIR_PATH",
    )
    # Status of the running job (written by the bake session, shown by the UI)
    is_running: BoolProperty(name="Running", default=False)  # type: ignore[valid-type]
    cancel_requested: BoolProperty(name="Cancel Requested", default=False)  # type: ignore[valid-type]
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    status: StringProperty(name="Status", default="")  # type: ignore[valid-type]
    backend_warning: StringProperty(  # type: ignore[valid-type]
        name="Backend Warning", default="",
        description="What the last run's backend warned about: too few grid cells across thin parts, fewer "
                    "particles than cells, or a simulation that tore (empty when all was well)",
    )
    max_tick_ms: FloatProperty(  # type: ignore[valid-type]
        name="Longest Tick (ms)", description="Longest time the last job's progress handler held the UI", default=0.0,
    )


CLASSES = (PhysInteractSceneSettings,)
