"""``physinteract fill INPUT --out PARTICLES.ply``: fill a mesh or a 3DGS PLY with particles."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

HELP = "fill a mesh (OBJ, PLY, GLB) or a 3DGS PLY with MPM particles and write them as PLY"
DESCRIPTION = (HELP + ". Writes x y z (m), volume (m^3), label (0 surface, 1 interior), source (nearest input "
               "element) and prints a JSON summary (counts, filled volume in m^3, cell size, bounding box).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", type=Path, help="mesh (.obj, .ply, .glb) or 3D Gaussian Splatting .ply")
    p.add_argument("--out", type=Path, required=True, help="particle PLY to write")
    p.add_argument("--particles-per-cell", type=int, default=8, metavar="N", help="particles per full cell (default 8)")
    p.add_argument("--count", type=int, default=None, metavar="N", help="aim for about N particles (solves the cell size)")
    p.add_argument("--resolution", type=int, default=64, metavar="N", help="cells along the longest side (default 64)")
    p.add_argument("--cell-size", type=float, default=None, metavar="M", help="cell side in metres (overrides --resolution)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--gaussians", dest="kind", action="store_const", const="gaussians", help="treat INPUT as a 3DGS PLY")
    kind.add_argument("--mesh", dest="kind", action="store_const", const="mesh", help="treat INPUT as a mesh")
    p.add_argument("--n-sigma", type=float, default=2.0, help="Gaussians: densify within this many std (default 2)")
    p.add_argument("--opacity-threshold", type=float, default=0.05, help="Gaussians: ignore below this opacity")
    p.add_argument("--ascii", action="store_true", help="write an ASCII PLY instead of binary")


def detect_kind(path: Path) -> str:
    """'mesh' or 'gaussians' from the suffix and, for PLY, the header."""
    from physinteract.contract import ContractError
    from physinteract.geometry.gaussians import is_gaussian_header
    from physinteract.geometry.plyfile import read_ply_header

    suffix = path.suffix.lower()
    if suffix in (".obj", ".glb"):
        return "mesh"
    if suffix != ".ply":
        raise ContractError(path, "", "a .obj, .glb or .ply file", f"suffix '{path.suffix}'")
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError as e:
        raise ContractError(path, "", "a readable file", str(e)) from e
    header = read_ply_header(path, head)
    if is_gaussian_header(header):
        return "gaussians"
    if header.element("face") is not None:
        return "mesh"
    raise ContractError(path, "vertex.f_dc_0", "a mesh PLY (with a 'face' element) or a 3DGS PLY (with f_dc_0)",
                        "neither (a point cloud without f_dc_0?)")


def run(args: argparse.Namespace) -> int:
    from physinteract.contract import ContractError
    from physinteract.geometry import FillConfig, fill_gaussians, fill_mesh, read_gaussian_ply, read_mesh, write_particles_ply

    path: Path = args.input
    if not path.is_file():
        raise ContractError(path, "", "an existing file", "no such file")
    kind = args.kind or detect_kind(path)
    config = FillConfig(resolution=args.resolution, cell_size=args.cell_size, particles_per_cell=args.particles_per_cell,
                        target_count=args.count, n_sigma=args.n_sigma, opacity_threshold=args.opacity_threshold)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if kind == "mesh":
                v, f = read_mesh(path)
                particles = fill_mesh(v, f, config)
            else:
                cloud = read_gaussian_ply(path)
                particles = fill_gaussians(cloud, config)
        except ValueError as e:
            if isinstance(e, ContractError):
                raise
            raise ContractError(path, "", "an object that can be filled", str(e)) from e
    write_particles_ply(args.out, particles, binary=not args.ascii)
    pos = particles.positions
    summary = {
        "input": str(path), "kind": kind, "out": str(args.out),
        "particles": len(particles), "surface": particles.surface_count, "interior": particles.interior_count,
        "volume_m3": particles.filled_volume, "cell_size_m": particles.cell_size,
        "particles_per_cell": args.particles_per_cell,
        "bbox_m": [pos.min(0).tolist(), pos.max(0).tolist()] if len(pos) else None,
        "warnings": [str(w.message) for w in caught],
    }
    print(json.dumps(summary, indent=2))
    return 0
