"""Estimate Material: the operator's plumbing (job -> 'physinteract estimate' -> field on the particle objects),
against the fake backend, whose estimate writes a known field (fake_backend.known_field)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bpy
import fake_backend
import numpy as np
import pytest
from test_bake import build_scene

from physinteract import contract


def _modules(addon: str) -> tuple:
    return tuple(sys.modules[f"{addon}.{m}"] for m in ("bake_session", "properties", "cache_to_scene"))


def _scene_with_preview(scene: bpy.types.Scene, tmp: Path, addon: str) -> tuple[bpy.types.Object, bpy.types.Object]:
    obj, _ = build_scene(scene, tmp, addon)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    return obj, bpy.data.objects[obj.name + " Fill Preview"]


def _attr(obj: bpy.types.Object, name: str) -> np.ndarray:
    a = np.empty(len(obj.data.vertices), np.float32)
    obj.data.attributes[name].data.foreach_get("value", a)
    return a.astype(np.float64)


def test_estimate_stores_the_known_field_as_point_attributes(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                             tmp_path: Path) -> None:
    """Known answer (fake estimate, K iterations): E_i = E0 (1 + 3 i/(N-1)), nu = 0.25 land on the fill preview and the
    particles object as point attributes in particle order, the panel's median E is 2.5 E0, the result is in
    <cache>/estimate, and the bake cache and the mesh's Mesh Cache modifier are untouched."""
    bake_session, props, c2s = _modules(addon)
    obj, preview = _scene_with_preview(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    cache = tmp_path / "cache"
    pc2_before = (cache / "Blob.pc2").read_bytes()
    s = props.scene_settings(empty_scene)
    s.estimate_mode, s.estimate_iterations = "material_only", 4
    assert bpy.ops.physinteract.estimate() == {"FINISHED"}, s.status
    job = contract.read_job(tmp_path / "job")
    E0 = float(job.E[0])
    want_E, want_nu = fake_backend.known_field(job.E, 4, 4)
    assert want_E.max() == pytest.approx(4 * E0)
    for o in (preview, bpy.data.objects[c2s.PARTICLES_OBJECT]):
        np.testing.assert_allclose(_attr(o, "E"), want_E, rtol=1e-6)
        np.testing.assert_allclose(_attr(o, "nu"), want_nu, rtol=1e-6)
    assert s.estimate_E_median == pytest.approx(2.5 * E0, rel=1e-6)
    assert s.estimate_nu_median == pytest.approx(0.25, rel=1e-6)
    assert Path(s.estimate_dir) == cache / "estimate"
    np.testing.assert_allclose(contract.read_material(cache / "estimate", len(job.E))[0], want_E)
    assert contract.read_cache_manifest(cache / "estimate")["status"] == "complete"
    log = (tmp_path / "job" / "backend_estimate_log.txt")
    assert log.is_file()
    assert (cache / "Blob.pc2").read_bytes() == pc2_before
    assert Path(bpy.path.abspath(obj.modifiers[c2s.MODIFIER_NAME].filepath)) == cache / "Blob.pc2"
    assert not s.is_running and "median E" in s.status
    assert not bake_session.staging_dir(cache / "estimate").exists()


def test_estimate_progress_reports_each_iteration_then_cancel_keeps_the_field_so_far(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress: the panel's iteration count rises 1, 2, ... with loss 1/(k+1) and the bar's fraction k/K; Cancel stops
    after k iterations and the kept field is the fake's field after k (known_field(E0, k, K)); no tick took > 50 ms."""
    bake_session, props, _ = _modules(addon)
    monkeypatch.setenv("PHYSINTERACT_FAKE_ITER_DELAY", "0.15")
    _, preview = _scene_with_preview(empty_scene, tmp_path, addon)
    session = bake_session.EstimateSession(empty_scene, fake, "joint", 40)
    session.start()
    s = props.scene_settings(empty_scene)
    assert s.is_running and bpy.ops.physinteract.cancel.poll() and not bpy.ops.physinteract.estimate.poll()
    seen: list[int] = []
    deadline = time.monotonic() + 60
    while s.estimate_progress_iteration < 3:
        assert session.tick() == bake_session.RUNNING, session.message
        assert time.monotonic() < deadline
        k = s.estimate_progress_iteration
        if k and (not seen or seen[-1] != k):
            seen.append(k)
            assert s.estimate_loss == pytest.approx(1.0 / (k + 1), rel=1e-5)
            assert s.progress == pytest.approx(k / 40, rel=1e-5)
            assert f"iteration {k}/40" in s.status and "ETA" in s.status
        time.sleep(0.02)
    assert seen == sorted(seen) and seen[-1] >= 3
    bpy.ops.physinteract.cancel()
    while session.tick() == bake_session.RUNNING:
        time.sleep(0.02)
    assert session.state == bake_session.CANCELLED and session.changed_scene, session.message
    assert session.max_tick_ms < 50.0
    k = s.estimate_progress_iteration
    assert 3 <= k < 40 and f"iteration {k}" in session.message
    job = contract.read_job(tmp_path / "job")
    want_E, _ = fake_backend.known_field(job.E, k, 40)
    np.testing.assert_allclose(_attr(preview, "E"), want_E, rtol=1e-6)
    assert contract.read_cache_manifest(tmp_path / "cache" / "estimate")["status"] == "cancelled"
    assert not s.is_running and not s.cancel_requested and bpy.ops.physinteract.estimate.poll()


def test_failing_estimate_leaves_scene_and_previous_estimate_unchanged(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend failing at iteration 2: the operator reports the backend's message, and the stored field, the panel's
    median, the previous estimate's files and the objects are exactly as before; nothing is left in the staging folder."""
    bake_session, props, _ = _modules(addon)
    _, preview = _scene_with_preview(empty_scene, tmp_path, addon)
    s = props.scene_settings(empty_scene)
    s.estimate_iterations = 2
    assert bpy.ops.physinteract.estimate() == {"FINISHED"}
    est = tmp_path / "cache" / "estimate"

    def state() -> dict:
        return {
            "objects": sorted(o.name for o in bpy.data.objects),
            "E": _attr(preview, "E").tolist(), "nu": _attr(preview, "nu").tolist(),
            "median": (s.estimate_E_median, s.estimate_nu_median, s.estimate_dir),
            "files": sorted((p.relative_to(est).as_posix(), p.read_bytes()) for p in est.rglob("*") if p.is_file()),
        }

    before = state()
    props.object_settings(bpy.data.objects["Blob"]).youngs_modulus *= 10  # a different guess: a new run would differ
    monkeypatch.setenv("PHYSINTERACT_FAKE_FAIL_AT", "2")
    s.estimate_iterations = 5
    with pytest.raises(RuntimeError, match="fake estimate failed at iteration 2"):
        bpy.ops.physinteract.estimate()
    assert state() == before
    assert "failed" in s.status and not s.is_running
    assert not bake_session.staging_dir(est).exists()


def test_estimate_status_line_follows_the_estimator_stages(empty_scene: bpy.types.Scene, addon: str) -> None:
    """The status line names the stage the latest events show: preparing, the lag search, a stiffness scan, then
    iterations with the loss and ETA, and the iteration counters on the scene's settings follow the progress event."""
    bake_session, props, _ = _modules(addon)
    session = bake_session.EstimateSession(empty_scene, sys.executable)

    class Events:  # what BackendProcess keeps: the last event of each kind
        latest: dict = {}

    proc = Events()
    assert session.running_status(proc) == (0.0, "estimate: preparing")
    proc.latest = {"scan": {"event": "scan", "loss": 0.05}, "lag_scan": {"event": "lag_scan", "loss": 0.031}}
    assert "aligning the trajectory in time (loss 0.031)" in session.running_status(proc)[1]
    proc.latest["split_scan"] = {"event": "split_scan", "loss": 0.02}
    proc.latest["rescan"] = {"event": "rescan", "loss": 0.025}
    assert "scanning the stiffness (loss 0.02)" in session.running_status(proc)[1]
    proc.latest["progress"] = {"event": "progress", "iteration": 7, "iterations": 15, "loss": 0.0187, "eta_s": 42.0,
                               "fraction": 7 / 15}
    fraction, text = session.running_status(proc)
    assert fraction == pytest.approx(7 / 15) and text == "estimate: iteration 7/15, loss 0.0187, ETA 42 s"
    s = props.scene_settings(empty_scene)
    assert (s.estimate_progress_iteration, s.estimate_progress_total) == (7, 15)
