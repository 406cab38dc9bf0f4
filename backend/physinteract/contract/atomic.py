"""Atomic writes: every file of a job or cache appears whole or not at all.

Each writer writes to a temporary file in the destination folder, flushes and
fsyncs it, then renames it over the destination (``os.replace`` is atomic on
POSIX and Windows when both paths are on one volume).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename).

    The file gets the usual permissions (0666 less the umask), not mkstemp's
    private 0600, so caches on shared storage stay readable by a render farm.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    """Save one array as .npy atomically. Object arrays are refused (no pickles)."""
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(f"{path}: object arrays are not allowed in the contract")
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Save several arrays as an uncompressed .npz atomically. Returns the bytes written."""
    buf = io.BytesIO()
    clean = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype.hasobject:
            raise TypeError(f"{path}: array '{k}' is an object array")
        clean[k] = v
    np.savez(buf, **clean)  # type: ignore[arg-type]
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    return data
