"""Analytic test shapes: triangle meshes and Gaussians sampled on their surfaces, and solids as
signed distance functions filled with particles on a lattice (``fill_sdf``).

Used by the tests, the benchmark, the bending bench and examples. All meshes are counter-clockwise
seen from outside (outward normals); lengths in metres.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from physinteract import contract
from physinteract.geometry.fill import Particles
from physinteract.geometry.gaussians import GaussianCloud


def uv_sphere(radius: float = 0.5, segments: int = 64, rings: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A UV sphere centred at the origin: [V, 3] vertices, [F, 3] faces."""
    th = np.linspace(0, np.pi, rings + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    v = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    v = np.vstack([[0, 0, 1], v, [0, 0, -1]]) * radius
    S, R = segments, rings - 1
    ring = lambda r, s: 1 + r * S + (s % S)  # noqa: E731
    faces = [(0, ring(0, s), ring(0, s + 1)) for s in range(S)]
    for r in range(R - 1):
        for s in range(S):
            a, b, c, d = ring(r, s), ring(r, s + 1), ring(r + 1, s), ring(r + 1, s + 1)
            faces += [(a, c, d), (a, d, b)]
    last = len(v) - 1
    faces += [(last, ring(R - 1, s + 1), ring(R - 1, s)) for s in range(S)]
    return v, np.asarray(faces, np.int64)


def box(size: tuple[float, float, float] = (0.3, 0.2, 0.1), open_face: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box centred at the origin; ``open_face`` in {'+x','-x','+y','-y','+z','-z'} removes that face."""
    h = np.asarray(size, np.float64) / 2
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64) * h
    quads = {"-x": (0, 1, 3, 2), "+x": (4, 6, 7, 5), "-y": (0, 4, 5, 1), "+y": (2, 3, 7, 6),
             "-z": (0, 2, 6, 4), "+z": (1, 5, 7, 3)}
    faces = []
    for name, (a, b, c, d) in quads.items():
        if name != open_face:
            faces += [(a, b, c), (a, c, d)]
    return v, np.asarray(faces, np.int64)


def torus(major: float = 0.3, minor: float = 0.1, segments: int = 96, tube_segments: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A torus around the z axis: [V, 3] vertices, [F, 3] faces."""
    u = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    t = np.linspace(0, 2 * np.pi, tube_segments, endpoint=False)
    U, T = np.meshgrid(u, t, indexing="ij")
    rr = major + minor * np.cos(T)
    v = np.stack([rr * np.cos(U), rr * np.sin(U), minor * np.sin(T)], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(segments), np.arange(tube_segments), indexing="ij")
    a = i * tube_segments + j
    b = ((i + 1) % segments) * tube_segments + j
    c = ((i + 1) % segments) * tube_segments + (j + 1) % tube_segments
    d = i * tube_segments + (j + 1) % tube_segments
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return v, faces.astype(np.int64)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, spacing: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on a mesh, about one per spacing^2 of area (stratified per triangle), with the triangles' unit normals."""
    rng = np.random.default_rng(seed)
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(n, axis=1)
    n = n / np.maximum(2 * area, 1e-300)[:, None]
    expected = area / spacing**2
    count = np.floor(expected + rng.random(len(area))).astype(np.int64)
    ti = np.repeat(np.arange(len(faces)), count)
    r1, r2 = rng.random(len(ti)), rng.random(len(ti))
    s = np.sqrt(r1)
    p = (1 - s)[:, None] * tri[ti, 0] + (s * (1 - r2))[:, None] * tri[ti, 1] + (s * r2)[:, None] * tri[ti, 2]
    return p, n[ti]


def surface_gaussians(vertices: np.ndarray, faces: np.ndarray, spacing: float, seed: int = 0,
                      thickness: float = 0.1, opacity: float = 0.9) -> GaussianCloud:
    """Flat Gaussians on a mesh surface, as a trained 3DGS of an opaque object looks.

    Centres ~ one per spacing^2; in-plane std = spacing, normal std = thickness * spacing,
    random spin about the normal; opacity given; colours random.
    """
    from physinteract.geometry.deform import quaternion_from_matrix

    rng = np.random.default_rng(seed)
    p, n = sample_surface(vertices, faces, spacing, seed)
    # Tangent frames (t1, t2, n) with a random spin.
    helper = np.where(np.abs(n[:, [0]]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    t1 = np.cross(n, helper)
    t1 /= np.linalg.norm(t1, axis=1, keepdims=True)
    t2 = np.cross(n, t1)
    ang = rng.uniform(0, 2 * np.pi, len(p))[:, None]
    a1, a2 = np.cos(ang) * t1 + np.sin(ang) * t2, -np.sin(ang) * t1 + np.cos(ang) * t2
    R = np.stack([a1, a2, n], axis=2)  # columns are the Gaussian's axes
    N = len(p)
    return GaussianCloud(
        means=p.astype(np.float32),
        f_dc=rng.normal(size=(N, 3)).astype(np.float32),
        f_rest=np.zeros((N, 0), np.float32),
        opacity_logit=np.full(N, np.log(opacity / (1 - opacity)), np.float32),
        log_scales=np.log(np.tile([spacing, spacing, thickness * spacing], (N, 1))).astype(np.float32),
        rotations=quaternion_from_matrix(R).astype(np.float32),
    )


# --------------------------------------------------------------------------- solids as signed distance functions

SDF = Callable[[np.ndarray], np.ndarray]  # [P, 3] m -> [P] signed distance (m), negative inside


def sphere(c: tuple[float, float, float], r: float) -> SDF:
    cc = np.asarray(c, np.float64)
    return lambda p: np.linalg.norm(p - cc, axis=-1) - r


def ellipsoid(c: tuple[float, float, float], radii: tuple[float, float, float]) -> SDF:
    """Approximate SDF of an axis-aligned ellipsoid (exact sign, distance good near the surface)."""
    cc, rr = np.asarray(c, np.float64), np.asarray(radii, np.float64)

    def f(p: np.ndarray) -> np.ndarray:
        q = (p - cc) / rr
        k0 = np.linalg.norm(q, axis=-1)
        k1 = np.linalg.norm(q / rr, axis=-1)
        return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)

    return f


def capsule(a: tuple[float, float, float], b: tuple[float, float, float], r: float) -> SDF:
    aa, bb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ba = bb - aa

    def f(p: np.ndarray) -> np.ndarray:
        pa = p - aa
        h = np.clip(pa @ ba / (ba @ ba), 0.0, 1.0)
        return np.linalg.norm(pa - h[:, None] * ba, axis=-1) - r

    return f


def rounded_box(c: tuple[float, float, float], half: tuple[float, float, float], rounding: float = 0.0) -> SDF:
    cc, hh = np.asarray(c, np.float64), np.asarray(half, np.float64)

    def f(p: np.ndarray) -> np.ndarray:
        q = np.abs(p - cc) - hh + rounding
        return np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(axis=-1), 0.0) - rounding

    return f


def union(*parts: SDF) -> SDF:
    return lambda p: np.min(np.stack([s(p) for s in parts]), axis=0)


def fill_sdf(sdf: SDF, lo: np.ndarray, hi: np.ndarray, spacing: float, offset: np.ndarray) -> Particles:
    """Particles on a cubic lattice (``spacing`` m, shifted by ``offset`` in [0, 1)^3 cells) inside the solid.
    Surface label for particles within one spacing of the boundary."""
    lo, hi = np.asarray(lo, np.float64) - spacing, np.asarray(hi, np.float64) + spacing
    axes = [lo[d] + (np.arange(int(np.ceil((hi[d] - lo[d]) / spacing))) + offset[d]) * spacing for d in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    d = sdf(pts)
    keep = d < 0.0
    x = pts[keep]
    labels = np.where(d[keep] > -spacing, contract.SURFACE, contract.INTERIOR).astype(np.uint8)
    return Particles(x, np.full(len(x), spacing**3), labels, cell_size=spacing)
