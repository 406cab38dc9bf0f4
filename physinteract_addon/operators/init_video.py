"""Initialise from Video: ``physinteract init`` on the scene's job, out of process (init_session.py).

The same modal machinery as the bake (operators/bake.py): a timer follows the
backend's stage and progress events without blocking, Cancel or ESC stops it.
"""

from __future__ import annotations

import bpy

from .. import bake_session, init_session
from ..preferences import backend_python
from ..utils import scene_of
from .bake import _BackendRunOperator


class PHYSINTERACT_OT_init_from_video(_BackendRunOperator):
    """Find the interaction in the video: its type, the contact particles and an initial trajectory"""

    bl_idname = "physinteract.init_from_video"
    bl_label = "Initialise from Video"
    bl_description = ("Run 'physinteract init' out of process: recognise the interaction type, find the contact particles and "
                      "track an initial trajectory in the video; the trajectory becomes the keys of an Empty (Graph Editor)")
    bl_options = {"REGISTER", "UNDO"}
    command = "init"

    def _make_session(self, context: bpy.types.Context) -> bake_session.BackendSession:
        return init_session.InitSession(scene_of(context), backend_python(context))


CLASSES = (PHYSINTERACT_OT_init_from_video,)
