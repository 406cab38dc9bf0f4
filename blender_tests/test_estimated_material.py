"""After an Estimate: the Bake simulates with the estimated field, and the field shows in the scene
(colour attributes on the particles, a legend in the Material panel)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy
import fake_backend
import numpy as np
import pytest
from test_bake import build_scene
from test_ui import _draw

from physinteract import contract


def _modules(addon: str) -> tuple:
    return tuple(sys.modules[f"{addon}.{m}"] for m in ("bake_session", "properties", "cache_to_scene", "field_display"))


def _start_event(cache: Path) -> dict:
    events, _ = contract.follow_events(cache / contract.EVENTS_FILE, 0)
    return next(e for e in events if e.get("event") == "start")


def _estimated_scene(scene: bpy.types.Scene, tmp: Path, addon: str, iterations: int = 4) -> bpy.types.Object:
    """The tiny grasp scene with its fill preview, estimated by the fake backend (known field, K = iterations)."""
    props = sys.modules[f"{addon}.properties"]
    obj, _ = build_scene(scene, tmp, addon)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    s = props.scene_settings(scene)
    s.estimate_mode, s.estimate_iterations = "material_only", iterations
    assert bpy.ops.physinteract.estimate() == {"FINISHED"}, s.status
    return obj


def test_bake_after_estimate_passes_the_estimate_folder_and_simulates_its_field(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path) -> None:
    """Known answer: after a fake estimate (E_i = E0 (1 + 3 i/(N-1)), median 2.5 E0), the bake's argument list ends with
    --material <cache>/estimate and the backend simulates with median E 2.5 E0; with 'Use Estimated Material' off the
    argument list has no --material and the backend uses E0; before any estimate there is none either."""
    bake_session, props, _, _ = _modules(addon)
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    s = props.scene_settings(empty_scene)
    assert s.use_estimated_material  # on by default
    cache = tmp_path / "cache"
    session = bake_session.BackendSession(empty_scene, props_python(addon), "simulate")
    assert bake_session.run_blocking(session) == bake_session.FINISHED
    assert "--material" not in session.process.argv and session.material_dir is None  # no estimate yet
    E0 = float(props.object_settings(obj).youngs_modulus)

    s.estimate_mode, s.estimate_iterations = "material_only", 4
    assert bpy.ops.physinteract.estimate() == {"FINISHED"}, s.status
    assert bake_session.has_estimate(cache)
    session = bake_session.BackendSession(empty_scene, props_python(addon), "simulate")
    assert bake_session.run_blocking(session) == bake_session.FINISHED, session.message
    assert session.process.argv[-2:] == ["--material", str(cache / "estimate")]
    start = _start_event(cache)
    assert Path(start["material"]) == cache / "estimate"
    assert start["E_median"] == pytest.approx(2.5 * E0, rel=1e-6)
    assert "estimated material" in s.status

    s.use_estimated_material = False
    session = bake_session.BackendSession(empty_scene, props_python(addon), "simulate")
    assert bake_session.run_blocking(session) == bake_session.FINISHED
    assert "--material" not in session.process.argv
    assert _start_event(cache)["E_median"] == pytest.approx(E0, rel=1e-6)
    log = "Bake panel: " + json.dumps(_draw("PHYSINTERACT_PT_bake"))
    assert "prop:use_estimated_material" in log


def props_python(addon: str) -> str:
    return str(bpy.context.preferences.addons[addon].preferences.python_path)


def test_bake_refuses_an_estimate_of_another_particle_count(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                           tmp_path: Path) -> None:
    """An estimate of N particles cannot drive a job of M != N: the Bake reports it (naming the way out) and starts nothing."""
    bake_session, props, _, _ = _modules(addon)
    _estimated_scene(empty_scene, tmp_path, addon)
    est = tmp_path / "cache" / "estimate"
    E, nu = contract.read_material(est, len(contract.read_job(tmp_path / "job").E))
    contract.atomic_save_npy(est / "material_E.npy", E[:-1])
    contract.atomic_save_npy(est / "material_nu.npy", nu[:-1])
    with pytest.raises(RuntimeError, match="Use Estimated Material"):
        bpy.ops.physinteract.bake()
    assert not props.scene_settings(empty_scene).is_running


def test_estimated_field_colour_attributes_are_monotone_in_log_E_and_the_legend_draws(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path) -> None:
    """The E_color attribute (point domain, one colour per particle) puts log10 E on a ramp whose luminance rises with E:
    sorting by E sorts the colours' luminance, the softest particle has the ramp's first colour and the stiffest its last;
    the Material panel draws the legend (min, median, max E with their colours, which are the ramp's at those E)."""
    bake_session, props, c2s, fd = _modules(addon)
    _estimated_scene(empty_scene, tmp_path, addon)
    job = contract.read_job(tmp_path / "job")
    E, _ = fake_backend.known_field(job.E, 4, 4)
    s = props.scene_settings(empty_scene)
    mesh = bpy.data.objects["Blob Fill Preview"].data
    attr = mesh.attributes[c2s.E_COLOR_ATTRIBUTE]
    assert (attr.domain, attr.data_type) == ("POINT", "FLOAT_COLOR") and len(attr.data) == len(E)
    assert mesh.color_attributes.active_color.name == c2s.E_COLOR_ATTRIBUTE
    rgba = np.empty(len(E) * 4, np.float32)
    attr.data.foreach_get("color", rgba)
    rgba = rgba.reshape(-1, 4)
    luminance = rgba[:, :3] @ np.array([0.2126, 0.7152, 0.0722])
    order = np.argsort(E, kind="stable")
    assert np.all(np.diff(luminance[order]) >= -1e-6)
    assert luminance[order[-1]] - luminance[order[0]] > 0.5  # the field spans the ramp
    np.testing.assert_allclose(rgba[order[0], :3], fd.RAMP_LINEAR[0], atol=1e-5)
    np.testing.assert_allclose(rgba[order[-1], :3], fd.RAMP_LINEAR[-1], atol=1e-5)
    nu_attr = mesh.attributes[c2s.NU_COLOR_ATTRIBUTE]
    assert (nu_attr.domain, len(nu_attr.data)) == ("POINT", len(E))
    assert (s.estimate_E_min, s.estimate_E_max) == (pytest.approx(E.min(), rel=1e-6), pytest.approx(E.max(), rel=1e-6))
    np.testing.assert_allclose(s.legend_color_min, fd.RAMP_LINEAR[0], atol=1e-6)
    np.testing.assert_allclose(s.legend_color_max, fd.RAMP_LINEAR[-1], atol=1e-6)
    t_median = (np.log10(np.median(E)) - np.log10(E.min())) / (np.log10(E.max()) - np.log10(E.min()))
    np.testing.assert_allclose(s.legend_color_median, fd.ramp(np.array([t_median]))[0], atol=1e-6)
    log = _draw("PHYSINTERACT_PT_material")
    assert {"prop:legend_color_min", "prop:legend_color_median", "prop:legend_color_max"} <= set(log)
    assert bake_session.has_estimate(tmp_path / "cache")


def _frames(cache: Path, name: str) -> np.ndarray:
    return np.stack([contract.read_frame(cache, f)[f"{name}.positions"] for f in contract.completed_frames(cache)])


def test_real_bake_with_the_estimated_field_differs_from_the_initial_material(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path) -> None:
    """Real 'physinteract simulate': a stiffer field (the fake estimate's E0 (1 + 3 i/(N-1)), up to 4x E0) changes the baked
    motion; the control, a second bake with the initial material, reproduces the first exactly (so the difference is the
    material's, not noise)."""
    if not _has_real_simulate():
        pytest.skip("physinteract.commands.simulate is not importable")
    bake_session, props, _, _ = _modules(addon)
    _estimated_scene(empty_scene, tmp_path, addon)
    cache = tmp_path / "cache"
    s = props.scene_settings(empty_scene)
    results = {}
    for label, use in (("initial", False), ("initial_again", False), ("estimated", True)):
        s.use_estimated_material = use
        session = bake_session.BackendSession(empty_scene, sys.executable, "simulate")
        assert bake_session.run_blocking(session, timeout_s=120) == bake_session.FINISHED, session.message
        assert ("--material" in session.process.argv) == use
        results[label] = _frames(cache, "particles")
    np.testing.assert_array_equal(results["initial"], results["initial_again"])
    diff = np.abs(results["estimated"] - results["initial"]).max()
    print(f"largest particle offset between the estimated-field and initial-material bakes: {diff:.3g} m")
    assert diff > 1e-5
    np.testing.assert_array_equal(results["estimated"][0], results["initial"][0])  # the rest frame is the same


def _has_real_simulate() -> bool:
    import importlib.util

    return importlib.util.find_spec("physinteract.commands.simulate") is not None
