"""``physinteract fill``: JSON summary with counts and filled volume; clean exit code 2 for bad input."""

from __future__ import annotations

import json

import numpy as np

from physinteract.cli import main
from physinteract.geometry import read_particles_ply, write_gaussian_ply
from physinteract.geometry.plyfile import write_ply
from physinteract.geometry.shapes import box, surface_gaussians, uv_sphere


def _obj(path, v, f):
    path.write_text("\n".join([f"v {a!r} {b!r} {c!r}" for a, b, c in v] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]) + "\n")


def test_fill_command_mesh_reports_box_volume(tmp_path, capsys):
    """fill on an OBJ box prints counts and volume_m3 = 0.3*0.2*0.1 (within 3%) and writes matching particles."""
    v, f = box((0.3, 0.2, 0.1))
    _obj(tmp_path / "box.obj", v, f)
    rc = main(["fill", str(tmp_path / "box.obj"), "--out", str(tmp_path / "p.ply"), "--resolution", "32"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "mesh" and s["particles"] == s["surface"] + s["interior"] > 0
    assert abs(s["volume_m3"] / 0.006 - 1) < 0.03
    p = read_particles_ply(tmp_path / "p.ply")
    assert len(p) == s["particles"] and np.isclose(p.volume.sum(), s["volume_m3"], rtol=1e-5)
    assert np.isclose(p.cell_size, s["cell_size_m"])


def test_fill_command_gaussians_with_count(tmp_path, capsys):
    """fill auto-detects a 3DGS PLY, hits --count within 5% and reports the sphere's volume within 3%."""
    v, f = uv_sphere(0.25, 64, 32)
    write_gaussian_ply(tmp_path / "g.ply", surface_gaussians(v, f, spacing=0.5 / 48))
    rc = main(["fill", str(tmp_path / "g.ply"), "--out", str(tmp_path / "p.ply"), "--count", "30000"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["kind"] == "gaussians" and abs(s["particles"] / 30000 - 1) < 0.05
    assert abs(s["volume_m3"] / (4 / 3 * np.pi * 0.25**3) - 1) < 0.03


def test_fill_command_bad_input_exit_code_2_names_file_and_property(tmp_path, capsys):
    """A point-cloud PLY with no f_dc_0 and no faces, or a 3DGS PLY missing f_dc_0, gives exit 2 and names the property."""
    pts = {"x": np.zeros(3, np.float32), "y": np.zeros(3, np.float32), "z": np.zeros(3, np.float32)}
    write_ply(tmp_path / "cloud.ply", {"vertex": pts})
    assert main(["fill", str(tmp_path / "cloud.ply"), "--out", str(tmp_path / "o.ply")]) == 2
    err = capsys.readouterr().err
    assert "cloud.ply" in err and "f_dc_0" in err
    assert main(["fill", str(tmp_path / "cloud.ply"), "--gaussians", "--out", str(tmp_path / "o.ply")]) == 2
    err = capsys.readouterr().err
    assert "cloud.ply" in err and "vertex.f_dc_0" in err and "missing" in err
    assert not (tmp_path / "o.ply").exists()
