"""PC2 point caches, the format Blender's Mesh Cache modifier plays.

Layout (little endian): a 32-byte header

    char[12] signature  b"POINTCACHE2\\0"
    int32    version    1
    int32    num_points
    float32  start_frame
    float32  sample_rate   (frames between samples; 1.0 = one sample a frame)
    int32    num_samples

followed by ``num_samples * num_points * 3`` float32 coordinates, sample-major.
Coordinates are in the object's local space (what the modifier adds to nothing:
it replaces the mesh's vertex positions).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from physinteract.contract.atomic import atomic_write_bytes
from physinteract.contract.errors import ContractError

PC2_SIGNATURE = b"POINTCACHE2\0"
_HEADER = struct.Struct("<12siiffi")


def pc2_bytes(points: np.ndarray, start_frame: float, sample_rate: float = 1.0) -> bytes:
    """Encode ``points`` [S, P, 3] (S samples of P points, local metres) as PC2."""
    points = np.asarray(points, dtype="<f4")
    if points.ndim != 3 or points.shape[2] != 3:
        raise ValueError(f"PC2 points must be [samples, points, 3], got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("PC2 points contain NaN or Inf")
    header = _HEADER.pack(
        PC2_SIGNATURE, 1, points.shape[1], float(start_frame), float(sample_rate), points.shape[0]
    )
    return header + np.ascontiguousarray(points).tobytes()


def write_pc2(path: str | Path, points: np.ndarray, start_frame: float, sample_rate: float = 1.0) -> None:
    """Write a PC2 file atomically. ``points``: [samples, points, 3] float, object-local metres."""
    atomic_write_bytes(path, pc2_bytes(points, start_frame, sample_rate))


def read_pc2(path: str | Path) -> tuple[np.ndarray, float, float]:
    """Read a PC2 file. Returns (points [S, P, 3] float32, start_frame, sample_rate)."""
    path = Path(path)
    if not path.is_file():
        raise ContractError(path, "", "a PC2 file", "no such file")
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        raise ContractError(path, "header", f"{_HEADER.size} header bytes", f"{len(data)} bytes")
    sig, version, n_points, start, rate, n_samples = _HEADER.unpack_from(data)
    if sig != PC2_SIGNATURE:
        raise ContractError(path, "signature", repr(PC2_SIGNATURE), repr(sig))
    if version != 1:
        raise ContractError(path, "version", "1", str(version))
    need = _HEADER.size + n_points * n_samples * 12
    if len(data) != need or n_points < 0 or n_samples < 0:
        raise ContractError(path, "num_samples", f"{need} bytes for {n_samples} x {n_points} points", f"{len(data)} bytes")
    pts = np.frombuffer(data, dtype="<f4", offset=_HEADER.size).reshape(n_samples, n_points, 3)
    return pts.copy(), float(start), float(rate)
