"""SAM 2 segmentation: automatic prompts from a silhouette, and the real sam2 predictors on random weights."""

from __future__ import annotations

import numpy as np
import pytest

from physinteract.perception import models
from physinteract.perception.segment import prompt_from_mask

SIZE = 128  # network input side for the tests (released models use 1024)


def _disk(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def test_prompt_from_disk_mask_is_inside_and_boxed():
    """A disk of radius 12 at (40, 30): box = its bounds, points inside and at least 6 px from the rim."""
    mask = _disk(64, 96, 40, 30, 12)
    box, points, labels = prompt_from_mask(mask)
    assert box == (28.0, 18.0, 52.0, 42.0)
    assert points.shape == (3, 2) and labels.tolist() == [1, 1, 1]
    xi, yi = points[:, 0].astype(int), points[:, 1].astype(int)
    assert mask[yi, xi].all()
    rim_distance = 12 - np.hypot(points[:, 0] - 40, points[:, 1] - 30)
    assert (rim_distance >= 6 - 1).all()  # half the deepest depth, within a pixel of the distance transform
    assert np.hypot(*(points[0] - (40, 30))) <= 1.0  # the first point is the centre


def test_prompt_from_box_mask_spreads_points_and_treats_image_edge_as_boundary():
    """A 20x60 bar touching the image edge: points spread along it, none on the edge or near its ends."""
    mask = np.zeros((50, 80), bool)
    mask[10:30, 0:60] = True
    box, points, _ = prompt_from_mask(mask, num_points=4)
    assert box == (0.0, 10.0, 59.0, 29.0)
    assert mask[points[:, 1].astype(int), points[:, 0].astype(int)].all()
    assert points[:, 0].min() >= 4 and points[:, 0].max() <= 55  # depth >= 5 px to x = -1 (image edge) and x = 60
    assert points[:, 0].max() - points[:, 0].min() >= 30  # spread, not clustered at the deepest pixel
    with pytest.raises(ValueError, match="non-empty"):
        prompt_from_mask(np.zeros((5, 5), bool))


@pytest.fixture(scope="module")
def no_sam2(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_CACHE", str(tmp_path_factory.mktemp("empty-hub")))
        mp.delenv("PHYSINTERACT_SAM2", raising=False)
        mp.delenv("PHYSINTERACT_MODELS", raising=False)
        yield mp


@pytest.fixture(scope="module")
def random_segmenter(no_sam2):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sam2")
    from physinteract.perception.segment import Segmenter

    torch.manual_seed(0)
    seg = Segmenter(allow_random=True, image_size=SIZE)
    assert seg.random and seg.checkpoint is None
    return seg


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, size=(3, 64, 80, 3), dtype=np.uint8)
    for t in range(3):
        frames[t][_disk(64, 80, 35 + 3 * t, 32, 14)] = (220, 180, 40)
    return frames


def test_random_sam2_segments_an_image_through_the_real_predictor(random_segmenter, scene):
    """Box, points and mask prompts each give an [H, W] bool mask from sam2's image predictor."""
    h, w = scene.shape[1:3]
    box, points, labels = prompt_from_mask(_disk(h, w, 35, 32, 14))
    for kwargs in ({"box": box}, {"points": points, "labels": labels}, {"points": points[:1]},
                   {"mask_prompt": _disk(h, w, 35, 32, 14)}):
        mask = random_segmenter.segment_image(scene[0], **kwargs)
        assert mask.shape == (h, w) and mask.dtype == bool, kwargs
    with pytest.raises(ValueError, match="prompt"):
        random_segmenter.segment_image(scene[0])
    with pytest.raises(ValueError, match="shape"):
        random_segmenter.segment_image(scene[0], mask_prompt=np.ones((3, 3), bool))


def test_random_sam2_propagates_through_a_video(random_segmenter, scene):
    """A box on frame 0 gives [T, H, W] bool masks via sam2's video predictor, reporting progress per frame."""
    box, _, _ = prompt_from_mask(_disk(64, 80, 35, 32, 14))
    calls = []
    masks = random_segmenter.segment_video(scene, box=box, progress=lambda done, total: calls.append((done, total)))
    assert masks.shape == scene.shape[:3] and masks.dtype == bool
    assert calls == [(1, 3), (2, 3), (3, 3)]
    by_mask = random_segmenter.segment_video(scene[:2], mask=_disk(64, 80, 35, 32, 14))
    assert by_mask.shape == (2, 64, 80) and by_mask.dtype == bool
    with pytest.raises(ValueError, match="either"):
        random_segmenter.segment_video(scene, box=box, mask=_disk(64, 80, 35, 32, 14))


def test_checkpoint_on_disk_is_loaded_and_reproduces_the_model(random_segmenter, scene, tmp_path, no_sam2):
    """A saved state dict found through PHYSINTERACT_SAM2 loads into identical weights and identical masks."""
    import torch

    from physinteract.perception.segment import Segmenter

    folder = tmp_path / "sam2"
    folder.mkdir()
    torch.save({"model": random_segmenter.net.state_dict()}, folder / "sam2.1_hiera_tiny.pt")
    no_sam2.setenv("PHYSINTERACT_SAM2", str(folder))
    try:
        torch.manual_seed(123)  # a different random start: only the file can make the weights equal
        loaded = Segmenter(image_size=SIZE)
    finally:
        no_sam2.delenv("PHYSINTERACT_SAM2")
    assert loaded.checkpoint == folder / "sam2.1_hiera_tiny.pt" and not loaded.random
    assert loaded.config == "configs/sam2.1/sam2.1_hiera_t.yaml"
    ref = random_segmenter.net.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.net.state_dict().items())
    box, points, labels = prompt_from_mask(_disk(64, 80, 35, 32, 14))
    a = random_segmenter.segment_image(scene[0], box=box, points=points, labels=labels)
    b = loaded.segment_image(scene[0], box=box, points=points, labels=labels)
    assert np.array_equal(a, b)
    # A checkpoint of another architecture is refused by name.
    torch.save({"model": {"not.a.sam2.key": torch.zeros(1)}}, tmp_path / "bad.pt")
    with pytest.raises(RuntimeError, match="bad.pt.*does not fit"):
        Segmenter(checkpoint=tmp_path / "bad.pt", image_size=SIZE)


def test_missing_sam2_raises_with_placement_message(no_sam2, tmp_path):
    """No checkpoint anywhere (and an empty folder given): RuntimeError saying where to put it."""
    pytest.importorskip("sam2")
    from physinteract.perception.segment import Segmenter

    with pytest.raises(RuntimeError) as err:
        Segmenter()
    assert str(err.value) == models.missing_message("sam2")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("no weights here")
    with pytest.raises(RuntimeError, match="empty holds no SAM 2 checkpoint.*PHYSINTERACT_SAM2"):
        Segmenter(model=str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match="nothere.pt"):
        Segmenter(checkpoint=tmp_path / "nothere.pt")
