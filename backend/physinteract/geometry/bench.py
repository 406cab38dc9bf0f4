"""``physinteract bench ply``: how fast 3DGS PLY files are read and written.

Writes a synthetic cloud (degree-3 SH, 62 float32 properties per Gaussian, like
INRIA's 3DGS output) to a temporary folder, then times writing and reading it
(binary little endian, optionally big endian and ASCII on a smaller cloud).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=1_000_000, help="Gaussians in the binary files (default 1e6)")
    p.add_argument("--ascii-count", type=int, default=100_000, help="Gaussians in the ASCII file (0 to skip)")
    p.add_argument("--repeat", type=int, default=3, help="timed reads per file; the best is reported")
    p.add_argument("--dir", type=Path, default=None, help="folder for the files (default: a temporary one)")


def synthetic_cloud(n: int, seed: int = 0):
    from physinteract.geometry.gaussians import GaussianCloud

    rng = np.random.default_rng(seed)
    f32 = np.float32
    return GaussianCloud(
        means=rng.normal(size=(n, 3)).astype(f32), normals=np.zeros((n, 3), f32),
        f_dc=rng.normal(size=(n, 3)).astype(f32), f_rest=rng.normal(size=(n, 45)).astype(f32),
        opacity_logit=rng.normal(size=n).astype(f32), log_scales=rng.normal(-4, 1, size=(n, 3)).astype(f32),
        rotations=rng.normal(size=(n, 4)).astype(f32))


def _to_big_endian(src: Path, dst: Path) -> None:
    from physinteract.geometry.plyfile import read_ply_header

    blob = src.read_bytes()
    header = read_ply_header(src, blob[:1 << 16])
    el = header.elements[0]
    dt = np.dtype([(p.name, "<" + p.type) for p in el.properties])
    rows = np.frombuffer(blob, dtype=dt, count=el.count, offset=header.data_offset)
    head = blob[:header.data_offset].replace(b"binary_little_endian", b"binary_big_endian")
    dst.write_bytes(head + rows.astype(dt.newbyteorder(">")).tobytes())


def run(args: argparse.Namespace) -> dict:
    from physinteract.geometry.gaussians import read_gaussian_ply, write_gaussian_ply

    result: dict = {"count": args.count}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cloud = synthetic_cloud(args.count)
        le = folder / "bench_le.ply"
        t = time.perf_counter()
        write_gaussian_ply(le, cloud)
        result["write_binary_s"] = round(time.perf_counter() - t, 3)
        result["file_mb"] = round(le.stat().st_size / 1e6, 1)
        be = folder / "bench_be.ply"
        _to_big_endian(le, be)

        def best(path: Path) -> float:
            times = []
            for _ in range(max(1, args.repeat)):
                t = time.perf_counter()
                back = read_gaussian_ply(path)
                times.append(time.perf_counter() - t)
            if not np.array_equal(back.f_rest, cloud.f_rest):
                raise RuntimeError(f"{path}: read back differs from what was written")
            return min(times)

        result["read_binary_le_s"] = round(best(le), 3)
        result["read_binary_be_s"] = round(best(be), 3)
        result["read_binary_le_gaussians_per_s"] = round(args.count / result["read_binary_le_s"])
        result["read_binary_le_mb_per_s"] = round(result["file_mb"] / result["read_binary_le_s"], 1)
        if args.ascii_count > 0:
            small = synthetic_cloud(args.ascii_count, seed=1)
            asc = folder / "bench_ascii.ply"
            t = time.perf_counter()
            write_gaussian_ply(asc, small, binary=False)
            result["ascii_count"] = args.ascii_count
            result["write_ascii_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            read_gaussian_ply(asc)
            result["read_ascii_s"] = round(time.perf_counter() - t, 3)
    return result
