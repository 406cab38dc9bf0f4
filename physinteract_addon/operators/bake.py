"""Bake, cancel and free: the backend runs out of process, a modal timer
follows it (FLIP Fluids style), a separate operator cancels it. The estimate
operator (operators/estimate.py) shares this machinery."""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty

from physinteract import contract

from .. import bake_session, scene_to_job
from ..preferences import backend_python
from ..properties import scene_settings
from ..utils import OperatorResult, scene_of, window_manager_of

TIMER_S = 0.1  # seconds between progress ticks

# Errors a user can fix; they become a report, never a traceback.
USER_ERRORS = (scene_to_job.SceneError, contract.ContractError, RuntimeError, OSError, ValueError)


class _BackendRunOperator(bpy.types.Operator):
    """Shared body of the bake and estimate operators (not registered itself)."""

    command = "simulate"
    _session: bake_session.BackendSession | None = None
    _timer: Any = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        scene = context.scene
        if scene is None:
            return False
        s = scene_settings(scene)
        return s.target is not None and not s.is_running

    def _make_session(self, context: bpy.types.Context) -> bake_session.BackendSession:
        return bake_session.BackendSession(scene_of(context), backend_python(context), self.command)

    def _start(self, context: bpy.types.Context) -> bool:
        try:
            self._session = self._make_session(context)
            self._session.start()
        except USER_ERRORS as e:
            self.report({"ERROR"}, str(e))
            self._session = None
            return False
        return True

    def _report_end(self, state: str) -> OperatorResult:
        assert self._session is not None
        msg = self._session.message
        for warning in self._session.warnings:
            self.report({"WARNING"}, warning)
        if state == bake_session.FINISHED:
            self.report({"INFO"}, msg)
            return {"FINISHED"}
        self.report({"WARNING"} if state == bake_session.CANCELLED else {"ERROR"}, msg)
        # A cancel that kept a result changed the scene (it plays the frames): keep it in the undo stack.
        return {"FINISHED"} if state == bake_session.CANCELLED and self._session.changed_scene else {"CANCELLED"}

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        """Blocking run: used headless (no window), by scripts and the CLI."""
        if not self._start(context):
            return {"CANCELLED"}
        assert self._session is not None
        return self._report_end(bake_session.run_blocking(self._session))

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> OperatorResult:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = window_manager_of(context)
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)  # type: ignore[arg-type]
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> OperatorResult:
        assert self._session is not None
        if event.type == "ESC":
            self._session.request_cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = self._session.tick()
        for area in context.screen.areas if context.screen else ():
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if state == bake_session.RUNNING:
            return {"PASS_THROUGH"}
        window_manager_of(context).event_timer_remove(self._timer)
        self._timer = None
        return self._report_end(state)

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the modal (file closed, quit): stop the backend."""
        if self._session is not None:
            self._session.kill()
        if self._timer is not None:
            window_manager_of(context).event_timer_remove(self._timer)
            self._timer = None


class PHYSINTERACT_OT_bake(_BackendRunOperator):
    """Simulate the keyed interaction with the backend into the cache folder, then play it"""

    bl_idname = "physinteract.bake"
    bl_label = "Bake"
    bl_description = "Simulate the keyed interaction with the backend into the cache folder, then play it on the mesh"
    bl_options = {"REGISTER", "UNDO"}
    command = "simulate"


class PHYSINTERACT_OT_cancel(bpy.types.Operator):
    """Stop the running bake or estimate; completed frames stay playable"""

    bl_idname = "physinteract.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the running bake or estimate; every completed frame stays playable"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and scene_settings(scene_of(context)).is_running

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        scene_settings(scene_of(context)).cancel_requested = True
        self.report({"INFO"}, "Cancelling")
        return {"FINISHED"}


class PHYSINTERACT_OT_reset_status(bpy.types.Operator):
    """Clear a stale 'running' flag (e.g. after Blender was closed during a bake)"""

    bl_idname = "physinteract.reset_status"
    bl_label = "Reset Status"
    bl_description = "Clear a stale 'running' flag left by a bake that no longer runs"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        s = scene_settings(scene_of(context))
        bake_session.clear_running_flags(s)
        s.status = ""
        s.backend_warning = ""
        return {"FINISHED"}


class PHYSINTERACT_OT_free_bake(bpy.types.Operator):
    """Delete the baked cache (only the files the cache format names) and its Mesh Cache modifiers"""

    bl_idname = "physinteract.free_bake"
    bl_label = "Free Bake"
    bl_description = "Delete the baked cache's own files (never anything else in the folder) and its Mesh Cache modifiers"
    bl_options = {"REGISTER", "UNDO"}

    confirm: BoolProperty(default=True, options={"SKIP_SAVE", "HIDDEN"})  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and not scene_settings(scene_of(context)).is_running

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> OperatorResult:
        if self.confirm:
            return window_manager_of(context).invoke_confirm(self, event)
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        try:
            removed = bake_session.free_bake(scene_of(context))
        except USER_ERRORS as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Freed the bake ({removed} files removed)")
        return {"FINISHED"}


@bpy.app.handlers.persistent
def clear_stale_running_flags(_filepath: str = "") -> None:
    """After a file loads no bake of it can be running (loading a file ends every modal
    operator, which stops its backend): clear flags saved while one was."""
    for scene in bpy.data.scenes:
        s = scene_settings(scene)
        if s.is_running or s.cancel_requested:
            bake_session.clear_running_flags(s)
            s.status = "The previous run was interrupted"


HANDLERS = ((bpy.app.handlers.load_post, clear_stale_running_flags),)

CLASSES = (PHYSINTERACT_OT_bake, PHYSINTERACT_OT_cancel, PHYSINTERACT_OT_reset_status,
           PHYSINTERACT_OT_free_bake)
