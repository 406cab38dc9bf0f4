"""mpm.resolution: particles per grid cell and cells across each part, against shapes of known thickness."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from physinteract import contract
from physinteract.mpm.resolution import TEAR_STRETCH, THIN_CELLS, Tearing, local_thickness, resolution_report
from tests.mpm.conftest import block

H = 0.005  # m, the particle spacing


def test_a_slab_of_n_particle_layers_is_n_spacings_thick():
    """The union of the particles' cubes of a slab n layers deep is n h thick, odd n and even n alike
    (the even slab's medial plane lies between particles)."""
    for n in range(1, 7):
        x = block((12, 12, n), H)
        t = local_thickness(x, H)
        middle = np.all((x[:, :2] > 3 * H) & (x[:, :2] < 9 * H), axis=1)
        np.testing.assert_allclose(t[middle], n * H, rtol=1e-9, err_msg=f"{n} layers")


@pytest.mark.parametrize("diameter", [6, 8, 12])
def test_a_round_rod_reads_its_diameter_within_the_staircase_of_its_lattice(diameter):
    """A rod filled on a cubic lattice at an arbitrary offset: away from its ends the thickness is the
    diameter, less the lattice's staircase (within 20 %), never more than the diameter."""
    from physinteract.benchmark.scenes import fill_sdf

    R, L = 0.5 * diameter * H, 30 * H
    x = fill_sdf(lambda p: np.maximum(np.hypot(p[:, 0], p[:, 1]) - R, np.abs(p[:, 2]) - L / 2),
                 np.array([-R, -R, -L / 2]), np.array([R, R, L / 2]), H, np.array([0.3, 0.7, 0.5])).positions
    t = local_thickness(x, H)
    middle = np.abs(x[:, 2]) < L / 4
    assert np.all(t[middle] >= 0.8 * diameter * H) and np.all(t[middle] <= 1.0 * diameter * H + 1e-12), \
        np.unique(t[middle] / H)


def test_a_beam_3_cells_thick_warns_4_cells_not_and_a_box_has_no_thin_parts():
    """At 2 particles per cell a square beam 6 particles thick is 3 cells: thin (it sags 1.2x beam theory,
    `physinteract bench bending`); 8 particles thick is 4 cells (1.06x): not thin; a cube 6 cells on a
    side has no thin parts though its edges and corners are sharp."""
    cell = 2 * H
    thin = resolution_report(block((6, 6, 40), H), cell, grid_resolution=50)
    assert thin.particles_per_cell == pytest.approx(2.0)
    assert thin.thinnest_cells == pytest.approx(3.0)
    assert thin.thin_share() == pytest.approx(1.0)
    assert thin.suggested_grid_resolution() == int(np.ceil(50 * THIN_CELLS / 3.0))
    (warning,) = thin.warnings()
    assert "thinner than 4 grid cells" in warning and "grid_resolution to about 67" in warning
    resolved = resolution_report(block((8, 8, 40), H), cell, grid_resolution=50)
    assert resolved.thinnest_cells == pytest.approx(4.0)
    assert resolved.thin_share() == pytest.approx(8 / (8 * 8 * 40))  # only the corner particles of its two ends
    assert resolved.warnings() == []
    box = resolution_report(block((12, 12, 12), H), cell, grid_resolution=50)
    assert box.thin_share() < 0.01 and box.thinnest_cells >= 5.0 and box.warnings() == []


def test_particles_coarser_than_the_grid_cell_warn_that_the_object_tears():
    """Under one particle per cell per axis, cells between particles get no mass: the warning says so and
    what grid_resolution keeps at least one particle per cell."""
    r = resolution_report(block((20, 20, 20), H), 0.5 * H, grid_resolution=90)
    assert r.particles_per_cell == pytest.approx(0.5)
    tears = [w for w in r.warnings() if "coarser than the grid cell" in w]
    assert len(tears) == 1 and "grid_resolution to 45 or less" in tears[0]
    assert resolution_report(block((20, 20, 20), H), H, grid_resolution=90).warnings() == []


def test_validate_reports_a_jobs_resolution_and_warns_on_stderr(tmp_path):
    """`physinteract validate JOB` prints the resolution (particles per cell, thin share) as JSON, and each
    warning on stderr with the folder's name."""
    from tests.mpm.test_simulate_job import small_job

    job = small_job()  # 5 mm particles in a 6 cm domain (its tracers padded)
    job.solver.grid_resolution = 24  # 2.5 mm cells: half a particle per cell
    contract.write_job(job, tmp_path / "job")
    out = subprocess.run([sys.executable, "-m", "physinteract", "validate", str(tmp_path / "job")], capture_output=True,
                         text=True, check=True)
    report = json.loads(out.stdout)
    assert report["kind"] == "job"
    assert report["resolution"]["particles_per_cell"] == pytest.approx(0.5, rel=1e-6)
    assert "coarser than the grid cell" in out.stderr and str(tmp_path / "job") in out.stderr


def test_tearing_counts_the_particles_on_both_sides_of_a_cut_not_a_uniform_stretch():
    """A 10-layer block stretched uniformly by 1.8x has every neighbour 1.8x apart and no tear; cut between
    layers 4 and 5 and pulled 3 spacings apart, exactly the two layers facing the cut (20 %) come apart,
    from the frame of the cut on, and the warning says so."""
    x = block((10, 6, 6), H)  # layers along x
    tear = Tearing(x)
    centre = x.mean(0)
    tear.update(1, x)
    tear.update(2, centre + (x - centre) * np.array([1.8, 1.0, 1.0]))
    assert tear.share == 0.0 and tear.stretch.max() == pytest.approx(1.8) and tear.warnings() == []
    layer = np.round((x[:, 0] - x[:, 0].min()) / H).astype(int)
    cut = x + np.where(layer >= 5, 3.0 * H, 0.0)[:, None] * np.array([1.0, 0.0, 0.0])
    tear.update(3, cut)
    torn = np.isin(layer, (4, 5))
    np.testing.assert_array_equal(tear.torn, torn)
    assert tear.share == pytest.approx(0.2) and tear.stretch[torn].min() == pytest.approx(4.0) and 4.0 > TEAR_STRETCH
    assert np.all(tear.first_frame[torn] == 3)
    summary = tear.summary()
    assert summary["first_frame"] == 3 and summary["share"] == pytest.approx(0.2)
    (warning,) = summary["warnings"]
    assert "tore: 20.0% of the particles" in warning and "from frame 3 on" in warning
