"""Initialise from Video (issue 6's button): 'physinteract init' out of process, then the interaction in the scene,
against the fake backend, whose init writes a known interaction (fake_backend.known_initialisation)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import bpy
import fake_backend
import numpy as np
import pytest
from helpers import FAKE_STEP_S, TICK_LIMIT_MS
from test_bake import FRAMES, build_scene

from physinteract import contract
from physinteract.imageio import write_png


def _modules(addon: str) -> tuple:
    return tuple(sys.modules[f"{addon}.{m}"] for m in ("init_session", "properties", "bake_session"))


def add_clip(scene: bpy.types.Scene, tmp: Path, addon: str) -> bpy.types.MovieClip:
    """A Movie Clip of tiny PNG frames covering the scene's range, as the scene's video."""
    for f in range(scene.frame_start, scene.frame_end + 1):
        write_png(tmp / "video" / f"frame_{f:04d}.png", np.full((6, 8, 3), 0.1 * (f % 10)))
    clip = bpy.data.movieclips.load(str(tmp / "video" / f"frame_{scene.frame_start:04d}.png"))
    clip.frame_start = scene.frame_start
    sys.modules[f"{addon}.properties"].scene_settings(scene).clip = clip
    return clip


def _keys(empty: bpy.types.Object, init_session) -> list[list[tuple[float, float, str]]]:
    """Per location axis: (frame, value, interpolation) of every key."""
    fcs = sorted(init_session.location_fcurves(empty), key=lambda fc: fc.array_index)
    return [[(kp.co.x, kp.co.y, kp.interpolation) for kp in fc.keyframe_points] for fc in fcs]


def test_init_keys_the_trajectory_empty_and_shows_the_contact(empty_scene: bpy.types.Scene, addon: str, fake: str,
                                                              tmp_path: Path) -> None:
    """Known answer: the Empty's location keys are T0 (key k at frame frame_start + t_k fps, value T0_k in units, linear),
    so at a frame between keys it sits on the straight line between them; the interaction type is the backend's; the
    contact object holds the contact particles' positions; a following bake's job carries that contact and T0."""
    init_session, props, _ = _modules(addon)
    obj, empty = build_scene(empty_scene, tmp_path, addon)
    add_clip(empty_scene, tmp_path, addon)
    assert bpy.ops.physinteract.init_from_video() == {"FINISHED"}
    job = contract.read_job(tmp_path / "job")
    kind, contact, times, traj = fake_backend.known_initialisation(job, None)
    np.testing.assert_array_equal(job.contact, contact)
    o = props.object_settings(obj)
    assert o.interaction_type == kind == "point_non_adherent"
    assert o.contact_source == "VIDEO" and o.trajectory == empty
    frames = FRAMES[0] + times * job.fps
    keys = _keys(empty, init_session)
    assert len(keys) == 3
    for axis in range(3):
        np.testing.assert_allclose([k[0] for k in keys[axis]], frames, atol=1e-4)
        np.testing.assert_allclose([k[1] for k in keys[axis]], traj[:, axis], atol=1e-6)
        assert {k[2] for k in keys[axis]} == {"LINEAR"}
    f = 2  # between the first two keys
    empty_scene.frame_set(f)
    want = np.array([np.interp(f, frames, traj[:, a]) for a in range(3)])
    np.testing.assert_allclose(np.array(empty.matrix_world.translation), want, atol=1e-6)
    shown = bpy.data.objects[obj.name + init_session.CONTACT_SUFFIX]
    co = np.array([v.co[:] for v in shown.data.vertices])
    np.testing.assert_allclose(co, job.particles[contact], atol=1e-6)
    s = props.scene_settings(empty_scene)
    assert not s.is_running and f"{len(contact)} contact particles" in s.status

    # The next bake uses what the init found.
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    baked = contract.read_job(tmp_path / "job")
    np.testing.assert_array_equal(baked.contact, contact)
    assert baked.contact_weights is None  # a poke holds no particle
    t = np.arange(job.num_frames) / job.fps
    want = np.stack([np.interp(t, times, traj[:, a]) for a in range(3)], 1)
    np.testing.assert_allclose(baked.trajectory, want, atol=1e-5)
    assert baked.interaction.type == kind


def test_init_passes_the_chosen_type_and_contact_box_and_reports_each_stage(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The argument list carries --interaction and --contact-box; ticks show the backend's stages in order and never
    wait for the backend (TICK_LIMIT_MS); with no trajectory Empty one is made and keyed; the chosen type lands on the object."""
    init_session, props, bake_session = _modules(addon)
    monkeypatch.setenv("PHYSINTERACT_FAKE_STAGE_DELAY", str(FAKE_STEP_S))
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    add_clip(empty_scene, tmp_path, addon)
    o, s = props.object_settings(obj), props.scene_settings(empty_scene)
    o.trajectory = None
    s.init_interaction, s.use_contact_box, s.contact_box = "point_adherent", True, (1, 2, 5, 6)
    session = init_session.InitSession(empty_scene, fake)
    session.start()
    assert session.process.argv[-4:] == ["--interaction", "point_adherent", "--contact-box", "1,2,5,6"]
    stages: list[str] = []
    deadline = time.monotonic() + 60
    while session.tick() == bake_session.RUNNING:
        assert time.monotonic() < deadline
        stage = s.status.split(":")[1].split("(")[0].strip() if ":" in s.status else ""
        if stage and (not stages or stages[-1] != stage):
            stages.append(stage)
        time.sleep(0.02)
    assert session.state == bake_session.FINISHED, session.message
    assert session.max_tick_ms < TICK_LIMIT_MS
    order = ["video", "vlm", "pose", "segment", "contact", "track", "write"]
    assert [st for st in stages if st in order] == sorted({st for st in stages if st in order}, key=order.index)
    assert len([st for st in stages if st in order]) >= 3
    assert session.process.latest["done"]["contact_box"] == [1, 2, 5, 6]
    assert o.interaction_type == "point_adherent"
    assert o.trajectory is not None and o.trajectory.name == obj.name + init_session.TRAJECTORY_SUFFIX
    assert len(_keys(o.trajectory, init_session)[2]) == len(fake_backend.INIT_LIFT)


def test_a_grasp_found_in_the_video_carries_the_share_of_each_contact_particle_into_the_next_bake(
        empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path) -> None:
    """Known answer: a point_adherent init's contact weights (the share of each particle held) are stored with the
    video contact and written, in the contact's order, into the next bake's job; weights that no longer match the
    contact (a hand-edited property) fail that bake with a message naming the object, not a wrong hold."""
    _, props, _ = _modules(addon)
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    add_clip(empty_scene, tmp_path, addon)
    props.scene_settings(empty_scene).init_interaction = "point_adherent"
    assert bpy.ops.physinteract.init_from_video() == {"FINISHED"}
    job = contract.read_job(tmp_path / "job")
    _, contact, _, _ = fake_backend.known_initialisation(job, "point_adherent")
    weights = fake_backend.known_contact_weights(job, contact)
    assert 0 < np.sum(weights < 1.0) < len(weights)
    assert bpy.ops.physinteract.bake() == {"FINISHED"}
    baked = contract.read_job(tmp_path / "job")
    np.testing.assert_array_equal(baked.contact, contact)
    np.testing.assert_allclose(baked.contact_weights, weights, rtol=1e-6)
    o = props.object_settings(obj)
    o.contact_weights = " ".join(o.contact_weights.split()[1:])
    with pytest.raises(RuntimeError, match=obj.name):
        bpy.ops.physinteract.bake()


def _state(scene: bpy.types.Scene, obj: bpy.types.Object, empty: bpy.types.Object, addon: str) -> dict:
    init_session, props, _ = _modules(addon)
    o = props.object_settings(obj)
    return {
        "objects": sorted(x.name for x in bpy.data.objects),
        "settings": (o.interaction_type, o.contact_source, o.contact_particles, o.trajectory.name if o.trajectory else None),
        "keys": _keys(empty, init_session),
    }


@pytest.mark.parametrize("failure", ["backend", "no_video"])
def test_failing_init_leaves_the_scene_unchanged(empty_scene: bpy.types.Scene, addon: str, fake: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """A backend failing in its tracking stage, or a scene without a video: the operator reports the reason and the
    interaction type, contact, Empty keys and objects are exactly as before (after an earlier successful init)."""
    _, props, _ = _modules(addon)
    obj, empty = build_scene(empty_scene, tmp_path, addon)
    add_clip(empty_scene, tmp_path, addon)
    props.scene_settings(empty_scene).init_interaction = "surface_non_adherent"
    assert bpy.ops.physinteract.init_from_video() == {"FINISHED"}
    before = _state(empty_scene, obj, empty, addon)
    props.scene_settings(empty_scene).init_interaction = "AUTO"  # a new run would change the type
    if failure == "backend":
        monkeypatch.setenv("PHYSINTERACT_FAKE_INIT_FAIL", "track")
        match = "fake init failed in stage 'track'"
    else:
        props.scene_settings(empty_scene).clip = None
        match = "Choose the video"
    with pytest.raises(RuntimeError, match=match):
        bpy.ops.physinteract.init_from_video()
    assert _state(empty_scene, obj, empty, addon) == before
    assert not props.scene_settings(empty_scene).is_running


def test_init_argument_list_parses_with_the_real_backend_parser(addon: str, tmp_path: Path) -> None:
    """The add-on's ``init`` argument list is one the backend's own command-line parser accepts, value for value."""
    from physinteract.cli import build_parser
    from physinteract_addon.init_session import init_command

    argv = init_command("python", tmp_path / "job", "point_non_adherent", (3, 4, 50, 60))
    args = build_parser().parse_args(argv[3:])  # after "python -m physinteract"
    assert args.command == "init"
    assert args.interaction == "point_non_adherent"
    assert tuple(args.contact_box) == (3.0, 4.0, 50.0, 60.0)


def test_fake_backend_init_stages_are_the_real_backends(addon: str) -> None:
    """The fake backend emits the real ``physinteract init`` stage names, in the real order."""
    from physinteract.perception.init import STAGES

    assert tuple(fake_backend.INIT_STAGES) == tuple(STAGES)
