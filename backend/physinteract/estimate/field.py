"""The material field's parameterisation: per-particle log E and bounded nu.

Every particle's log Young's modulus is a convex combination of values held by K control
points spread over the object's surface particles (farthest-point sampling):

    log E_i = sum_k W_ik z_k,      nu_i = NU_MAX * sigmoid(sum_k W_ik theta_k)

W is a partition of unity (each row sums to one) with compact support on the ``neighbours``
nearest control points, weighted by a Gaussian of the distance with width ``sharpness`` x the
typical control spacing: the field can hold sharp-ish region boundaries while one image-loss
gradient moves a whole neighbourhood, which is what lets the optimiser converge in tens of
iterations instead of thousands. With K = the number of surface particles each surface particle
holds its own value. Interior particles take the value of their nearest surface particle (the
paper's rule for the interior, which is never seen). E is clamped to [E_min, E_max] Pa through
the clamp of z; nu lies in (0, NU_MAX) by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from physinteract.mpm.model import NU_MAX, theta_from_nu


@dataclass
class FieldConfig:
    """Material-field parameterisation.

    Attributes:
        control_points: K control points (0 or >= surface count: one per surface particle).
        neighbours: control points blended into each particle's value.
        sharpness: Gaussian kernel width as a multiple of the median control spacing.
        E_min, E_max: Pa, the physical range E is clamped to.
        nu_min, nu_max: the range nu is clamped to (nu_max <= NU_MAX).
    """

    control_points: int = 48
    neighbours: int = 4
    sharpness: float = 0.5
    E_min: float = 1.0e2
    E_max: float = 1.0e9
    nu_min: float = 0.05
    nu_max: float = 0.45

    def __post_init__(self) -> None:
        if self.neighbours < 1 or self.sharpness <= 0:
            raise ValueError("FieldConfig: neighbours >= 1 and sharpness > 0 required")
        if not 0 < self.E_min < self.E_max:
            raise ValueError(f"FieldConfig: need 0 < E_min < E_max, got {self.E_min}, {self.E_max}")
        if not 0 <= self.nu_min < self.nu_max <= NU_MAX:
            raise ValueError(f"FieldConfig: need 0 <= nu_min < nu_max <= {NU_MAX}, got {self.nu_min}, {self.nu_max}")


def farthest_points(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Indices of ``count`` points spread by greedy farthest-point sampling of ``points`` [N, 3]."""
    n = len(points)
    count = min(count, n)
    rng = np.random.default_rng(seed)
    chosen = np.empty(count, np.int64)
    chosen[0] = int(rng.integers(n))
    d = np.linalg.norm(points - points[chosen[0]], axis=1)
    for i in range(1, count):
        chosen[i] = int(np.argmax(d))
        d = np.minimum(d, np.linalg.norm(points - points[chosen[i]], axis=1))
    return chosen


def blend_weights(positions: np.ndarray, labels: np.ndarray, config: FieldConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sparse basis W of the field over all particles.

    Args:
        positions: [N, 3] rest positions (m, world).  labels: [N] 0 surface, 1 interior.
    Returns:
        (index [N, k] into the control points, weight [N, k] rows summing to one,
         control [K] particle indices of the control points).
    """
    from physinteract.geometry.neighbors import knn

    x = np.asarray(positions, np.float64)
    surface = np.flatnonzero(np.asarray(labels) == 0)
    if surface.size == 0:
        surface = np.arange(len(x))
    k_ctrl = len(surface) if config.control_points <= 0 else min(config.control_points, len(surface))
    control = surface[farthest_points(x[surface], k_ctrl)] if k_ctrl < len(surface) else surface
    k = min(config.neighbours, len(control))
    if k_ctrl > 1:
        spacing_d, _ = knn(x[control], x[control], 2)
        spacing = float(np.median(spacing_d[:, 1]))
    else:
        spacing = 1.0
    # surface particles blend their nearest control points; interior ones copy their nearest surface particle
    dist, idx = knn(x[surface], x[control], k)
    h = config.sharpness * max(spacing, 1e-12)
    w = np.exp(-0.5 * ((dist - dist[:, :1]) / h) ** 2)
    w /= w.sum(1, keepdims=True)
    index = np.zeros((len(x), k), np.int64)
    weight = np.zeros((len(x), k))
    index[surface], weight[surface] = idx, w
    interior = np.setdiff1d(np.arange(len(x)), surface)
    if interior.size:
        _, near = knn(x[interior], x[surface], 1)
        src = surface[near[:, 0]]
        index[interior], weight[interior] = index[src], weight[src]
    return index, weight, control


class MaterialField(torch.nn.Module):
    """Learnable log E (Pa) and bounded nu per particle, through the control-point basis.

    Args:
        positions: [N, 3] rest positions.  labels: [N] surface/interior.
        E0: [N] or scalar initial Young's modulus (Pa).  nu0: [N] or scalar initial Poisson's ratio.
    """

    def __init__(self, positions: np.ndarray, labels: np.ndarray, E0: np.ndarray | float, nu0: np.ndarray | float,
                 config: FieldConfig | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.config = cfg = config or FieldConfig()
        n = len(positions)
        index, weight, control = blend_weights(positions, labels, cfg)
        self.index: Tensor  # [N, k] control points blended into each particle (buffers, so .to() moves them)
        self.weight: Tensor  # [N, k] their weights
        self.source: Tensor  # [N] the particle whose value each particle takes
        self.register_buffer("index", torch.as_tensor(index))
        self.register_buffer("weight", torch.as_tensor(weight, dtype=dtype))
        self.control = control
        E0a = np.clip(np.broadcast_to(np.asarray(E0, np.float64), (n,)), cfg.E_min, cfg.E_max)
        nu0a = np.clip(np.broadcast_to(np.asarray(nu0, np.float64), (n,)), cfg.nu_min, cfg.nu_max)
        self.z = torch.nn.Parameter(torch.as_tensor(np.log(E0a[control]), dtype=dtype))
        self.theta = torch.nn.Parameter(torch.as_tensor(theta_from_nu(nu0a[control]), dtype=dtype))
        self.positions = np.asarray(positions, np.float64)
        # particle i takes the value the basis gives particle source[i] (itself unless held: see hold())
        self.register_buffer("source", torch.arange(n), persistent=False)

    def hold(self, held: np.ndarray | None) -> None:
        """Particles whose material the video cannot show: ``held`` [K] particle indices (None or
        empty: none), those a grasp moves rigidly with the hand. Each takes the value of its
        nearest particle at rest outside the set, as the interior takes that of the surface. Their
        own values would barely change the motion, so the fit would leave them wherever the
        smoothness term happened to, while the material on either side of the grip is seen."""
        from physinteract.geometry.neighbors import knn

        n = len(self.positions)
        source = np.arange(n)
        held = np.unique(np.asarray(held if held is not None else [], np.int64))
        free = np.setdiff1d(source, held)
        if held.size and free.size:
            _, near = knn(self.positions[held], self.positions[free], 1)
            source[held] = free[near[:, 0]]
        self.source = torch.as_tensor(source)

    @property
    def num_controls(self) -> int:
        return int(self.z.shape[0])

    def log_E(self) -> Tensor:
        """[N] log of Young's modulus (E in Pa), clamped to [log E_min, log E_max]."""
        z = self.z.clamp(float(np.log(self.config.E_min)), float(np.log(self.config.E_max)))
        return (z[self.index] * self.weight).sum(1)[self.source]

    def nu(self) -> Tensor:
        """[N] Poisson's ratio in [nu_min, nu_max]."""
        theta = (self.theta[self.index] * self.weight).sum(1)[self.source]
        return (NU_MAX * torch.sigmoid(theta)).clamp(self.config.nu_min, self.config.nu_max)

    @torch.no_grad()
    def clamp_(self) -> None:
        """Keep the raw parameters inside the physical ranges (so Adam's state stays meaningful)."""
        self.z.clamp_(float(np.log(self.config.E_min)), float(np.log(self.config.E_max)))
        lo, hi = theta_from_nu(np.array([self.config.nu_min, self.config.nu_max]))
        self.theta.clamp_(float(lo), float(hi))
