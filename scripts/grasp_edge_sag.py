"""How far a grasped benchmark object sags under gravity, held still, on different particle lattices.

    python scripts/grasp_edge_sag.py [--scene bow_tie] [--factors 1.0,1.5] [--offsets 101,102,103]

Where the held part ends, and so how long the free part is, depends on the discretisation: on
which particles and grid nodes the grasp holds. This measures the consequence: the scene's object
is filled on the estimator's lattice and on the finer ground truth's (exactly as ``physinteract
benchmark`` builds them), held still at its contact region under gravity with grid damping until
it rests, and the mean vertical displacement (mm) of the particles in its outer quarter along x
on each side is printed as JSON lines. ``hold`` says how the grasp holds the region: "share"
holds each particle by the share of its cube inside it (the benchmark's ground truth), "whole"
holds the particles whose centres lie inside it (the estimator's contact set). Rows: the ground
truth's lattice at the true E; the estimator's at the true E times each ``--factors`` value
(whole) and at the true E (share); extra lattices of the estimator's spacing and 1.4x finer at
random offsets (``--offsets`` seeds, share). A discretisation that converges sags alike on all
of them at the true E.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import numpy as np

from physinteract.benchmark import scenes as S
from physinteract.geometry import Particles
from physinteract.geometry.shapes import fill_sdf
from physinteract.mpm.model import make_model
from physinteract.mpm.runtime import ensure_taichi

FRAMES, FRAME_DT, DAMPING = 16, 1.0 / 24.0, 30.0  # 0.67 s at 30/s grid damping: the tips move < 0.03 mm in the last frame


def sag(spec: S.SceneSpec, p: Particles, spacing: float, resolution: int, domain_resolution: int, k: float, hold: str) -> dict[str, Any]:
    """Rest sag (mm, negative = down) of the outer quarters of particles ``p`` (lattice ``spacing``, m) held at the
    contact region by ``hold`` ("share" or "whole"), E x ``k``."""
    cfg = dataclasses.replace(S._solver_config(spec, resolution, domain_resolution), damping=DAMPING)
    model = make_model(p.positions, p.volume, spec.density, spec.E(p.positions) * k, spec.nu, cfg)
    share = S.contact_share(spec.contact, p.positions, spacing) if hold == "share" else spec.contact(p.positions).astype(float)
    contact = np.flatnonzero(share > 0.0)
    times = np.asarray(spec.times_frac) * FRAMES * FRAME_DT
    control = S._control(spec, contact, p.positions, times, np.zeros_like(spec.path), share[contact])
    xs, _, _ = S.simulate(model, control, FRAME_DT, FRAMES)
    x0 = xs[0][:, 0]
    lo, hi = float(x0.min()), float(x0.max())
    left, right = x0 < lo + 0.25 * (hi - lo), x0 > hi - 0.25 * (hi - lo)
    held = p.positions[contact, 0]
    dz = 1e3 * (xs[-1][:, 2] - xs[0][:, 2])
    return {"hold": hold, "held_x_mm": [round(1e3 * float(held.min()), 1), round(1e3 * float(held.max()), 1)],
            "sag_left_mm": round(float(dz[left].mean()), 2), "sag_right_mm": round(float(dz[right].mean()), 2),
            "particles": len(x0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scene", default="bow_tie", choices=[n for n in S.SCENES if S.SCENES[n]().interaction == "point_adherent"])
    ap.add_argument("--factors", default="1.0,1.25,1.5,2.0", help="E factors on the estimator's lattice")
    ap.add_argument("--offsets", default="101,102,103",  # scene_lattices draws from seed 1000 x (build seed) + scene index
                    help="seeds of extra lattice offsets")
    args = ap.parse_args()
    ensure_taichi("cpu", "f32")
    cfg = S.BuildConfig()
    spec = S.SCENES[args.scene]()
    est, gt, spacing, res, _ = S.scene_lattices(args.scene, cfg)  # as build_scene draws them
    lo, hi = np.asarray(spec.lo), np.asarray(spec.hi)

    def say(**row: object) -> None:
        print(json.dumps(row), flush=True)

    fine = spacing / cfg.gt_factor
    say(lattice="ground truth", spacing_mm=round(1e3 * fine, 2), E_factor=1.0,
        **sag(spec, gt, fine, int(round(res * cfg.gt_factor)), res, 1.0, "share"))
    for k in (float(v) for v in args.factors.split(",")):
        say(lattice="estimator", spacing_mm=round(1e3 * spacing, 2), E_factor=k, **sag(spec, est, spacing, res, res, k, "whole"))
    say(lattice="estimator", spacing_mm=round(1e3 * spacing, 2), E_factor=1.0, **sag(spec, est, spacing, res, res, 1.0, "share"))
    for finer in (1.0, 1.4):
        for seed in (int(v) for v in args.offsets.split(",")):
            p = fill_sdf(spec.sdf, lo, hi, spacing / finer, np.random.default_rng(seed).random(3))
            say(lattice=f"offset seed {seed}", spacing_mm=round(1e3 * spacing / finer, 2), E_factor=1.0,
                **sag(spec, p, spacing / finer, int(round(res * finer)), res, 1.0, "share"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
