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
from helpers import FAKE_STEP_S, TICK_LIMIT_MS
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
    """Known answer (fake estimate, K iterations): E_i = E0 (1 + 3 i/(N-1)), nu = 0.25 and the fake's contact set
    (the job's with particle 0 toggled) land on the fill preview and the particles object as point attributes in
    particle order, the panel's median E is 2.5 E0, the result is in
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
    want_contact = np.zeros(len(job.E), bool)
    want_contact[fake_backend.known_contact(job.contact)] = True
    assert want_contact.sum() > 0 and want_contact.sum() != len(job.contact)
    for o in (preview, bpy.data.objects[c2s.PARTICLES_OBJECT]):
        np.testing.assert_allclose(_attr(o, "E"), want_E, rtol=1e-6)
        np.testing.assert_allclose(_attr(o, "nu"), want_nu, rtol=1e-6)
        got = np.zeros(len(job.E), bool)
        o.data.attributes[c2s.CONTACT_ATTRIBUTE].data.foreach_get("value", got)
        np.testing.assert_array_equal(got, want_contact)
    assert s.estimate_E_median == pytest.approx(2.5 * E0, rel=1e-6)
    assert s.estimate_nu_median == pytest.approx(0.25, rel=1e-6)
    assert s.estimate_contact_count == want_contact.sum()
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
    after k iterations and the kept field is the fake's field after k (known_field(E0, k, K)); no tick waited for the
    backend (TICK_LIMIT_MS)."""
    bake_session, props, _ = _modules(addon)
    monkeypatch.setenv("PHYSINTERACT_FAKE_ITER_DELAY", str(FAKE_STEP_S))
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
    assert session.max_tick_ms < TICK_LIMIT_MS
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
            "median": (s.estimate_E_median, s.estimate_nu_median, s.estimate_contact_count, s.estimate_dir),
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


def test_estimate_status_line_follows_the_estimator_stages(empty_scene: bpy.types.Scene, addon: str, tmp_path: Path) -> None:
    """The status line names the stage of the most recent event the backend wrote: preparing, the lag search, the
    contact search, a stiffness scan (again after a later search), then iterations with the loss and ETA, and the
    iteration counters on the scene's settings follow the progress event."""
    bake_session, props, _ = _modules(addon)
    backend_process = sys.modules[f"{addon}.backend_process"]
    session = bake_session.EstimateSession(empty_scene, sys.executable)
    events = contract.EventLog(tmp_path / contract.EVENTS_FILE)
    proc = backend_process.BackendProcess([sys.executable], tmp_path, tmp_path / "log.txt")  # never started: events only

    def status_after(*written: tuple[str, float]) -> str:
        for kind, loss in written:
            events.emit(kind, loss=loss)
        proc.read_events()
        return session.running_status(proc)[1]

    assert status_after() == "estimate: preparing"
    assert "scanning the stiffness (loss 0.05)" in status_after(("start", 0.0), ("scan", 0.05))
    assert "aligning the trajectory in time (loss 0.031)" in status_after(("lag_scan", 0.031))
    assert "fitting the contact region (loss 0.027)" in status_after(("contact_scan", 0.027))
    assert "scanning the stiffness (loss 0.02)" in status_after(("split_scan", 0.02))
    assert "aligning the trajectory in time (loss 0.03)" in status_after(("lag_scan", 0.03))
    assert "scanning the stiffness (loss 0.019)" in status_after(("scan", 0.019))  # a kind seen before, now the latest
    events.emit("progress", iteration=7, iterations=15, loss=0.0187, eta_s=42.0, fraction=7 / 15)
    proc.read_events()
    fraction, text = session.running_status(proc)
    assert fraction == pytest.approx(7 / 15) and text == "estimate: iteration 7/15, loss 0.0187, ETA 42 s"
    s = props.scene_settings(empty_scene)
    assert (s.estimate_progress_iteration, s.estimate_progress_total) == (7, 15)
