"""2D tracking of the contact region (Lucas-Kanade, mask centroids) and its lifting to a 3D trajectory T0."""

from __future__ import annotations

import numpy as np

from physinteract import contract
from physinteract.perception.track import (
    TrackConfig,
    choose_track,
    keyframes,
    lift_tracks,
    mask_centroids,
    track_centre_and_scale,
    track_points,
)
from tests.perception import synthetic as syn


def _texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A random texture with features at several scales, uint8 RGB."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float64)
    for sigma, amp in ((1.0, 0.35), (3.0, 0.5), (8.0, 0.6)):
        img += amp * cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), sigma) * sigma
    img = (img - img.min()) / (img.max() - img.min())
    return np.repeat(np.round(img * 255).astype(np.uint8)[..., None], 3, axis=2)


def test_lucas_kanade_follows_a_known_subpixel_motion_within_2px():
    """A texture translated by (0.83, -0.47) px and rotated by 0.6 degrees per frame: LK tracks stay within 2 px of the truth."""
    import cv2

    h, w, T = 160, 200, 12
    tex = _texture(h + 80, w + 80)
    centre = np.array([(w + 80) / 2 - 0.5, (h + 80) / 2 - 0.5])  # OpenCV coordinates of the big texture's centre
    frames, mats = [], []
    for t in range(T):
        M = cv2.getRotationMatrix2D(tuple(centre), 0.6 * t, 1.0)
        M[:, 2] += np.array([0.83, -0.47]) * t - 40.0  # shift, then crop the central w x h window
        frames.append(cv2.warpAffine(tex, M, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
        mats.append(M)
    uu, vv = np.meshgrid(np.linspace(40, w - 40, 6), np.linspace(35, h - 35, 5))
    p0 = np.stack([uu.ravel(), vv.ravel()], 1) + 0.5  # contract pixel coordinates
    big0 = p0 - 0.5 + 40.0  # frame 0 point in the big texture (OpenCV coordinates)
    truth = np.stack([(np.c_[big0, np.ones(len(big0))] @ M.T) + 0.5 for M in mats])
    tracks, valid = track_points(np.stack(frames), p0, TrackConfig())
    err = np.linalg.norm(tracks - truth, axis=2)
    print(f"LK error: mean {err[valid].mean():.3f} px, max {err[valid].max():.3f} px, {valid[-1].mean():.0%} points kept")
    assert valid[-1].mean() >= 0.9
    assert err[valid].max() < 2.0


def test_forward_backward_check_flags_points_that_leave_the_texture():
    """Points moved onto a flat (textureless, then noisy) area are flagged lost, never tracked to wrong places silently."""
    rng = np.random.default_rng(1)
    tex = _texture(100, 100)
    frames = np.stack([tex, rng.integers(0, 256, tex.shape, dtype=np.uint8)])  # frame 1: unrelated noise
    _, valid = track_points(frames, np.array([[30.5, 30.5], [60.5, 50.5], [70.5, 20.5]]))
    assert valid[0].all() and not valid[1].any()


def test_mask_centroids_of_discs_and_the_fallback_choice():
    """Centroid of a disc mask = its centre; with no LK points the choice falls back to mask centroids (empty masks filled)."""
    T, H, W = 5, 40, 60
    vv, uu = np.mgrid[0:H, 0:W] + 0.5
    truth = np.stack([20.0 + 3 * np.arange(T), 15.0 + np.arange(T)], 1)
    masks = np.stack([(uu - c[0]) ** 2 + (vv - c[1]) ** 2 < 36 for c in truth])
    np.testing.assert_allclose(mask_centroids(masks), truth, atol=1e-9)
    masks[2] = False
    choice = choose_track(None, None, masks)
    assert choice.method == "mask" and choice.scale is None
    np.testing.assert_allclose(choice.centre[2], 0.5 * (truth[1] + truth[3]), atol=1e-9)


def test_lifted_trajectory_within_5_percent_of_object_size_given_perfect_tracks():
    """A grasped region moving 6 cm sideways/up and 8 cm towards the camera: lifting perfect 2D tracks of its points
    (depth from their apparent scale) stays within 5% of the object's size of the true 3D trajectory."""
    obj = syn.make_object("balloon_dog", particles=600, gaussians=300)
    W, H = 128, 96
    K, w2c = syn.camera(obj, W, H)
    cam = -w2c[:3, :3].T @ w2c[:3, 3]
    toward = (cam - obj.centre) / np.linalg.norm(cam - obj.centre)
    T = 15
    s = np.linspace(0.0, 1.0, T)
    anchor = obj.particles[np.argmax(obj.particles[:, 2])]  # the top of the head
    path = anchor + np.outer(np.sin(np.pi * s), [0.06, 0.0, 0.03]) + np.outer(s, 0.08 * toward)
    surf = obj.particles[obj.labels == contract.SURFACE]
    cloud = surf[np.linalg.norm(surf - anchor, axis=1) < 0.03] - anchor  # the grasped patch's surface points
    tracks = np.stack([contract.project(K, w2c, p + cloud)[0] for p in path])  # [T, P, 2] perfect tracks
    centre, scale = track_centre_and_scale(tracks, np.ones(tracks.shape[:2], bool), K[:2, 2])
    lifted = lift_tracks(centre, path[0] + cloud.mean(0), K, w2c, scale)
    truth = path + cloud.mean(0)
    err = np.linalg.norm(lifted - truth, axis=1).max() / obj.size
    flat = np.linalg.norm(lift_tracks(centre, truth[0], K, w2c, None) - truth, axis=1).max() / obj.size
    print(f"lifting error: max {100 * err:.2f}% of the object's size ({obj.size:.3f} m); constant depth: {100 * flat:.2f}%")
    assert err < 0.05
    assert flat > err  # the scale-based depth is what keeps it within bounds


def test_keyframes_every_spacing_frames_and_the_last():
    """Keyframes at frames 0, 3, 6, 9 and the last (10) hold the samples of those frames."""
    times = np.arange(11) / 24.0
    pos = np.c_[times, 2 * times, 3 * times]
    kt, kv = keyframes(times, pos, 3)
    np.testing.assert_array_equal(kt, times[[0, 3, 6, 9, 10]])
    np.testing.assert_array_equal(kv, pos[[0, 3, 6, 9, 10]])
    assert len(keyframes(times, pos, 5)[0]) == 3  # 0, 5, 10
