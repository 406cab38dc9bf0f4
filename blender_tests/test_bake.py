"""End-to-end bake: Blender scene -> job -> backend subprocess -> cache -> Mesh Cache.

Each test runs against two backends:
- "fake": blender_tests/fake_backend.py behind an executable wrapper, a stand-in
  that moves every point rigidly by the trajectory's displacement (known answer,
  controllable speed); it tests the add-on's plumbing;
- "real": ``python -m physinteract simulate`` (skipped until
  physinteract.commands.simulate exists).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import bmesh
import bpy
import numpy as np
import pytest
from helpers import FAKE_STEP_S, TESTS, TICK_LIMIT_MS, add_grip, eval_local, expected_local, set_prefs_python, use_target

from physinteract import contract

FRAMES = (1, 6)  # scene frame range of the tiny scene


def _modules(addon: str) -> tuple:
    return tuple(sys.modules[f"{addon}.{m}"] for m in ("bake_session", "cache_to_scene", "properties", "cli"))


def build_scene(scene: bpy.types.Scene, tmp: Path, addon: str, scale: float = 1.0) -> tuple[bpy.types.Object, bpy.types.Object]:
    """From an empty scene: an icosphere (radius 0.05 units) and an Empty keyed at
    frames 1 and 6 (its second key 0.02 units higher) as the grasp trajectory."""
    props = sys.modules[f"{addon}.properties"]
    mesh = bpy.data.meshes.new("Blob")
    bm = bmesh.new()
    bmesh.ops.create_icosphere(bm, subdivisions=1, radius=0.05)
    bm.to_mesh(mesh)
    bm.free()
    obj = bpy.data.objects.new("Blob", mesh)
    obj.location = (0.2, 0.0, 0.3)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.update()
    top = max((obj.matrix_world @ v.co for v in mesh.vertices), key=lambda p: p.z)
    empty = add_grip(scene, top, FRAMES)
    use_target(props, scene, obj, tmp)
    o = props.object_settings(obj)
    o.scale = scale
    o.trajectory = empty
    o.contact_source = "NEAREST"
    o.contact_radius = 0.01
    o.material_preset = "JELLY"
    return obj, empty


def test_bake_plays_cache_positions_at_each_frame(empty_scene: bpy.types.Scene, addon: str, backend: str, tmp_path: Path) -> None:
    """Known answer: after a bake, at frame N the evaluated mesh vertices (and the particles
    object's) equal the cache's positions of frame N; a changed keyframe changes the bake."""
    _, cache_to_scene, props, _ = _modules(addon)
    set_prefs_python(addon, backend)
    scene = empty_scene
    obj, empty = build_scene(scene, tmp_path, addon)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}, props.scene_settings(scene).status
    cache = tmp_path / "cache"
    assert contract.completed_frames(cache, verify=True) == list(range(FRAMES[0], FRAMES[1] + 1))
    md = obj.modifiers[cache_to_scene.MODIFIER_NAME]
    assert md.type == "MESH_CACHE" and Path(bpy.path.abspath(md.filepath)) == cache / "Blob.pc2"
    particles = bpy.data.objects[cache_to_scene.PARTICLES_OBJECT]
    for frame in (1, 3, 6):
        scene.frame_set(frame)
        np.testing.assert_allclose(eval_local(obj), expected_local(cache, frame, "Blob"), atol=1e-5)
        world = np.array(particles.matrix_world)
        pe = eval_local(particles) @ world[:3, :3].T + world[:3, 3]
        np.testing.assert_allclose(pe, contract.read_frame(cache, frame)["particles.positions"], atol=1e-5)
    last_before = eval_local(obj)
    assert not np.allclose(last_before, expected_local(cache, 1, "Blob"), atol=1e-4), "the bake did not move the mesh"

    # Move the second key 0.03 higher: the bake changes at the last frame, not at the first.
    fc = _fcurve(empty, "location", 2)
    fc.keyframe_points[1].co.y += 0.03
    fc.update()
    first_before = contract.read_frame(cache, 1)["Blob.positions"].copy()
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    scene.frame_set(6)
    last_after = eval_local(obj)
    np.testing.assert_allclose(last_after, expected_local(cache, 6, "Blob"), atol=1e-5)
    assert np.abs(last_after - last_before).max() > 1e-3
    if backend != sys.executable:  # the fake's frame 1 is the rest state, whatever comes later
        np.testing.assert_allclose(contract.read_frame(cache, 1)["Blob.positions"], first_before, atol=1e-6)


def test_fake_bake_moves_mesh_by_trajectory_displacement_with_scale(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """Known answer (fake backend, rigid translation): with 2 m per unit, the baked mesh moves by
    exactly the Empty's displacement in Blender units; the job holds it in metres (x2)."""
    tmp = tmp_path_factory.mktemp("scaled")
    scene = empty_scene
    obj, empty = build_scene(scene, tmp, addon, scale=2.0)
    rest = np.array([v.co[:] for v in obj.data.vertices])
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    job = contract.read_job(tmp / "job")
    np.testing.assert_allclose(np.diff(job.trajectory[[0, -1]], axis=0)[0], [0, 0, 0.04], atol=1e-6)  # float32 keys
    p1 = _empty_at(scene, empty, 1)
    for frame in (1, 4, 6):
        d = _empty_at(scene, empty, frame) - p1  # units; the object is unrotated and unscaled
        scene.frame_set(frame)
        np.testing.assert_allclose(eval_local(obj), rest + d, atol=1e-5)


def test_the_backends_warnings_show_until_a_run_without_any(empty_scene: bpy.types.Scene, addon: str,
                                                            fake: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Warnings in the backend's "resolution" event (before the first frame: thin parts, too few particles
    per cell) and "tearing" event (after the last) land in the scene's backend_warning, which the panels
    draw; the next run without either clears it."""
    from test_ui import _draw

    _, _, props, _ = _modules(addon)
    scene = empty_scene
    build_scene(scene, tmp_path, addon)
    text = "42% of the particles lie in parts thinner than 4 grid cells"
    tear = "the simulation tore: 3.0% of the particles came apart"
    monkeypatch.setenv("PHYSINTERACT_FAKE_WARNING", text)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    assert props.scene_settings(scene).backend_warning == text
    lines = [e.removeprefix("label:") for e in _draw("PHYSINTERACT_PT_bake") if e.startswith("label:")]
    first = next(i for i, line in enumerate(lines) if line.startswith("42%"))
    assert " ".join(lines[first:first + 2]) == text and len(lines[first]) <= 48  # wrapped to the sidebar's width
    monkeypatch.setenv("PHYSINTERACT_FAKE_TEARING", tear)  # both: the run's warnings in the order they came
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    assert props.scene_settings(scene).backend_warning == f"{text} {tear}"
    monkeypatch.delenv("PHYSINTERACT_FAKE_WARNING")
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    assert props.scene_settings(scene).backend_warning == tear
    monkeypatch.delenv("PHYSINTERACT_FAKE_TEARING")
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    assert props.scene_settings(scene).backend_warning == ""


def _fcurve(obj: bpy.types.Object, path: str, index: int) -> bpy.types.FCurve:
    from bpy_extras import anim_utils

    ad = obj.animation_data
    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    fc = bag.fcurves.find(path, index=index)
    assert fc is not None
    return fc


def _empty_at(scene: bpy.types.Scene, empty: bpy.types.Object, frame: int) -> np.ndarray:
    cur = scene.frame_current
    scene.frame_set(frame)
    p = np.array(empty.matrix_world.translation)
    scene.frame_set(cur)
    return p


def test_cancel_keeps_every_completed_frame_valid(empty_scene: bpy.types.Scene, addon: str, backend: str,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel mid-bake: every completed frame passes its SHA-256 check, the PC2 covers exactly
    the contiguous completed frames and plays them, the scene stays usable; no tick waited for the backend (TICK_LIMIT_MS)."""
    bake_session, cache_to_scene, props, _ = _modules(addon)
    if backend != sys.executable:
        monkeypatch.setenv("PHYSINTERACT_FAKE_FRAME_DELAY", str(FAKE_STEP_S))
    scene = empty_scene
    obj, _ = build_scene(scene, tmp_path, addon)
    scene.frame_end = 40
    session = bake_session.BackendSession(scene, backend, "simulate")
    session.start()
    staging = bake_session.staging_dir(tmp_path / "cache")
    deadline = time.monotonic() + 120
    while len(contract.completed_frames(staging)) < 2:
        assert session.tick() == bake_session.RUNNING, session.message
        assert time.monotonic() < deadline, "the backend wrote no frames in 120 s"
        time.sleep(0.05)
    bpy.ops.physinteract.cancel()
    assert props.scene_settings(scene).cancel_requested
    while session.tick() == bake_session.RUNNING:
        time.sleep(0.05)
    assert session.state == bake_session.CANCELLED, session.message
    print(f"max tick {session.max_tick_ms:.2f} ms over {session.ticks} ticks")
    assert session.max_tick_ms < TICK_LIMIT_MS
    assert props.scene_settings(scene).max_tick_ms == pytest.approx(session.max_tick_ms)
    cache = tmp_path / "cache"
    frames = contract.completed_frames(cache, verify=True)
    assert frames == session.kept_frames and 2 <= len(frames) < 40
    assert frames == list(range(frames[0], frames[0] + len(frames)))
    assert contract.read_cache_manifest(cache)["status"] == "cancelled"
    pts, start, _ = contract.read_pc2(cache / "Blob.pc2")
    assert start == frames[0] and len(pts) == len(frames)
    for f in frames:
        scene.frame_set(f)
        np.testing.assert_allclose(eval_local(obj), expected_local(cache, f, "Blob"), atol=1e-5)
    scene.frame_set(frames[-1] + 5)  # past the cache: holds the last completed frame
    np.testing.assert_allclose(eval_local(obj), expected_local(cache, frames[-1], "Blob"), atol=1e-5)
    s = props.scene_settings(scene)
    assert not s.is_running and not s.cancel_requested
    assert bpy.ops.physinteract.bake.poll()
    assert not staging.exists()


def test_failing_backend_leaves_scene_as_it_was(empty_scene: bpy.types.Scene, addon: str, backend: str,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad job (E.npy missing): the bake is CANCELLED with the backend's message naming
    the file, and the scene and its previous bake are exactly as before."""
    bake_session, cache_to_scene, props, _ = _modules(addon)
    set_prefs_python(addon, backend)
    scene = empty_scene
    obj, _ = build_scene(scene, tmp_path, addon)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    cache = tmp_path / "cache"
    scene.frame_set(4)

    def state() -> dict:
        return {
            "objects": sorted(o.name for o in bpy.data.objects),
            "modifiers": {o.name: [(m.name, m.type, getattr(m, "filepath", "")) for m in o.modifiers] for o in bpy.data.objects},
            "frame": scene.frame_current,
            "coords": eval_local(obj).round(7).tolist(),
            "cache_files": sorted((p.relative_to(cache).as_posix(), p.stat().st_size) for p in cache.rglob("*")),
            "pc2": (cache / "Blob.pc2").read_bytes(),
        }

    before = state()
    s2j = sys.modules[f"{addon}.scene_to_job"]
    original = s2j.write_scene_job

    def bad_job(sc: bpy.types.Scene):  # the job as written, then broken: E.npy removed
        job, info = original(sc)
        os.remove(info.job_dir / "E.npy")
        return job, info

    monkeypatch.setattr(s2j, "write_scene_job", bad_job)
    session = bake_session.BackendSession(scene, backend, "simulate")
    assert bake_session.run_blocking(session) == bake_session.FAILED
    assert "E.npy" in session.message, session.message
    assert "E.npy" in props.scene_settings(scene).status
    # Through the operator: the ERROR report carries the message (bpy.ops turns it into RuntimeError).
    with pytest.raises(RuntimeError, match="E.npy"):
        bpy.ops.physinteract.bake()
    assert state() == before
    assert not props.scene_settings(scene).is_running
    assert not bake_session.staging_dir(cache).exists()  # nothing left beside the cache either


def test_cli_bake_handler(empty_scene: bpy.types.Scene, addon: str, backend: str, tmp_path: Path) -> None:
    """The 'physinteract bake' CLI handler bakes the active scene (exit 0) and rejects bad
    arguments (exit 2). The bpy module cannot run '--command', so the handler is called directly."""
    _, cache_to_scene, _, cli = _modules(addon)
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    assert cli.bake_command(["bake", "--python", backend, "--cache", str(tmp_path / "cli_cache")]) == 0
    assert contract.read_cache_manifest(tmp_path / "cli_cache")["status"] == "complete"
    assert cache_to_scene.MODIFIER_NAME in obj.modifiers
    assert cli.bake_command(["bake", "--scene", "NoSuchScene"]) == 2
    assert cli.bake_command(["frobnicate"]) == 2


def test_bake_blend_script_bakes_and_saves_headless(empty_scene: bpy.types.Scene, addon: str, backend: str,
                                                    tmp_path: Path) -> None:
    """The same scene baked in the UI, then saved and baked headlessly through the '-c physinteract bake' handler
    (scripts/bake_blend.py: bpy module, separate process) into another folder, gives the same cache (every frame's
    positions of every point set, the same PC2 files); reopened, the mesh plays the headless cache at frame 5."""
    _, cache_to_scene, props, _ = _modules(addon)
    set_prefs_python(addon, backend)
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}  # in the UI
    ui_cache, headless_cache = tmp_path / "cache", tmp_path / "headless_cache"
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_USER")}
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "user")
    proc = subprocess.run([sys.executable, str(TESTS.parent / "scripts" / "bake_blend.py"), str(blend), "--python", backend,
                           "--cache", str(headless_cache), "--save"], capture_output=True, text=True, env=env, check=False,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    frames = contract.completed_frames(ui_cache, verify=True)
    assert frames == contract.completed_frames(headless_cache, verify=True) == list(range(FRAMES[0], FRAMES[1] + 1))
    for f in frames:
        ui, headless = contract.read_frame(ui_cache, f), contract.read_frame(headless_cache, f)
        assert sorted(ui) == sorted(headless)
        for key in ui:
            np.testing.assert_array_equal(headless[key], ui[key], err_msg=f"frame {f} {key}")
    for name in ("Blob.pc2", "particles.pc2"):
        assert (headless_cache / name).read_bytes() == (ui_cache / name).read_bytes()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects["Blob"]
    assert Path(bpy.path.abspath(props.scene_settings(bpy.context.scene).cache_dir)) == headless_cache  # saved with --save
    md = obj.modifiers[cache_to_scene.MODIFIER_NAME]
    assert md.filepath.startswith("//")  # relative to the saved .blend
    assert Path(bpy.path.abspath(md.filepath)) == headless_cache / "Blob.pc2"
    bpy.context.scene.frame_set(5)
    np.testing.assert_allclose(eval_local(obj), expected_local(headless_cache, 5, "Blob"), atol=1e-5)


class _Event:
    def __init__(self, kind: str) -> None:
        self.type = kind


@pytest.mark.parametrize("press_esc", [False, True])
def test_modal_handler_ticks_finish_the_bake_and_never_block_50ms(empty_scene: bpy.types.Scene, addon: str, backend: str,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  press_esc: bool) -> None:
    """The bake operator's modal() (driven with TIMER events, as Blender's event loop would;
    the bpy module has none) follows the backend to the end, ESC cancels keeping completed
    frames, and no modal tick waits for the backend (TICK_LIMIT_MS, measured inside the modal)."""
    bake_session, cache_to_scene, props, _ = _modules(addon)
    if backend != sys.executable:
        monkeypatch.setenv("PHYSINTERACT_FAKE_FRAME_DELAY", str(FAKE_STEP_S))
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    empty_scene.frame_end = 30 if press_esc else 6
    op_cls = bpy.types.PHYSINTERACT_OT_bake
    reports: list[tuple[set, str]] = []
    session = bake_session.BackendSession(empty_scene, backend, "simulate")
    session.start()
    wm = bpy.context.window_manager
    op = type("ModalStandIn", (), {})()  # a stand-in for the operator instance Blender would hold
    op._session, op._timer = session, wm.event_timer_add(0.1, window=bpy.context.window)
    op.report = lambda kind, msg: reports.append((kind, msg))
    op._report_end = lambda state: op_cls._report_end(op, state)
    staging = bake_session.staging_dir(tmp_path / "cache")
    deadline = time.monotonic() + 180
    result = {"PASS_THROUGH"}
    while result == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        if press_esc and len(contract.completed_frames(staging)) >= 2 and not props.scene_settings(empty_scene).cancel_requested:
            assert op_cls.modal(op, bpy.context, _Event("ESC")) == {"PASS_THROUGH"}
        result = op_cls.modal(op, bpy.context, _Event("TIMER"))
        time.sleep(0.02)
    print(f"modal: {session.ticks} ticks, longest {session.max_tick_ms:.2f} ms")
    assert session.max_tick_ms < TICK_LIMIT_MS
    assert op._timer is None
    frames = contract.completed_frames(tmp_path / "cache", verify=True)
    if press_esc:
        assert result == {"FINISHED"} and session.state == bake_session.CANCELLED  # kept frames: undoable change
        assert 2 <= len(frames) < 30 and reports[-1][0] == {"WARNING"}
    else:
        assert result == {"FINISHED"} and session.state == bake_session.FINISHED and reports[-1][0] == {"INFO"}
        assert frames == list(range(1, 7))
    assert cache_to_scene.MODIFIER_NAME in obj.modifiers
