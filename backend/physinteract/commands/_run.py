"""What the long-running commands (simulate, estimate) share: stop requests and input errors."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from physinteract import contract

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


def print_warnings(command: str, ev: dict[str, Any]) -> None:
    """Print the warnings of a "resolution" or "tearing" event (mpm.resolution) on stderr, one line each."""
    for warning in ev.get("warnings", []) if ev.get("event") in contract.WARNING_EVENTS else []:
        print(f"physinteract {command}: warning: {warning}", file=sys.stderr, flush=True)


def describe_search(ev: dict[str, Any]) -> str | None:
    """One line for an estimator event of its forward searches (grasp_fit, scan, rescan, lag_scan, contact_scan,
    region_scan, split_scan) or their summaries (scan_done, rescan_done, region_scan_done); None for
    any other event. The CLI's and the example's progress printers share it."""
    kind = ev.get("event")
    if kind in ("scan", "rescan"):
        return f"{kind} {ev['step']}: x10^{ev['log10_factor']:+.3f} loss {ev['loss']:.4f}"
    if kind == "grasp_fit":
        return (f"grasp_fit: trajectory matched to {ev['gaussians']} Gaussians of the held part, keyframes moved "
                f"{1e3 * ev['moved_m']:.1f} mm, template loss {ev['loss_before']:.4f} -> {ev['loss']:.4f}")
    if kind == "lag_scan":
        return f"lag_scan {ev['step']}: T0 shifted {ev['lag_frames']:+.2f} frames, loss {ev['loss']:.4f}"
    if kind == "contact_scan":
        return (f"contact_scan {ev['step']}: contact set {ev['spacings']:+d} spacings ({ev['particles']} particles), "
                f"loss {ev['loss']:.4f}")
    if kind == "region_scan":
        return f"region_scan {ev['step']}: a contrast between {ev['controls']} of {ev['of']} control points and the rest"
    if kind == "split_scan":
        a, b = ev["log10_factors"]
        return f"split_scan: parts x10^({a:+.3f}, {b:+.3f}) loss {ev['loss']:.4f}"
    if kind in ("scan_done", "rescan_done", "region_scan_done"):
        text = f"{kind}: E median {ev['E_median']:.4g} Pa"
        if ev.get("lag_frames"):
            text += f", T0 shifted {ev['lag_frames']:+.2f} frames"
        if ev.get("contact_spacings"):
            text += f", contact set {ev['contact_spacings']:+d} spacings ({ev['contact_particles']} particles)"
        for a, b in ev.get("region_factors") or []:
            text += f", parts x10^({a:+.3f}, {b:+.3f})"
        return text
    return None

