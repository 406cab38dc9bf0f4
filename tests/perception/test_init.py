"""`physinteract init` end to end on tiny random models (a SAM 2 from its config, a tiny Qwen2-VL) and its failures."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from physinteract import contract
from physinteract.cli import main
from physinteract.imageio import write_png
from tests.perception import synthetic as syn

W, H, T = 64, 48, 5


def _job_and_video(folder):
    """A job of a small object with its Gaussians and a camera a few degrees off, and a video folder of it being lifted."""
    obj = syn.make_object("balloon", particles=400, gaussians=300)
    K, truth = syn.camera(obj, W, H)
    start = syn.orbit(truth, obj.centre, np.array([0.0, 0.0, 1.0]), 3.0)
    g = obj.gaussians
    n = len(obj.particles)
    top = np.argsort(obj.particles[:, 2])[-5:]
    job = contract.Job(
        particles=obj.particles, labels=obj.labels, volume=obj.volume, E=np.full(n, 1e4), nu=np.full(n, 0.3),
        density=np.full(n, 500.0), contact=top, trajectory_times=np.array([0.0]), trajectory=obj.particles[top].mean(0)[None],
        fps=24.0, frame_start=1, frame_end=T, camera=contract.Camera(W, H, K, np.tile(start, (T, 1, 1))),
        point_sets=[contract.PointSet("gaussians", g["positions"], np.eye(4), rest_rotations=g["rotations"],
                                      rest_scales=g["scales"], colors=g["colors"], opacities=g["opacities"])],
        name="init-test")
    contract.write_job(job, folder / "job")
    video = folder / "video"
    for t in range(T):
        rgb, _, _ = syn.render_view(obj, K, truth, W, H, means=g["positions"] + np.array([0.0, 0.0, 0.004 * t]))
        write_png(video / f"frame_{t:03d}.png", rgb)
    return folder / "job", video


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sam2")
    pytest.importorskip("transformers")
    from physinteract.perception.segment import Segmenter
    from tests.perception.tiny_models import make_tiny_vlm

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    seg = Segmenter(allow_random=True, image_size=128)
    (root / "sam2").mkdir()
    torch.save({"model": seg.net.state_dict()}, root / "sam2" / "sam2.1_hiera_tiny.pt")
    return {"vlm": make_tiny_vlm(root / "vlm"), "sam2": root / "sam2"}


def test_init_end_to_end_on_tiny_random_models_writes_a_valid_job(tmp_path, models, monkeypatch):
    """Through `physinteract init` with a random SAM 2 and a tiny Qwen2-VL: a valid job with every field written,
    events in stage order ending in "done", and the interaction from the VLM or the documented fallback."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    job_dir, video = _job_and_video(tmp_path)
    events = tmp_path / "events.jsonl"
    rc = main(["init", str(job_dir), "--video", str(video), "--vlm", str(models["vlm"]), "--sam2", str(models["sam2"]),
               "--sam2-image-size", "128", "--interaction", "point_adherent", "--contact-box", "20,4,44,20",
               "--keyframe-spacing", "2", "--events", str(events)])
    assert rc == 0
    job = contract.read_job(job_dir)
    init = job.metadata["init"]
    assert job.num_frames == T and len(job.video.frames) == T and len(job.video.masks) == T
    assert all((job_dir / p).is_file() for p in job.video.frames + job.video.masks)
    assert len(job.contact) > 0 and np.all(job.labels[job.contact] == contract.SURFACE)
    if job.interaction.type == "point_adherent":  # a grasp holds each particle by its footprint's share of the mask
        w = job.contact_weights
        assert w is not None and len(w) == len(job.contact) and np.all((w > 0) & (w <= 1)) and w.max() == 1.0
    else:
        assert job.contact_weights is None
    np.testing.assert_allclose(job.trajectory_times, np.array([0, 2, 4]) / job.fps)  # the frame folder's rate
    assert job.interaction.type == init["interaction"]["type"]
    assert init["interaction"]["source"] in ("vlm", "fallback") and init["interaction"]["message"]
    if init["interaction"]["source"] == "fallback":
        assert job.interaction.type == "point_adherent"
    assert init["pose"]["fitted"] and init["pose"]["loss_final"] < init["pose"]["loss_start"]
    assert init["tracker"]["method"] in ("lk", "mask")
    lines = [json.loads(s) for s in events.read_text().splitlines()]
    assert lines[0]["event"] == "start" and lines[-1]["event"] == "done"
    stages = [e["stage"] for e in lines if e["event"] == "stage"]
    assert stages == ["video", "vlm", "pose", "segment", "contact", "track", "write"]
    assert lines[-1]["contact_count"] == len(job.contact) and lines[-1]["keyframes"] == 3


def test_missing_video_fails_naming_the_path_and_leaves_the_job_unchanged(tmp_path, capsys):
    """A video path that does not exist: non-zero exit, the message names it, an "error" event, the job is byte-identical."""
    job_dir, _ = _job_and_video(tmp_path)
    before = _digest(job_dir)
    missing = tmp_path / "no_such_video.mp4"
    rc = main(["init", str(job_dir), "--video", str(missing), "--interaction", "point_adherent", "--no-pose-fit"])
    assert rc != 0
    assert str(missing) in capsys.readouterr().err
    after = _digest(job_dir)
    events = after.pop("init_events.jsonl")
    assert events and after == before
    last = json.loads((job_dir / "init_events.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "error" and str(missing) in last["message"]


def test_bad_job_dir_fails_naming_the_manifest(tmp_path, capsys):
    """A folder without job.json: non-zero exit and the message names the missing manifest."""
    rc = main(["init", str(tmp_path / "nothing-here"), "--interaction", "point_adherent"])
    assert rc != 0
    assert str(tmp_path / "nothing-here" / "job.json") in capsys.readouterr().err
    assert not (tmp_path / "nothing-here").exists()
