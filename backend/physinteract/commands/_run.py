"""What the long-running commands (simulate, estimate) share: stop requests and input errors."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def stop_requests() -> Iterator[Callable[[], bool]]:
    """SIGTERM / SIGINT ask the run to stop at its next safe point instead of killing it.

    Yields ``should_stop()``; the previous handlers are restored on exit.
    """
    requested = [False]

    def request_stop(signum: int, _frame: object) -> None:
        requested[0] = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield lambda: requested[0]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def logged_input(cache: Path, load: Callable[[], T]) -> T:
    """``load()`` the run's input; a failure is also written as an "error" event to the cache folder's
    events.jsonl (the add-on follows that file, not stderr) before it propagates."""
    from physinteract.contract import EventLog
    from physinteract.contract.cache import EVENTS_FILE

    try:
        return load()
    except Exception as e:
        EventLog(Path(cache) / EVENTS_FILE).emit("error", message=str(e))
        raise
