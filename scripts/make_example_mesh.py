"""Regenerate the bundled example mesh: a soft rope, a capsule 24 cm long and 4 cm thick.

Usage: python scripts/make_example_mesh.py backend/physinteract/data/example/rope.obj
"""

from __future__ import annotations

import sys

import numpy as np


def capsule(length: float, radius: float, n_around: int = 24, n_cap: int = 6, n_body: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A closed capsule along +X centred at the origin. Returns (vertices [V,3] m, triangles [F,3])."""
    rings = []  # (x, ring radius)
    half = length / 2 - radius
    for i in range(1, n_cap + 1):  # left cap, pole excluded
        a = np.pi / 2 * (1 - i / n_cap)
        rings.append((-half - radius * np.sin(a), radius * np.cos(a)))
    for i in range(1, n_body):
        rings.append((-half + 2 * half * i / n_body, radius))
    for i in range(0, n_cap):
        a = np.pi / 2 * i / n_cap
        rings.append((half + radius * np.sin(a), radius * np.cos(a)))
    theta = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    verts = [[-length / 2, 0.0, 0.0]]
    for x, r in rings:
        verts += [[x, r * np.cos(t), r * np.sin(t)] for t in theta]
    verts.append([length / 2, 0.0, 0.0])
    v = np.array(verts)
    faces = []
    for j in range(n_around):  # left pole fan
        faces.append([0, 1 + (j + 1) % n_around, 1 + j])
    for i in range(len(rings) - 1):
        a, b = 1 + i * n_around, 1 + (i + 1) * n_around
        for j in range(n_around):
            j1 = (j + 1) % n_around
            faces += [[a + j, a + j1, b + j1], [a + j, b + j1, b + j]]
    last = 1 + (len(rings) - 1) * n_around
    for j in range(n_around):
        faces.append([len(v) - 1, last + j, last + (j + 1) % n_around])
    return v, np.array(faces)


def main() -> None:
    v, f = capsule(0.24, 0.02)
    lines = ["# PhysInteract example: soft rope (capsule 0.24 m x 0.04 m), metres, +Z up"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]
    with open(sys.argv[1], "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
