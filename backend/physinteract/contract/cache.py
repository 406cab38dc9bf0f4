"""The cache folder: what the backend hands back to Blender.

Layout (see CONTRACT.md)::

    cache.json                 manifest, rewritten atomically as the bake goes
    events.jsonl               one JSON object a line: progress, frames, errors
    frames/frame_000012.npz    the arrays of frame 12 (world metres)
    frames/frame_000012.done   completion marker, written after the .npz
    <point set>.pc2            Mesh Cache file of each fixed-count point set
    material_E.npy, material_nu.npy   estimated material field (Pa, -)
    log.txt                    the backend's own log

A frame counts only when its marker exists and agrees with its data file, so a
cancelled or crashed bake leaves every completed frame valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physinteract.contract.atomic import atomic_save_npy, atomic_save_npz, atomic_write_json
from physinteract.contract.errors import ContractError
from physinteract.contract.job import load_npy
from physinteract.contract.pc2 import write_pc2

CACHE_SCHEMA = "physinteract.cache"
CACHE_VERSION = 1
CACHE_MANIFEST = "cache.json"
EVENTS_FILE = "events.jsonl"
# Events whose "warnings" (a list of sentences) the user should see: how the grid resolves the object
# (before "start") and whether the simulation tore (after the last frame). CONTRACT.md, "Events".
WARNING_EVENTS = ("resolution", "tearing")
LOG_FILE = "log.txt"
FRAMES_DIR = "frames"
FRAME_DIGITS = 6
STATUSES = ("running", "complete", "cancelled", "failed")

_FRAME_RE = re.compile(r"^frame_(-?\d{" + str(FRAME_DIGITS) + r",})\.(npz|done)$")


def frame_stem(frame: int) -> str:
    """``frame_000012`` for frame 12 (negative frames keep their sign)."""
    return f"frame_{frame:0{FRAME_DIGITS}d}" if frame >= 0 else f"frame_-{-frame:0{FRAME_DIGITS}d}"


@dataclass
class PointSetInfo:
    """One baked point set: ``count`` points, world positions each frame,
    played in Blender through ``pc2`` (object-local, see ``world_to_object``)."""

    name: str
    count: int
    world_to_object: np.ndarray = field(default_factory=lambda: np.eye(4))
    has_rotations: bool = False
    has_scales: bool = False

    @property
    def pc2(self) -> str:
        return f"{self.name}.pc2"


@dataclass
class CacheManifest:
    kind: str
    fps: float
    frame_start: int
    frame_end: int
    point_sets: list[PointSetInfo]
    status: str = "running"
    job: str = ""
    message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": CACHE_SCHEMA,
            "version": CACHE_VERSION,
            "kind": self.kind,
            "fps": self.fps,
            "frame_start": self.frame_start,
            "frame_end": self.frame_end,
            "status": self.status,
            "message": self.message,
            "job": self.job,
            "point_sets": [
                {
                    "name": p.name,
                    "count": p.count,
                    "pc2": p.pc2,
                    "world_to_object": np.asarray(p.world_to_object, float).tolist(),
                    "rotations": p.has_rotations,
                    "scales": p.has_scales,
                }
                for p in self.point_sets
            ],
            "metadata": self.metadata,
        }


# --------------------------------------------------------------------------- events


class EventLog:
    """Append-only JSON-lines event log. Each event is one line written with a
    single ``write`` and flushed, so a follower never sees half an event except
    at the very end of the file, which ``follow_events`` leaves for later."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        rec = {"event": event, "time": time.time(), **fields}
        line = json.dumps(rec, sort_keys=True, default=_json_default) + "\n"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        return rec


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def follow_events(path: str | Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Read the complete events after byte ``offset``. Returns (events, new offset).

    A trailing line without its newline is not consumed (it is still being
    written); a malformed complete line is returned as {"event": "malformed"}.
    """
    path = Path(path)
    if not path.is_file():
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    events = []
    for line in data[: end + 1].splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
            events.append(ev if isinstance(ev, dict) else {"event": "malformed", "line": line.decode("utf-8", "replace")})
        except json.JSONDecodeError:
            events.append({"event": "malformed", "line": line.decode("utf-8", "replace")})
    return events, offset + end + 1


# --------------------------------------------------------------------------- writer


class CacheWriter:
    """Writes a cache folder frame by frame (the backend's side).

    Usage::

        w = CacheWriter(folder, kind="simulate", fps=24, frame_start=1, frame_end=48,
                        point_sets=[PointSetInfo("particles", n)])
        for frame in ...:
            w.write_frame(frame, {"particles": {"positions": x}})
        w.finish()          # writes the PC2 files, status "complete"
    """

    def __init__(
        self,
        folder: str | Path,
        kind: str,
        fps: float,
        frame_start: int,
        frame_end: int,
        point_sets: list[PointSetInfo],
        job: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        (self.folder / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
        self.manifest = CacheManifest(
            kind, float(fps), int(frame_start), int(frame_end), list(point_sets), job=job, metadata=metadata or {}
        )
        self.events = EventLog(self.folder / EVENTS_FILE)
        self._sets = {p.name: p for p in point_sets}
        self._write_manifest()

    def _write_manifest(self) -> None:
        atomic_write_json(self.folder / CACHE_MANIFEST, self.manifest.to_json())

    def write_frame(self, frame: int, data: dict[str, dict[str, np.ndarray]], extra: dict[str, np.ndarray] | None = None) -> None:
        """Write one frame: ``data[set]["positions"]`` [count, 3] world metres, and
        optionally ``"rotations"`` [count, 4] (w, x, y, z) and ``"scales"`` [count, 3].
        The data file is written first, then the marker, both atomically."""
        arrays: dict[str, np.ndarray] = {}
        for name, info in self._sets.items():
            if name not in data:
                raise ValueError(f"frame {frame}: point set '{name}' missing")
            pos = np.asarray(data[name]["positions"], np.float32)
            if pos.shape != (info.count, 3):
                raise ValueError(f"frame {frame}: '{name}.positions' has shape {pos.shape}, expected ({info.count}, 3)")
            if not np.all(np.isfinite(pos)):
                raise ValueError(f"frame {frame}: '{name}.positions' contains NaN or Inf")
            arrays[f"{name}.positions"] = pos
            for key in ("rotations", "scales"):
                if key in data[name]:
                    arrays[f"{name}.{key}"] = np.asarray(data[name][key], np.float32)
        for k, v in (extra or {}).items():
            arrays[f"extra.{k}"] = np.asarray(v)
        stem = frame_stem(frame)
        npz = self.folder / FRAMES_DIR / f"{stem}.npz"
        written = atomic_save_npz(npz, arrays)
        marker = {"frame": frame, "bytes": len(written), "sha256": hashlib.sha256(written).hexdigest()}
        atomic_write_json(npz.with_suffix(".done"), marker)

    def write_material(self, E: np.ndarray, nu: np.ndarray) -> None:
        """The estimated material field: E [N] in Pa, nu [N]."""
        atomic_save_npy(self.folder / "material_E.npy", np.asarray(E, np.float64))
        atomic_save_npy(self.folder / "material_nu.npy", np.asarray(nu, np.float64))

    def finish(self, status: str = "complete", message: str = "") -> None:
        """Write the PC2 files from the completed frames and the final status."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        assemble_pc2(self.folder)
        self.manifest.status = status
        self.manifest.message = message
        self._write_manifest()


# --------------------------------------------------------------------------- reader


def read_cache_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CACHE_MANIFEST
    if not path.is_file():
        raise ContractError(path, "", "a cache manifest", "no such file")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ContractError(path, "", "valid JSON", f"a parse error ({e})") from None
    if not isinstance(m, dict):
        raise ContractError(path, "", "a JSON object", type(m).__name__)
    if m.get("schema") != CACHE_SCHEMA:
        raise ContractError(path, "schema", repr(CACHE_SCHEMA), repr(m.get("schema")))
    if m.get("version") != CACHE_VERSION:
        raise ContractError(path, "version", f"schema version {CACHE_VERSION}", repr(m.get("version")))
    for key in ("frame_start", "frame_end", "point_sets", "fps"):
        if key not in m:
            raise ContractError(path, key, "a value", "nothing (missing)")
    return m


def read_material(folder: str | Path, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The material field of an estimate cache: (E [N] Pa, nu [N]); ``count`` checks N."""
    out = []
    for name in ("material_E.npy", "material_nu.npy"):
        path = Path(folder) / name
        if not path.is_file():
            raise ContractError(path, name[:-4], "an .npy file (written by `physinteract estimate`)", "no such file")
        a = load_npy(path, name[:-4])
        if a.ndim != 1 or (count is not None and len(a) != count) or not np.all(np.isfinite(a)):
            raise ContractError(path, name[:-4], f"finite values of shape [{count if count is not None else 'N'}]",
                                f"shape {list(a.shape)}" + ("" if np.all(np.isfinite(a)) else " with NaN or Inf"))
        out.append(a.astype(np.float64))
    E, nu = out
    if np.any(E <= 0) or np.any((nu < 0) | (nu >= 0.5)):
        raise ContractError(Path(folder) / "material_E.npy", "material", "E > 0 Pa and nu in [0, 0.5)",
                            f"E min {E.min()}, nu range [{nu.min()}, {nu.max()}]")
    return E, nu


def read_contact(folder: str | Path, count: int) -> np.ndarray | None:
    """The contact set of an estimate cache (estimate_contact.npy): sorted unique particle indices
    [K] into the job's ``count`` particles, or None when the cache has none (an older estimate)."""
    raw = _contact_as_written(folder, count)
    return None if raw is None else np.unique(raw)


def _contact_as_written(folder: str | Path, count: int) -> np.ndarray | None:
    """estimate_contact.npy's indices [K] (int64) in the order written, checked; None when absent."""
    path = Path(folder) / CONTACT_FILE
    if not path.is_file():
        return None
    a = load_npy(path, "contact")
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer) or (len(a) and (a.min() < 0 or a.max() >= count)):
        raise ContractError(path, "contact", f"integer particle indices in [0, {count})",
                            f"shape {list(a.shape)}, dtype {a.dtype}" + (f", range [{a.min()}, {a.max()}]" if a.size else ""))
    return a.astype(np.int64)


def read_contact_weights(folder: str | Path, count: int) -> np.ndarray | None:
    """The share of each particle of an estimate cache's contact set that the estimate held
    (estimate_contact_weights.npy): [K] in (0, 1], in the order of :func:`read_contact`'s indices,
    or None when the cache has none (an older estimate, or no contact set)."""
    path = Path(folder) / CONTACT_WEIGHTS_FILE
    if not path.is_file():
        return None
    raw = _contact_as_written(folder, count)
    if raw is None:
        raise ContractError(path, "contact_weights", f"beside {CONTACT_FILE}", f"no {CONTACT_FILE}")
    w = load_npy(path, "contact_weights")
    if w.shape != raw.shape or not np.issubdtype(w.dtype, np.floating) or (w.size and not np.all((w > 0.0) & (w <= 1.0))):
        raise ContractError(path, "contact_weights", f"{list(raw.shape)} floats in (0, 1], one per contact particle",
                            f"shape {list(w.shape)}, dtype {w.dtype}" + (f", range [{w.min()}, {w.max()}]" if w.size else ""))
    _, first = np.unique(raw, return_index=True)
    return w.astype(np.float64)[first]


def _frame_complete(done: Path, verify: bool) -> bool:
    """Whether the marker ``done`` exists and agrees with its .npz (size; SHA-256 with ``verify``)."""
    npz = done.with_suffix(".npz")
    try:
        marker = json.loads(done.read_text(encoding="utf-8"))
        if not npz.is_file() or npz.stat().st_size != marker["bytes"]:
            return False
        return not verify or hashlib.sha256(npz.read_bytes()).hexdigest() == marker["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def completed_frames(folder: str | Path, verify: bool = False) -> list[int]:
    """Frames whose marker exists and whose data file has the marker's size
    (and, with ``verify``, its SHA-256). Sorted."""
    fdir = Path(folder) / FRAMES_DIR
    if not fdir.is_dir():
        return []
    frames = []
    for p in fdir.glob("frame_*.done"):
        m = _FRAME_RE.match(p.name)
        if m and _frame_complete(p, verify):
            frames.append(int(m.group(1)))
    return sorted(frames)


def read_frame(folder: str | Path, frame: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a completed frame, keyed ``"<set>.positions"`` etc.; only ``keys`` when given
    (the others are not read: a playback handler needs two of a frame's arrays)."""
    npz = Path(folder) / FRAMES_DIR / f"{frame_stem(frame)}.npz"
    if not _frame_complete(npz.with_suffix(".done"), verify=False):
        raise ContractError(npz, "", f"a completed frame {frame}", "no completion marker or a truncated file")
    with np.load(npz, allow_pickle=False) as z:
        missing = [k for k in keys or () if k not in z.files]
        if missing:
            raise ContractError(npz, missing[0], "an array of this frame", f"absent (the frame holds {sorted(z.files)})")
        return {k: z[k] for k in (z.files if keys is None else keys)}


def iter_frames(folder: str | Path) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    for f in completed_frames(folder):
        yield f, read_frame(folder, f)


def assemble_pc2(folder: str | Path) -> list[Path]:
    """(Re)write ``<set>.pc2`` for every point set from the completed frames.

    The PC2 starts at the first completed frame and covers the contiguous run
    of completed frames from there (a Mesh Cache needs one sample a frame).
    Positions are converted to the set's object space with ``world_to_object``.
    Callable by the add-on after a cancel: numpy only. Returns the files written.
    """
    folder = Path(folder)
    m = read_cache_manifest(folder)
    frames = completed_frames(folder)
    if not frames:
        return []
    run = [frames[0]]
    for f in frames[1:]:
        if f != run[-1] + 1:
            break
        run.append(f)
    sets = m["point_sets"]
    samples = {ps["name"]: np.empty((len(run), int(ps["count"]), 3), np.float32) for ps in sets}
    for i, f in enumerate(run):
        arrays = read_frame(folder, f)  # each frame is read once, for every set
        for ps in sets:
            w2o = np.asarray(ps.get("world_to_object", np.eye(4).tolist()), np.float64)
            pos = arrays[f"{ps['name']}.positions"].astype(np.float64)
            samples[ps["name"]][i] = pos @ w2o[:3, :3].T + w2o[:3, 3]
    written = []
    for name, pts in samples.items():
        path = folder / f"{name}.pc2"
        write_pc2(path, pts, start_frame=run[0], sample_rate=1.0)
        written.append(path)
    return written


CONTACT_FILE = "estimate_contact.npy"
CONTACT_WEIGHTS_FILE = "estimate_contact_weights.npy"  # [K] float64 in (0, 1], in CONTACT_FILE's order
ESTIMATE_SUMMARY_FILE = "estimate.json"  # an estimate cache's summary: mode, iterations, psnr, ssim, seconds, history
_KNOWN_CACHE_FILES = re.compile(
    r"^(cache\.json|events\.jsonl|log\.txt|material_(E|nu)\.npy|[A-Za-z0-9_\-]+\.pc2|report\.(json|md)|checkpoint\.npz"
    r"|estimate\.json|estimate_(trajectory|trajectory_times|contact|contact_weights)\.npy|estimate_checkpoint\.pt|\..*\.tmp)$"
)


def clear_cache(folder: str | Path) -> int:
    """Delete a cache's known files only (guarded delete). Never removes a file
    the contract does not name, nor the folder if anything else is inside.
    Returns the number of files removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    if not (folder / CACHE_MANIFEST).is_file():
        raise ContractError(folder / CACHE_MANIFEST, "", "a cache folder (with cache.json) to clear", "no cache manifest")
    removed = 0
    fdir = folder / FRAMES_DIR
    if fdir.is_dir():
        for p in fdir.iterdir():
            if p.is_file() and (_FRAME_RE.match(p.name) or (p.name.startswith(".frame_") and p.name.endswith(".tmp"))):
                p.unlink()
                removed += 1
        try:
            fdir.rmdir()
        except OSError:
            pass
    for p in folder.iterdir():
        if p.is_file() and _KNOWN_CACHE_FILES.match(p.name):
            p.unlink()
            removed += 1
    return removed
