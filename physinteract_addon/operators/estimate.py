"""Estimate Material: ``physinteract estimate`` on the scene's job, out of process.

The same modal machinery as the bake (operators/bake.py, bake_session.py): a
timer follows the estimator's events (iteration, loss, ETA) without blocking,
Cancel or ESC stops it. The result goes to ``<cache folder>/estimate``; the
field is stored as point attributes "E" (Pa) and "nu" on the particle objects.
"""

from __future__ import annotations

import bpy

from .. import bake_session
from ..preferences import backend_python
from ..properties import scene_settings
from ..utils import scene_of
from .bake import _BackendRunOperator


class PHYSINTERACT_OT_estimate(_BackendRunOperator):
    """Estimate the material field (and the interaction) from the video with the backend"""

    bl_idname = "physinteract.estimate"
    bl_label = "Estimate Material"
    bl_description = ("Estimate the per-particle Young's modulus and Poisson's ratio from the video ('physinteract estimate', "
                      "out of process) and store them on the particle objects as point attributes E (Pa) and nu")
    bl_options = {"REGISTER", "UNDO"}
    command = "estimate"

    def _make_session(self, context: bpy.types.Context) -> bake_session.BackendSession:
        scene = scene_of(context)
        s = scene_settings(scene)
        return bake_session.EstimateSession(scene, backend_python(context), s.estimate_mode, s.estimate_iterations)


CLASSES = (PHYSINTERACT_OT_estimate,)
