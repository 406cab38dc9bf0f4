"""3D Gaussian Splatting PLY files: the standard (INRIA) layout.

One ``vertex`` element, one row per Gaussian, with the properties
``x y z`` (centre, m, world), optional ``nx ny nz`` (unused by 3DGS, usually 0),
``f_dc_0..2`` (degree-0 spherical-harmonic colour), ``f_rest_0..K-1`` (higher
SH coefficients, channel-major; optional), ``opacity`` (a logit),
``scale_0..2`` (natural logs of the standard deviations, m) and ``rot_0..3``
(a rotation quaternion, w first, not necessarily normalised).

Other properties are kept in ``GaussianCloud.extra`` and written back. Compressed
layouts (SuperSplat's ``chunk`` element and ``packed_*`` properties) are refused
with a clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from physinteract.contract import ContractError
from physinteract.geometry.plyfile import PlyHeader, PlyList, read_ply, write_ply

REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3")
_CORE = set(REQUIRED) | {"nx", "ny", "nz"}
_F_REST = re.compile(r"^f_rest_(\d+)$")
_COMPRESSED_ELEMENTS = ("chunk", "sh")


@dataclass
class GaussianCloud:
    """N Gaussians in the 3DGS parameterisation (float32 unless the file held doubles).

    means: [N, 3] centres, m, world.
    f_dc: [N, 3] degree-0 SH coefficients; f_rest: [N, K] higher SH (K may be 0).
    opacity_logit: [N] (opacity = sigmoid(opacity_logit)).
    log_scales: [N, 3] natural log of the per-axis standard deviation (m).
    rotations: [N, 4] quaternions (w, x, y, z), as stored (not normalised).
    normals: [N, 3] or None when the file had no nx/ny/nz.
    extra: other per-Gaussian properties, in file order.
    """

    means: np.ndarray
    f_dc: np.ndarray
    f_rest: np.ndarray
    opacity_logit: np.ndarray
    log_scales: np.ndarray
    rotations: np.ndarray
    normals: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def opacity(self) -> np.ndarray:
        """[N] opacity in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-self.opacity_logit.astype(np.float64)))

    @property
    def scales(self) -> np.ndarray:
        """[N, 3] standard deviations along the Gaussian's axes, m."""
        return np.exp(self.log_scales.astype(np.float64))


def is_gaussian_header(header: PlyHeader) -> bool:
    """True when the file looks like a 3DGS PLY (vertex with f_dc_0 and no faces)."""
    v = header.element("vertex")
    return v is not None and header.element("face") is None and (
        "f_dc_0" in v.property_names() or any(n.startswith("packed_") for n in v.property_names())
        or header.element("chunk") is not None)


def check_gaussian_header(path: str | Path, header: PlyHeader) -> None:
    """Raise ContractError for layouts we cannot read (compressed, missing properties)."""
    for name in _COMPRESSED_ELEMENTS:
        if header.element(name) is not None:
            raise ContractError(path, name, "the standard uncompressed 3DGS layout (one 'vertex' element)",
                                f"a compressed 3DGS PLY (element '{name}', e.g. from SuperSplat); "
                                "decompress it to a standard 3DGS PLY first")
    v = header.element("vertex")
    if v is None:
        raise ContractError(path, "vertex", "a 'vertex' element with one row per Gaussian", "no 'vertex' element")
    names = v.property_names()
    for n in names:
        if n.startswith("packed_"):
            raise ContractError(path, f"vertex.{n}", "the standard uncompressed 3DGS layout",
                                f"a compressed 3DGS PLY (property '{n}'); decompress it to a standard 3DGS PLY first")
    for n in REQUIRED:
        if n not in names:
            raise ContractError(path, f"vertex.{n}", "a property of the standard 3DGS layout", "missing")
    for p in v.properties:
        if p.count_type is not None:
            raise ContractError(path, f"vertex.{p.name}", "scalar properties only", "a list property")
    rest = sorted(int(m.group(1)) for n in names if (m := _F_REST.match(n)))
    if rest != list(range(len(rest))):
        missing = sorted(set(range(max(rest) + 1)) - set(rest))
        raise ContractError(path, f"vertex.f_rest_{missing[0]}", "f_rest_0..f_rest_K-1 without gaps", "missing")


def _float_stack(cols: list[np.ndarray]) -> np.ndarray:
    dt = np.float64 if any(c.dtype == np.float64 for c in cols) else np.float32
    out = np.empty((len(cols[0]) if cols else 0, len(cols)), dtype=dt)
    for j, c in enumerate(cols):
        out[:, j] = c
    return out


def read_gaussian_ply(path: str | Path) -> GaussianCloud:
    """Read a standard 3DGS PLY (ASCII or binary, either endianness).

    Raises ContractError (file, property) for anything that cannot be read:
    a missing required property, a compressed layout, a truncated file, an
    unknown property type.
    """
    # Check the header first so a compressed or incomplete file fails before its data is read.
    from physinteract.geometry.plyfile import read_ply_header

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 20)
    except OSError as e:
        raise ContractError(path, "", "a readable file", str(e)) from e
    check_gaussian_header(path, read_ply_header(path, head))
    header, data = read_ply(path)
    v = data["vertex"]
    cols = {k: a for k, a in v.items() if not isinstance(a, PlyList)}
    names = [p.name for p in header.element("vertex").properties]  # type: ignore[union-attr]
    rest_names = sorted((n for n in names if _F_REST.match(n)), key=lambda n: int(n[7:]))
    normals = _float_stack([cols[n] for n in ("nx", "ny", "nz")]) if all(n in cols for n in ("nx", "ny", "nz")) else None
    n = len(cols["x"])
    return GaussianCloud(
        means=_float_stack([cols[c] for c in ("x", "y", "z")]),
        f_dc=_float_stack([cols[f"f_dc_{i}"] for i in range(3)]),
        f_rest=_float_stack([cols[c] for c in rest_names]) if rest_names else np.zeros((n, 0), np.float32),
        opacity_logit=_float_stack([cols["opacity"]])[:, 0],
        log_scales=_float_stack([cols[f"scale_{i}"] for i in range(3)]),
        rotations=_float_stack([cols[f"rot_{i}"] for i in range(4)]),
        normals=normals,
        extra={k: cols[k] for k in names if k not in _CORE and not _F_REST.match(k)},
    )


def write_gaussian_ply(path: str | Path, cloud: GaussianCloud, binary: bool = True) -> None:
    """Write ``cloud`` in the standard 3DGS layout (atomic write).

    Order: x y z [nx ny nz] f_dc_0..2 f_rest_* opacity scale_0..2 rot_0..3, then
    ``extra``. float32 arrays stay float32 and float64 stay double, so a file
    read with :func:`read_gaussian_ply` and written back is identical in values.
    """
    n = len(cloud)
    props: dict[str, np.ndarray] = {}

    def put(names: list[str], a: np.ndarray, what: str) -> None:
        a = np.asarray(a)
        if a.ndim == 1:
            a = a[:, None]
        if a.shape != (n, len(names)):
            raise ValueError(f"{path}: GaussianCloud.{what} has shape {a.shape}, expected {(n, len(names))}")
        if a.dtype.kind != "f":
            a = a.astype(np.float32)
        for j, name in enumerate(names):
            props[name] = a[:, j]

    put(["x", "y", "z"], cloud.means, "means")
    if cloud.normals is not None:
        put(["nx", "ny", "nz"], cloud.normals, "normals")
    put([f"f_dc_{i}" for i in range(3)], cloud.f_dc, "f_dc")
    put([f"f_rest_{i}" for i in range(cloud.f_rest.shape[1])], cloud.f_rest, "f_rest")
    put(["opacity"], cloud.opacity_logit, "opacity_logit")
    put([f"scale_{i}" for i in range(3)], cloud.log_scales, "log_scales")
    put([f"rot_{i}" for i in range(4)], cloud.rotations, "rotations")
    for k, a in cloud.extra.items():
        if k in props:
            raise ValueError(f"{path}: extra property '{k}' clashes with a standard property")
        props[k] = np.asarray(a)
    write_ply(path, {"vertex": props}, binary=binary)
