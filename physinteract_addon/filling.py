"""Volume filling through the backend's ``physinteract fill`` command (bpy-free).

The add-on writes the object's surface as an OBJ in world metres (or, for
3D Gaussians, the Gaussians as a 3DGS PLY in world metres), the backend
fills it out of process and writes a particle PLY (x y z in m, volume in m^3,
label 0 surface / 1 interior), which is read back here with numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physinteract import contract

_PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2", "ushort": "u2",
    "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4", "float": "f4", "float32": "f4",
    "double": "f8", "float64": "f8",
}


def write_obj(path: str | Path, vertices_m: np.ndarray, triangles: np.ndarray) -> None:
    """An OBJ of ``vertices_m`` [V, 3] (m, world) and ``triangles`` [F, 3] (0-based), written atomically."""
    lines = [f"v {x:.9g} {y:.9g} {z:.9g}" for x, y, z in np.asarray(vertices_m, np.float64)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in np.asarray(triangles, np.int64)]
    contract.atomic_write_text(path, "\n".join(lines) + "\n")


def fill_command(python: str, input_path: str | Path, out_ply: str | Path, resolution: int, count: int = 0,
                 kind: str = "mesh") -> list[str]:
    """Argument list of ``physinteract fill INPUT --out PLY --mesh|--gaussians --resolution R [--count N]``;
    ``kind`` is "mesh" (an OBJ) or "gaussians" (a 3DGS PLY)."""
    if kind not in ("mesh", "gaussians"):
        raise ValueError(f"fill kind must be 'mesh' or 'gaussians', not {kind!r}")
    argv = [str(python), "-m", "physinteract", "fill", str(input_path), "--out", str(out_ply), f"--{kind}",
            "--resolution", str(int(resolution))]
    if count > 0:
        argv += ["--count", str(int(count))]
    return argv


def read_particles_ply(path: str | Path) -> dict[str, np.ndarray]:
    """Read a particle PLY: {"positions" [N, 3] m, "volume" [N] m^3, "labels" [N] uint8}.

    Supports ascii and binary little-endian PLY with scalar vertex properties.
    Raises ContractError naming the file and the field at fault."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise contract.ContractError(path, "", "a readable particle PLY", str(e)) from None
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise contract.ContractError(path, "header", "a PLY header ('ply' ... 'end_header')", "something else")
    body_start = data.index(b"\n", end) + 1
    fmt, n, element = "", 0, ""
    props: list[tuple[str, str]] = []
    for line in data[:end].decode("ascii", "replace").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                n = int(words[2])
            elif n == 0 or props:
                break  # only a leading vertex element is read
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list":
                raise contract.ContractError(path, f"vertex.{words[-1]}", "scalar properties", "a list property")
            props.append((words[2], _PLY_TYPES.get(words[1], "")))
    names = [p for p, _ in props]
    for need in ("x", "y", "z", "volume", "label"):
        if need not in names:
            raise contract.ContractError(path, f"vertex.{need}", "a particle property", "missing")
    if fmt == "binary_little_endian":
        dtype = np.dtype([(p, "<" + t) for p, t in props])
        if len(data) - body_start < n * dtype.itemsize:
            raise contract.ContractError(path, "vertex", f"{n} particles", "a truncated file")
        arr = np.frombuffer(data, dtype, count=n, offset=body_start)
        cols = {p: np.asarray(arr[p]) for p in names}
    elif fmt == "ascii":
        table = np.loadtxt(data[body_start:].decode("ascii").splitlines()[:n], ndmin=2) if n else np.zeros((0, len(names)))
        cols = {p: table[:, i] for i, p in enumerate(names)}
    else:
        raise contract.ContractError(path, "format", "ascii or binary_little_endian", fmt or "none")
    labels = np.asarray(cols["label"]).astype(np.uint8)
    out: dict[str, np.ndarray] = {
        "positions": np.stack([np.asarray(cols[c], np.float64) for c in "xyz"], axis=1),
        "volume": np.asarray(cols["volume"], np.float64),
        "labels": labels,
    }
    if np.any((labels != contract.SURFACE) & (labels != contract.INTERIOR)):
        raise contract.ContractError(path, "vertex.label", "0 (surface) or 1 (interior)", "other values")
    if not np.all(np.isfinite(out["positions"])) or np.any(out["volume"] <= 0):
        raise contract.ContractError(path, "vertex.volume", "finite positions and positive volumes", "other values")
    return out
