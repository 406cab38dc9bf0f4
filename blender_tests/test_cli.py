"""The headless '--command physinteract estimate | init' handlers (the bpy module cannot run '--command', so the
registered handler is called directly), against the fake backend's known answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bpy
import fake_backend
import numpy as np
import pytest
from test_bake import build_scene
from test_init_from_video import add_clip

from physinteract import contract


def test_cli_estimate_prints_progress_and_stores_the_known_field(empty_scene: bpy.types.Scene, addon: str, fake_python: str,
                                                                 tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """'physinteract estimate --iterations 3' exits 0, prints a progress line per running iteration and the median E of the fake's
    field after 3 of 3 iterations (2.5 E0), and stores it on the fill preview; the options reach the scene settings."""
    cli, props = (sys.modules[f"{addon}.{m}"] for m in ("cli", "properties"))
    monkeypatch.setenv("PHYSINTERACT_FAKE_ITER_DELAY", "0.2")  # an iteration lasts several polls, as a real one does
    obj, _ = build_scene(empty_scene, tmp_path, addon)
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.physinteract.fill_preview() == {"FINISHED"}
    assert cli.run_command(["estimate", "--python", fake_python, "--iterations", "3", "--mode", "material_only"]) == 0
    out = capsys.readouterr().out
    for k in (1, 2):  # the last iteration's event may come with the exit: then the final line reports it
        assert f"physinteract estimate: estimate: iteration {k}/3" in out
    job = contract.read_job(tmp_path / "job")
    E, _ = fake_backend.known_field(job.E, 3, 3)
    s = props.scene_settings(empty_scene)
    assert (s.estimate_mode, s.estimate_iterations) == ("material_only", 3)
    assert s.estimate_E_median == pytest.approx(float(np.median(E)), rel=1e-6)
    got = np.empty(len(E), np.float32)
    bpy.data.objects["Blob Fill Preview"].data.attributes["E"].data.foreach_get("value", got)
    np.testing.assert_allclose(got, E, rtol=1e-6)
    assert "finished" in out.splitlines()[-1]


def test_cli_estimate_failure_exits_1_with_the_backend_message(empty_scene: bpy.types.Scene, addon: str, fake_python: str,
                                                               tmp_path: Path, capsys: pytest.CaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend failing at iteration 2: exit code 1 and its message on stderr; a bad option: exit 2; no backend
    Python: exit 1 naming the preference."""
    cli = sys.modules[f"{addon}.cli"]
    build_scene(empty_scene, tmp_path, addon)
    monkeypatch.setenv("PHYSINTERACT_FAKE_FAIL_AT", "2")
    assert cli.run_command(["estimate", "--python", fake_python, "--iterations", "4"]) == 1
    assert "fake estimate failed at iteration 2" in capsys.readouterr().err
    assert cli.run_command(["estimate", "--mode", "guess"]) == 2
    assert cli.run_command(["estimate", "--python", str(tmp_path / "no_python")]) == 1


def test_cli_init_keys_the_trajectory_and_failure_exits_1(empty_scene: bpy.types.Scene, addon: str, fake_python: str,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """'physinteract init --interaction point_adherent' exits 0, prints the stages and puts the known T0 on the Empty
    (last key = T0's last point); a failing stage exits 1 with the backend's message and leaves the keys."""
    cli, init_session, props = (sys.modules[f"{addon}.{m}"] for m in ("cli", "init_session", "properties"))
    monkeypatch.setenv("PHYSINTERACT_FAKE_STAGE_DELAY", "0.1")  # each stage lasts a few polls
    obj, empty = build_scene(empty_scene, tmp_path, addon)
    add_clip(empty_scene, tmp_path, addon)
    assert cli.run_command(["init", "--python", fake_python, "--interaction", "point_adherent"]) == 0
    out = capsys.readouterr().out
    # The status lines are what each poll saw (a loaded machine may skip a short stage); the last is the result.
    assert out.rstrip().splitlines()[-1].startswith("physinteract init: finished") and "contact particles" in out
    events = [json.loads(line) for line in (tmp_path / "job" / "init_events.jsonl").read_text().splitlines()]
    assert [e.get("stage") for e in events if e["event"] == "stage"][-1] == "write"
    job = contract.read_job(tmp_path / "job")
    _, _, _, traj = fake_backend.known_initialisation(job, None)
    last = [fc.keyframe_points[-1].co.y for fc in sorted(init_session.location_fcurves(empty), key=lambda fc: fc.array_index)]
    np.testing.assert_allclose(last, traj[-1], atol=1e-6)
    assert props.object_settings(obj).interaction_type == "point_adherent"
    monkeypatch.setenv("PHYSINTERACT_FAKE_INIT_FAIL", "pose")
    assert cli.run_command(["init", "--python", fake_python]) == 1
    assert "fake init failed in stage 'pose'" in capsys.readouterr().err
    last_after = [fc.keyframe_points[-1].co.y for fc in sorted(init_session.location_fcurves(empty), key=lambda fc: fc.array_index)]
    assert last_after == last
