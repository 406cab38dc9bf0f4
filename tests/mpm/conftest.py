"""Shared fixtures of the MPM tests: Taichi on the CPU in float64, small scenes."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ti64():
    """Taichi initialised once for the session: CPU, float64."""
    from physinteract.mpm.runtime import ensure_taichi

    return ensure_taichi("cpu", "f64")


def block(n: tuple[int, int, int], spacing: float, corner=(0.0, 0.0, 0.0)) -> np.ndarray:
    """[nx*ny*nz, 3] particle centres of a block (m), spacing apart, first centre at corner + spacing/2."""
    idx = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), -1).reshape(-1, 3)
    return (idx + 0.5) * spacing + np.asarray(corner, np.float64)
