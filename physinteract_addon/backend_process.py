"""Start the backend as a subprocess and follow it without blocking (bpy-free).

The backend is run with an argument list, never a shell string::

    [python, "-m", "physinteract", "simulate", job_dir, "--cache", cache_dir]

Its progress arrives as JSON-lines events in ``<cache>/events.jsonl``, read
incrementally with ``contract.follow_events``; its stdout and stderr go to a
log file (not a pipe, so a chatty backend can never fill a pipe and stall).
Every method returns at once: callers poll from a timer or a loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from physinteract import contract

# How long cancel() waits for the backend to exit after SIGTERM before SIGKILL (s).
TERMINATE_GRACE_S = 3.0


def backend_command(python: str, command: str, job_dir: str | Path, cache_dir: str | Path) -> list[str]:
    """The argument list that runs ``physinteract <command> JOB --cache CACHE``."""
    return [str(python), "-m", "physinteract", command, str(job_dir), "--cache", str(cache_dir)]


def _popen(argv: Sequence[str], log: IO[bytes], cwd: str | None = None) -> subprocess.Popen[bytes]:
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env, **kwargs)


def tail(path: Path, max_bytes: int = 4000) -> str:
    """The last ``max_bytes`` of a text file ('' when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def last_log_line(path: Path) -> str:
    """The last non-empty line of a log ('no output' when there is none)."""
    lines = [ln for ln in tail(path).splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


class _LoggedProcess:
    """A child process whose stdout and stderr go to a log file this object owns."""

    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def kill(self) -> None:
        """Stop at once (used when Blender quits or the add-on is disabled)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@dataclass
class Progress:
    """What the backend reported so far."""

    frames_done: int = 0
    frames_total: int = 0
    message: str = ""
    error: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.frames_done / self.frames_total) if self.frames_total > 0 else 0.0


class BackendProcess(_LoggedProcess):
    """One backend run writing a contract cache folder.

    ``poll()`` reads new events and returns the exit code (None while running);
    ``cancel()`` terminates the process; ``finish_cancel()`` (after it exited)
    rewrites the PC2 files from the completed frames so they stay playable.
    """

    def __init__(self, argv: Sequence[str], cache_dir: str | Path, log_path: str | Path, frames_total: int = 0,
                 grace_s: float = TERMINATE_GRACE_S, events_path: str | Path | None = None) -> None:
        self.argv = list(argv)
        self.grace_s = float(grace_s)  # SIGTERM -> SIGKILL wait; an estimator finishes its iteration first
        self.cache_dir = Path(cache_dir)
        # the JSON-lines events (default <cache>/events.jsonl; 'init' writes <job>/init_events.jsonl)
        self.events_path = Path(events_path) if events_path is not None else self.cache_dir / contract.EVENTS_FILE
        self.log_path = Path(log_path)
        self.progress = Progress(frames_total=frames_total)
        self.latest: dict[str, dict[str, Any]] = {}  # the last event of each kind, the most recent kind last
        self._offset = 0
        self._term_time: float | None = None
        self.cancelled = False

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        try:
            self._proc = _popen(self.argv, self._log)
        except OSError as e:
            self._close()
            raise RuntimeError(f"could not start the backend ({self.argv[0]}): {e}") from None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def read_events(self) -> list[dict[str, Any]]:
        """New events since the last call, folded into ``self.progress``."""
        events, self._offset = contract.follow_events(self.events_path, self._offset)
        p = self.progress
        for ev in events:
            kind = ev.get("event")
            self.latest.pop(str(kind), None)  # re-inserted: the dict's order is the kinds' recency
            self.latest[str(kind)] = ev
            if kind == "frame":
                p.frames_done += 1
            if "frames_done" in ev and isinstance(ev["frames_done"], int):
                p.frames_done = ev["frames_done"]
            if "frames_total" in ev and isinstance(ev["frames_total"], int):
                p.frames_total = ev["frames_total"]
            if kind in ("error", "failed"):
                p.error = str(ev.get("message") or ev)
            elif isinstance(ev.get("message"), str):
                p.message = ev["message"]
        return events

    def poll(self) -> int | None:
        """Read new events; the exit code once the process has ended, else None."""
        self.read_events()
        if self._proc is None:
            return None
        code = self._proc.poll()
        if code is None and self._term_time is not None:
            if time.monotonic() - self._term_time > self.grace_s:
                self._proc.kill()
        if code is not None:
            self.read_events()
            self._close()
        return code

    def cancel(self) -> None:
        """Ask the backend to stop (SIGTERM; SIGKILL after ``grace_s`` in poll())."""
        self.cancelled = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._term_time = time.monotonic()

    def finish_cancel(self) -> list[int]:
        """After a cancelled run ended: if the backend could not finish the cache
        itself (status still "running"), write the PC2 files from the completed
        frames (contract.assemble_pc2) and mark it "cancelled". Returns the completed frames."""
        frames = contract.completed_frames(self.cache_dir)
        if frames and (self.cache_dir / contract.CACHE_MANIFEST).is_file():
            m = contract.read_cache_manifest(self.cache_dir)
            if m.get("status") == "running":  # killed before it could finish the cache itself
                contract.assemble_pc2(self.cache_dir)
                m["status"] = "cancelled"
                m["message"] = f"cancelled from Blender after {len(frames)} completed frames"
                contract.atomic_write_json(self.cache_dir / contract.CACHE_MANIFEST, m)
        return frames

    def failure_message(self, code: int) -> str:
        """The backend's own words for a failed run: its error event, the cache
        manifest's message or the end of its log."""
        if self.progress.error:
            return self.progress.error
        try:
            m = contract.read_cache_manifest(self.cache_dir)
            if m.get("message"):
                return str(m["message"])
        except contract.ContractError:
            pass
        return f"backend exited with code {code}: {last_log_line(self.log_path)}"


class CommandChain(_LoggedProcess):
    """Run argument lists one after the other without blocking (e.g. venv + pip).

    ``poll()`` returns None while running, 0 when all succeeded, or the first
    failing exit code. ``step`` is the index of the running command.
    """

    def __init__(self, commands: Sequence[Sequence[str]], log_path: str | Path) -> None:
        self.commands = [list(c) for c in commands]
        self.log_path = Path(log_path)
        self.step = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self._start_step()

    def _start_step(self) -> None:
        assert self._log is not None
        self._log.write(("$ " + " ".join(self.commands[self.step]) + "\n").encode())
        self._log.flush()
        self._proc = _popen(self.commands[self.step], self._log)

    def poll(self) -> int | None:
        if self._proc is None:
            return None
        code = self._proc.poll()
        if code is None:
            return None
        if code != 0 or self.step + 1 >= len(self.commands):
            self._close()
            return code
        self.step += 1
        self._start_step()
        return None
