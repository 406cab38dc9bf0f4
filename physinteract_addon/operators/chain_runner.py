"""The one way an operator runs a backend_process.CommandChain: blocking in
``execute`` (background mode, scripts), modal with a window timer in ``invoke``."""

from __future__ import annotations

import time
from typing import Any

import bpy

from .. import backend_process
from ..utils import OperatorResult, window_manager_of


class ChainOperatorMixin:
    """Mix into a bpy.types.Operator. Subclasses implement ``_begin`` (start
    ``self._chain``; False = cancelled, already reported) and ``_end`` (the
    chain's exit code -> the operator's result), and may override ``_tick``."""

    poll_interval_s = 0.1
    _chain: backend_process.CommandChain | None = None
    _timer: Any = None

    def _begin(self, context: bpy.types.Context) -> bool:
        raise NotImplementedError

    def _end(self, context: bpy.types.Context, code: int) -> OperatorResult:
        raise NotImplementedError

    def _tick(self, context: bpy.types.Context) -> None:
        """Called on every timer tick while the chain runs (keep it cheap)."""

    def execute(self, context: bpy.types.Context) -> OperatorResult:
        if not self._begin(context):
            return {"CANCELLED"}
        assert self._chain is not None
        while (code := self._chain.poll()) is None:
            time.sleep(self.poll_interval_s)
        return self._end(context, code)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> OperatorResult:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        if not self._begin(context):
            return {"CANCELLED"}
        wm = window_manager_of(context)
        self._timer = wm.event_timer_add(self.poll_interval_s, window=context.window)
        wm.modal_handler_add(self)  # type: ignore[arg-type]
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> OperatorResult:
        assert self._chain is not None
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        code = self._chain.poll()
        if code is None:
            self._tick(context)
            return {"PASS_THROUGH"}
        window_manager_of(context).event_timer_remove(self._timer)
        self._timer = None
        return self._end(context, code)

    def cancel(self, context: bpy.types.Context) -> None:
        if self._chain is not None:
            self._chain.kill()
        if self._timer is not None:
            window_manager_of(context).event_timer_remove(self._timer)
            self._timer = None
