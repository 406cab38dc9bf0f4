"""How well a grid resolves an object: particles per cell and cells across each part
before a run, and whether the object tore during one.

MLS-MPM with quadratic B-splines bends a part too easily when only 2-3 grid cells
span it: a clamped beam 3 cells thick sags 1.2x what beam theory predicts, one 4 cells
thick 1.06x (``physinteract bench bending``). An E estimated on such a part comes out
too stiff by about as much. A grid finer than the particle spacing (under one
particle per cell per axis) is worse: cells between particles receive no mass and
the object tears. This module measures both from the particles alone, numpy only,
so ``physinteract validate``, the estimator and the simulator can warn before a run.

The object is taken to be the union of the particles' own cubes (side: the particle
spacing h); its surface is the cube faces where a particle has an empty 45-degree cone
among its neighbours within 2 h. A particle's part thickness is twice the radius of the
largest ball inside the object whose centre lies within 1.5 radii of it (Hildebrand and
Ruegsegger's local thickness, balls grown by half: see ``local_thickness``). Ball centres
are the particles and, on the ridge of the depth, the midpoints between neighbours, so an
even number of layers is measured as well as an odd one. The particles are assumed to
sit on an axis-aligned lattice, as every filler here places them (an irregular cloud
reads thinner than it is, so it warns early rather than late).

During a run, ``Tearing`` watches each particle's nearest rest neighbours: an elastic solid
does not tear, but MPM does where strains grow large enough that neighbours end up a cell
apart. The simulator and the estimator's final rollout warn when that happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from physinteract.geometry.neighbors import knn

THIN_CELLS = 4.0  # parts thinner than this many cells bend measurably too easily (bench bending: 1.06x at 4, 1.2x at 3)
THIN_SHARE = 0.05  # warn when at least this share of the particles lies in thin parts
CAP_CELLS = 8.0  # thickness is measured up to this many cells; thicker parts read as inf
REACH = 1.5  # a ball of radius r counts for the particles within REACH r of its centre


@dataclass
class Resolution:
    """The discretisation of one object on one grid.

    cell: the grid cell dx (m).  spacing: the particle spacing h (m), the median
    nearest-neighbour distance.  thickness: [N] local thickness at each particle (m),
    inf where thicker than ``CAP_CELLS`` cells.  grid_resolution: the solver's cells
    along the domain's longest side (to say what to raise it to), 0 when unknown.
    """

    cell: float
    spacing: float
    thickness: np.ndarray
    grid_resolution: int = 0

    @property
    def particles_per_cell(self) -> float:
        """Particles per grid cell along one axis (dx / h)."""
        return self.cell / self.spacing

    @property
    def thickness_cells(self) -> np.ndarray:
        """[N] local thickness in grid cells."""
        return self.thickness / self.cell

    def thin_share(self, cells: float = THIN_CELLS) -> float:
        """Share of the particles in parts thinner than ``cells`` grid cells."""
        return float(np.mean(self.thickness_cells < cells - 1e-9))

    @property
    def thinnest_cells(self) -> float:
        """The thinnest parts' thickness in cells: the 5th percentile over the particles
        (a single sharp tip or corner does not count as a part)."""
        t = self.thickness_cells
        return float(np.percentile(t, 5.0, method="lower")) if len(t) else math.inf  # "lower": inf stays inf

    def suggested_grid_resolution(self, cells: float = THIN_CELLS) -> int:
        """The grid_resolution that puts at least ``cells`` cells across the thinnest parts (0 when unknown)."""
        if self.grid_resolution <= 0 or not math.isfinite(self.thinnest_cells):
            return self.grid_resolution
        return max(self.grid_resolution, int(math.ceil(self.grid_resolution * cells / max(self.thinnest_cells, 1e-9))))

    def warnings(self) -> list[str]:
        """Plain-language warnings, empty when the grid resolves the object."""
        out = []
        if self.particles_per_cell < 1.0 - 1e-6:
            fix = (f"lower solver.grid_resolution to {int(self.grid_resolution * self.particles_per_cell)} or less, or "
                   if self.grid_resolution > 0 else "")
            out.append(
                f"the particle spacing ({self.spacing * 1e3:.3g} mm) is coarser than the grid cell ({self.cell * 1e3:.3g} mm): "
                f"{self.particles_per_cell:.2f} particles per cell per axis, so grid cells between particles get no mass and "
                f"the object tears apart; {fix}fill the object at a spacing of about half the cell "
                f"({self.cell * 0.5e3:.3g} mm)")
        share = self.thin_share()
        if share >= THIN_SHARE:
            target = self.suggested_grid_resolution()
            fix = (f"; for {THIN_CELLS:g} cells raise solver.grid_resolution to about {target} and fill at about half "
                   f"the new cell ({0.5e3 * self.cell * self.grid_resolution / target:.3g} mm)"
                   if target > self.grid_resolution > 0 else "")
            out.append(
                f"{share:.0%} of the particles lie in parts thinner than {THIN_CELLS:g} grid cells (the thinnest about "
                f"{self.thinnest_cells:.1f} cells across): the simulation bends such parts too easily, so E estimated there "
                f"comes out about 10-25 % too stiff (README, 'The simulator'){fix}")
        return out

    def summary(self) -> dict[str, object]:
        """JSON-ready numbers and warnings (the estimator's and simulator's 'resolution' event)."""
        thinnest = self.thinnest_cells
        return {"cell": self.cell, "spacing": self.spacing, "particles_per_cell": round(self.particles_per_cell, 4),
                "thinnest_cells": round(thinnest, 3) if math.isfinite(thinnest) else None,
                "thin_share": round(self.thin_share(), 4), "thin_cells": THIN_CELLS,
                "suggested_grid_resolution": self.suggested_grid_resolution(), "warnings": self.warnings()}


def _lattice_directions() -> np.ndarray:
    """[26, 3] unit vectors towards a lattice point's face, edge and corner neighbours."""
    dirs = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), -1).reshape(-1, 3)
    dirs = dirs[np.any(dirs != 0, axis=1)].astype(np.float64)
    return dirs / np.linalg.norm(dirs, axis=1, keepdims=True)


class Neighbours:
    """Each particle's 32 nearest others (on a lattice: those within 2 h) and the particle spacing h,
    the median nearest-neighbour distance (m): one k-nearest search serves every step below."""

    def __init__(self, x: np.ndarray, spacing: float | None = None) -> None:
        d, idx = knn(x, x, 33)  # self + the 32 lattice neighbours within 2 h
        self.spacing = float(np.median(d[:, 1])) if spacing is None else float(spacing)
        self.idx = idx[:, 1:]  # [N, 32] int64
        self.near = d[:, 1:] <= 2.0 * self.spacing * (1.0 + 1e-6)  # [N, 32] bool


def surface_faces(x: np.ndarray, nbr: Neighbours) -> tuple[np.ndarray, np.ndarray]:
    """The object's surface as small faces: (centres [F, 3] m, outward unit normals [F, 3]).

    A particle is on the boundary when, among its neighbours within 2 h, none lies in the
    45-degree cone around one of the 26 lattice directions; each such empty direction d
    gives a face at x + d h / 2 with normal d. On a lattice those are the missing face,
    edge and corner neighbours; a sheet one particle thick gets faces on both sides.
    """
    idx, near = nbr.idx, nbr.near
    rel = x[idx] - x[:, None, :]  # [N, 32, 3]
    dist = np.linalg.norm(rel, axis=2)
    dirs = _lattice_directions()
    cos = np.einsum("nkc,dc->nkd", rel, dirs) / np.maximum(dist, 1e-300)[:, :, None]
    empty = ~np.any((cos > math.cos(math.radians(45.0)) - 1e-9) & near[:, :, None], axis=1)  # [N, 26]
    p, k = np.nonzero(empty)
    return x[p] + 0.5 * nbr.spacing * dirs[k], dirs[k]


def _depth(centres: np.ndarray, faces: np.ndarray, normals: np.ndarray, h: float, k: int = 8) -> np.ndarray:
    """[C] distance (m) from each centre to the nearest face, each a square of side h across the lattice's
    axes (exact for the faces of an axis-aligned lattice, close for its edge and corner faces)."""
    _, idx = knn(centres, faces, min(k, len(faces)))
    n = normals[idx]  # [C, k, 3]
    rel = faces[idx] - centres[:, None, :]
    s = np.einsum("qkc,qkc->qk", rel, n)
    out = np.maximum(np.abs(rel - s[:, :, None] * n) - 0.5 * h, 0.0)  # how far past the square's edges
    return np.sqrt(s**2 + np.sum(out**2, axis=2)).min(axis=1)


def local_thickness(x: np.ndarray, spacing: float | None = None, cap: float = math.inf,
                    nbr: Neighbours | None = None) -> np.ndarray:
    """[N] thickness (m) of the part each particle belongs to; inf beyond ``cap`` (m).

    It is twice the radius of the largest ball inside the object whose centre lies within
    ``REACH`` radii of the particle: Hildebrand and Ruegsegger's local thickness with balls
    grown by half, so that a box's edges and corners read as thick as the box (plain local
    thickness goes to zero at a convex edge) while a stem leaving a blossom still reads as
    the stem beyond half the blossom's radius.

    Args:
        x: [N, 3] particle positions (m), on a lattice of spacing h.
        spacing: h (m); None = the median nearest-neighbour distance.
        cap: the largest thickness resolved (m); a finite cap bounds the work.
        nbr: the particles' Neighbours when already found (then ``spacing`` is theirs).
    """
    x = np.asarray(x, np.float64).reshape(-1, 3)
    n = len(x)
    if n < 2:
        return np.full(n, np.inf)
    nbr = nbr or Neighbours(x, spacing)
    h, idx, near = nbr.spacing, nbr.idx, nbr.near
    faces, normals = surface_faces(x, nbr)
    if len(faces) == 0:
        return np.full(n, np.inf)
    # Ball centres: the particles, and on the ridge of the depth (its local maxima) the midpoints between
    # neighbours, where an even number of layers has its medial plane or axis.
    depth = _depth(x, faces, normals, h)  # radius of the largest ball inside, centred at each particle
    R, C = depth.copy(), x.copy()  # each particle's best ball: radius and centre
    ridge = np.all(~near | (depth[idx] <= depth[:, None] + 1e-9 * h), axis=1)
    pair = near & ridge[:, None] & ridge[idx] & (idx > np.arange(n)[:, None])
    pair &= np.linalg.norm(x[idx] - x[:, None, :], axis=2) <= math.sqrt(3.0) * h * (1.0 + 1e-6)
    i, k = np.nonzero(pair)
    j = idx[i, k]
    if len(i):
        mid = 0.5 * (x[i] + x[j])
        dmid = _depth(mid, faces, normals, h)
        for a in (i, j):
            order = np.argsort(dmid)  # the deepest midpoint last, so it wins the scatter
            better = dmid[order] > R[a[order]]
            R[a[order][better]] = dmid[order][better]
            C[a[order][better]] = mid[order][better]
    # Hand the balls on between neighbours while they still reach: a ball of radius r holds the
    # particles within REACH r of its centre, at most REACH r / h neighbour hops from it.
    limit = min(float(R.max()), 0.5 * cap)
    for _ in range(int(math.ceil(REACH * limit / h)) + 2):
        Rn, Cn = R[idx], C[idx]  # [N, 32], [N, 32, 3]
        reach = near & (np.linalg.norm(Cn - x[:, None, :], axis=2) <= REACH * Rn) & (Rn > R[:, None] + 1e-12 * h)
        if not reach.any():
            break
        best = np.argmax(np.where(reach, Rn, -np.inf), axis=1)
        upd = reach.any(axis=1)
        R[upd] = Rn[upd, best[upd]]
        C[upd] = Cn[upd, best[upd]]
    thickness = 2.0 * R
    thickness[thickness > cap] = np.inf
    return thickness


def resolution_report(x: np.ndarray, cell: float, grid_resolution: int = 0) -> Resolution:
    """The Resolution of particles ``x`` [N, 3] (m) on a grid of cell ``cell`` (m)."""
    x = np.asarray(x, np.float64).reshape(-1, 3)
    if len(x) < 2:  # a lone particle: nothing to resolve
        return Resolution(cell=float(cell), spacing=float(cell), thickness=np.full(len(x), np.inf),
                          grid_resolution=int(grid_resolution))
    nbr = Neighbours(x)
    t = local_thickness(x, cap=CAP_CELLS * cell, nbr=nbr)
    return Resolution(cell=float(cell), spacing=nbr.spacing, thickness=t, grid_resolution=int(grid_resolution))


def job_resolution(job: object) -> Resolution:
    """The Resolution of a contract Job's particles on the grid its solver settings give."""
    from physinteract.mpm.model import config_from_settings, model_from_job

    cfg = config_from_settings(job.solver)  # type: ignore[attr-defined]
    model = model_from_job(job, cfg)  # type: ignore[arg-type]
    return resolution_report(model.x0, model.dx, grid_resolution=cfg.grid_resolution)


# --------------------------------------------------------------------------- numerical fracture during a run

TEAR_STRETCH = 2.0  # a particle this many times its rest distance from a rest neighbour has come apart from it
TEAR_SHARE = 0.005  # warn when at least this share of the particles came apart
TEAR_NEIGHBOURS = 6  # rest neighbours watched per particle (on a lattice: the six face neighbours)


class Tearing:
    """Watches a simulation for numerical fracture: particles that came apart from their rest neighbours.

    An elastic solid does not tear, but MPM does where neighbouring particles end up more than a cell
    apart (the cell between them receives no mass): under large strains at a grip, under gravity, or
    on a grid too fine for the particles. Elastic stretch of TEAR_STRETCH (100 % strain) is past what
    fixed-corotated elasticity is meant for, so a neighbour that far away marks a tear.

    ``update(frame, x)`` with each frame's positions [N, 3] (m); ``stretch`` [N] is each particle's
    largest distance to one of its TEAR_NEIGHBOURS nearest rest neighbours over the frames so far,
    over their rest distance; ``torn`` [N] whether it passed TEAR_STRETCH, and ``first_frame`` [N] the
    frame it first did (the caller's frame numbers; meaningful where ``torn``).
    """

    def __init__(self, rest: np.ndarray) -> None:
        rest = np.asarray(rest, np.float64).reshape(-1, 3)
        k = min(TEAR_NEIGHBOURS, len(rest) - 1)
        self.n = len(rest)
        self.stretch = np.ones(self.n)
        self.torn = np.zeros(self.n, bool)
        self.first_frame = np.zeros(self.n, np.int64)
        if k < 1:
            self.idx = np.zeros((self.n, 0), np.int64)
            self.rest = np.zeros((self.n, 0))
            return
        d, idx = knn(rest, rest, k + 1)
        self.idx = idx[:, 1:]
        self.rest = np.maximum(d[:, 1:], 1e-12)

    @classmethod
    def of_run(cls, positions: np.ndarray, frame_start: int = 0) -> Tearing:
        """The Tearing of a whole run's positions [F, N, 3] (m), the rest state first, frames numbered from ``frame_start``."""
        tear = cls(positions[0])
        for f, x in enumerate(positions):
            tear.update(frame_start + f, x)
        return tear

    def update(self, frame: int, x: np.ndarray) -> None:
        """Take in frame ``frame``'s positions x [N, 3] (m)."""
        if self.idx.shape[1] == 0:
            return
        x = np.asarray(x, np.float64).reshape(-1, 3)
        s = (np.linalg.norm(x[self.idx] - x[:, None, :], axis=2) / self.rest).max(axis=1)
        new = (s > TEAR_STRETCH) & ~self.torn
        self.first_frame[new] = frame
        self.torn |= new
        np.maximum(self.stretch, s, out=self.stretch)

    @property
    def share(self) -> float:
        """Share of the particles that came apart from a rest neighbour."""
        return float(np.mean(self.torn)) if self.n else 0.0

    def warnings(self, context: str = "the simulation") -> list[str]:
        """A plain-language warning when at least TEAR_SHARE of the particles came apart, else none."""
        share = self.share
        if share < TEAR_SHARE:
            return []
        first = int(self.first_frame[self.torn].min())
        return [f"{context} tore: {share:.1%} of the particles came apart from a rest neighbour (more than "
                f"{TEAR_STRETCH:g}x their rest distance, up to {self.stretch.max():.0f}x, from frame {first} on). "
                f"An elastic solid does not tear; MPM does where strains grow so large that neighbours end up a grid cell "
                f"apart, at a grip or under gravity. Results there mean little: try a stiffer E, a gentler trajectory, "
                f"or more particles per cell (fill at half the grid cell or finer)"]

    def summary(self, context: str = "the simulation") -> dict[str, object]:
        """JSON-ready numbers and warnings (the "tearing" event)."""
        torn = self.torn
        return {"share": round(self.share, 5), "max_stretch": round(float(self.stretch.max()), 3) if self.n else 1.0,
                "first_frame": int(self.first_frame[torn].min()) if torn.any() else None,
                "stretch_limit": TEAR_STRETCH, "warnings": self.warnings(context)}
