"""Particle PLY files: ``x y z`` (float32, m, world), ``volume`` (float32, m^3), ``label`` (uchar,
0 surface / 1 interior) and, when known, ``source`` (int, nearest source element or -1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physinteract.contract import INTERIOR, SURFACE, ContractError
from physinteract.geometry.fill import Particles
from physinteract.geometry.plyfile import read_ply, write_ply


def write_particles_ply(path: str | Path, particles: Particles, binary: bool = True) -> None:
    """Write particles atomically (binary little endian unless ``binary`` is False)."""
    p = np.asarray(particles.positions, np.float32)
    props: dict[str, np.ndarray] = {"x": p[:, 0], "y": p[:, 1], "z": p[:, 2], "volume": np.asarray(particles.volume, np.float32),
             "label": np.asarray(particles.labels, np.uint8)}
    if len(particles.source_index) == len(p):
        props["source"] = np.asarray(particles.source_index, np.int32)
    write_ply(path, {"vertex": props}, binary=binary, comments=(f"physinteract particles cell_size {particles.cell_size!r} m",))


def read_particles_ply(path: str | Path) -> Particles:
    """Read a particle PLY written by :func:`write_particles_ply` (or any PLY with x y z volume label)."""
    header, data = read_ply(path)
    v = data.get("vertex")
    if v is None:
        raise ContractError(path, "vertex", "a 'vertex' element of particles", "none")
    for name in ("x", "y", "z", "volume", "label"):
        if name not in v:
            raise ContractError(path, f"vertex.{name}", "a particle property", "missing")
    labels = np.asarray(v["label"], np.uint8)
    if np.any((labels != SURFACE) & (labels != INTERIOR)):
        raise ContractError(path, "vertex.label", "0 (surface) or 1 (interior)", "other values")
    h = float("nan")
    for c in header.comments:
        if c.startswith("physinteract particles cell_size"):
            h = float(c.split()[3])
    n = len(labels)
    source = np.asarray(v["source"], np.int64) if "source" in v else np.full(n, -1, np.int64)
    return Particles(positions=np.stack([np.asarray(v[c], np.float64) for c in "xyz"], 1),
                     volume=np.asarray(v["volume"], np.float64), labels=labels, cell_size=h, source_index=source)
