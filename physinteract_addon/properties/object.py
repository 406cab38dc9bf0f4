"""object.physinteract: per-object settings (the object being simulated).

Units: ``scale`` is metres per Blender unit; E in Pa; density in kg/m^3.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..gaussians import update_display_size
from ..utils import format_pascals

# name -> (E Pa, nu, density kg/m^3): typical initial guesses for the estimate.
MATERIAL_PRESETS: dict[str, tuple[float, float, float]] = {
    "RUBBER": (2.0e6, 0.45, 1100.0),
    "JELLY": (5.0e3, 0.45, 1000.0),
    "ROPE": (2.0e5, 0.30, 800.0),
    "FOAM": (5.0e4, 0.20, 50.0),
}


# The preset menu, its descriptions derived from the values they set.
PRESET_ITEMS = [("CUSTOM", "Custom", "Keep the values below")] + [
    (key, key.title(), f"E {format_pascals(e)}, nu {nu:g}, {rho:g} kg/m^3") for key, (e, nu, rho) in MATERIAL_PRESETS.items()
]

INTERACTION_ITEMS = [
    ("point_adherent", "Grasp (point adherent)", "Contact particles stick to the trajectory (pulling, dragging)"),
    ("point_non_adherent", "Poke (point non-adherent)", "A small collider follows the trajectory and pushes the object"),
    ("surface_non_adherent", "Press (surface non-adherent)", "A plane or large collider follows the trajectory (bouncing, pressing)"),
]


# A path property must say it takes '//' (relative to the .blend) since Blender 4.5; older ones reject the option.
_RELATIVE_PATH_OPTIONS = {"HIDDEN", "PATH_SUPPORTS_BLEND_RELATIVE"} if bpy.app.version >= (4, 5, 0) else {"HIDDEN"}


def _apply_preset(self: Any, context: bpy.types.Context) -> None:
    values = MATERIAL_PRESETS.get(self.material_preset)
    if values is not None:
        self.youngs_modulus, self.poisson_ratio, self.density = values


def _is_empty(self: Any, obj: bpy.types.Object) -> bool:
    return obj.type == "EMPTY"


class PhysInteractObjectSettings(bpy.types.PropertyGroup):
    """Settings of one simulated object (object.physinteract)."""

    # Object
    representation: EnumProperty(  # type: ignore[valid-type]
        name="Representation",
        description="What the object's static 3D form is",
        items=[
            ("MESH", "Mesh", "A closed (or nearly closed) triangle mesh"),
            ("GAUSSIANS", "Gaussians", "3D Gaussians: the mesh's vertices are the Gaussian centres"),
        ],
        default="MESH",
    )
    scale: FloatProperty(  # type: ignore[valid-type]
        name="Scale (m per unit)",
        description="Metres per Blender unit for this object: the simulation runs in SI units",
        default=1.0, min=1e-6, soft_min=1e-3, soft_max=1e3, precision=4,
    )
    # Gaussians (set by File > Import > 3D Gaussian Splatting)
    gaussian_file: StringProperty(  # type: ignore[valid-type]
        name="Gaussian File", description="The 3DGS PLY these Gaussians were imported from", subtype="FILE_PATH",
    )
    gaussian_layout: StringProperty(  # type: ignore[valid-type]
        name="Gaussian Layout", description="The PLY properties and their types, as imported (JSON)", options={"HIDDEN"},
    )
    gaussian_cache: StringProperty(  # type: ignore[valid-type]
        name="Gaussian Cache", description="The cache whose per-frame rotations and scales these Gaussians play",
        subtype="DIR_PATH", options=_RELATIVE_PATH_OPTIONS,
    )
    gaussian_point_set: StringProperty(  # type: ignore[valid-type]
        name="Gaussian Point Set", description="This object's point set in the Gaussian cache", options={"HIDDEN"},
    )
    gaussian_display_size: FloatProperty(  # type: ignore[valid-type]
        name="Display Size",
        description="Viewport point radius in standard deviations of each Gaussian (geometric mean of its three axes)",
        default=1.0, min=0.0, soft_max=5.0, update=update_display_size,
    )
    # Filling
    fill_mode: EnumProperty(  # type: ignore[valid-type]
        name="Fill",
        description="How simulation particles are made from the object",
        items=[
            ("VERTICES", "Vertices", "Use the mesh's vertices as the particles (no filling; dense, even meshes only)"),
            ("VOLUME", "Volume", "Fill the closed mesh's interior with the backend ('physinteract fill', out of process); "
             "the mesh then follows the particles as a passive point set"),
        ],
        default="VERTICES",
    )
    fill_resolution: IntProperty(  # type: ignore[valid-type]
        name="Resolution", description="Filling grid cells along the object's longest side", default=24, min=4, soft_max=256,
    )
    particle_count: IntProperty(  # type: ignore[valid-type]
        name="Particles", description="Aim for about this many particles (0: from the resolution)", default=0, min=0,
        soft_max=1_000_000,
    )
    fill_file: StringProperty(name="Fill File", description="Particle PLY of the last fill", subtype="FILE_PATH")  # type: ignore[valid-type]
    fill_signature: StringProperty(name="Fill Signature", description="The object's state when it was filled")  # type: ignore[valid-type]
    fill_count: IntProperty(name="Filled Particles", default=0)  # type: ignore[valid-type]
    show_preview: BoolProperty(  # type: ignore[valid-type]
        name="Preview", description="Show the filled particles as a point object", default=False,
    )
    # Material
    material_preset: EnumProperty(  # type: ignore[valid-type]
        name="Preset",
        description="Initial material guess",
        items=PRESET_ITEMS,
        default="CUSTOM",
        update=_apply_preset,
    )
    youngs_modulus: FloatProperty(  # type: ignore[valid-type]
        name="Young's Modulus (Pa)", description="Initial Young's modulus E in pascals",
        default=1.0e5, min=1.0, soft_max=1.0e9, precision=1,
    )
    poisson_ratio: FloatProperty(  # type: ignore[valid-type]
        name="Poisson's Ratio", description="Initial Poisson's ratio nu, in [0, 0.5)", default=0.3, min=0.0, max=0.49,
    )
    density: FloatProperty(  # type: ignore[valid-type]
        name="Density (kg/m³)", description="Mass density in kg per cubic metre", default=1000.0, min=1e-3, soft_max=2.0e4,
    )
    # Interaction
    interaction_type: EnumProperty(  # type: ignore[valid-type]
        name="Interaction", description="How the object is driven", items=INTERACTION_ITEMS, default="point_adherent",
    )
    contact_source: EnumProperty(  # type: ignore[valid-type]
        name="Contact",
        description="Which particles the interaction drives",
        items=[
            ("VERTEX_GROUP", "Vertex Group", "Vertices of a vertex group (weight > 0)"),
            ("SELECTION", "Selection", "The mesh's selected vertices"),
            ("NEAREST", "Nearest to Trajectory", "Vertices within the contact radius of the trajectory's first point"),
            ("VIDEO", "From Video", "The contact particles found in the video by 'Initialise from Video'"),
        ],
        default="NEAREST",
    )
    contact_group: StringProperty(  # type: ignore[valid-type]
        name="Vertex Group", description="Vertex group holding the contact region",
    )
    contact_particles: StringProperty(  # type: ignore[valid-type]
        name="Contact Particles", description="Particle indices of the contact found in the video (space separated)",
        options={"HIDDEN"},
    )
    contact_weights: StringProperty(  # type: ignore[valid-type]
        name="Contact Weights", options={"HIDDEN"},
        description="Share of each video contact particle the grasp holds, in (0, 1] (space separated, in the order of "
                    "the contact particles; empty: each whole)",
    )
    contact_particles_for: StringProperty(  # type: ignore[valid-type]
        name="Contact Particles' Fill", description="The fill the contact particles index (fill signature and count)",
        options={"HIDDEN"},
    )
    contact_radius: FloatProperty(  # type: ignore[valid-type]
        name="Contact Radius", description="Collider radius, and contact radius of 'Nearest' (Blender units)",
        default=0.05, min=0.0, subtype="DISTANCE",
    )
    trajectory: PointerProperty(  # type: ignore[valid-type]
        name="Trajectory", description="An Empty whose animated world position is the interaction's trajectory",
        type=bpy.types.Object, poll=_is_empty,
    )


CLASSES = (PhysInteractObjectSettings,)
