"""The initial trajectory T0: track the contact region in 2D, lift it to 3D, sample keyframes.

Image coordinates follow the contract: (u, v) in pixels with pixel (i, j) covering [i, i+1) x [j, j+1),
so a pixel's centre is (i + 0.5, j + 0.5). (OpenCV's trackers put centres at integers; the shift is
done here.) World positions are metres in Blender's frame (+Z up); cameras are OpenCV world->camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physinteract import contract


@dataclass
class TrackConfig:
    """Pyramidal Lucas-Kanade settings (cv2.calcOpticalFlowPyrLK) and the choice between trackers.

    window: px, side of the LK window.  levels: pyramid levels above the image.
    iterations / epsilon: the LK solver's stopping criteria.
    forward_backward: px, a point is lost when tracking it back to the previous frame misses by more.
    min_valid_fraction: LK is trusted while at least this fraction of the points is still tracked in every frame.
    """

    window: int = 21
    levels: int = 3
    iterations: int = 30
    epsilon: float = 0.01
    forward_backward: float = 1.0
    min_valid_fraction: float = 0.3


@dataclass
class TrackChoice:
    """The contact region's track: centre [T, 2] px, scale [T] (spread of the tracked points relative to frame 0,
    1 at frame 0; None when a single point or masks were used), the method ("lk" or "mask") and why."""

    centre: np.ndarray
    scale: np.ndarray | None
    method: str
    valid_fraction: float
    message: str


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    f = np.asarray(frame)
    if f.dtype != np.uint8:
        raise ValueError(f"track_points: frames must be uint8, got {f.dtype}")
    return cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f


def track_points(frames: np.ndarray, points0: np.ndarray, config: TrackConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Track points through a video with pyramidal Lucas-Kanade, frame to frame, with a forward-backward check.

    Args:
        frames: [T, H, W, 3] uint8 RGB (or [T, H, W] grey).
        points0: [P, 2] px positions on frame 0 (contract convention, centres at +0.5).
    Returns:
        tracks: [T, P, 2] px; a lost point keeps its last position.
        valid: [T, P] bool; once lost a point stays lost.
    """
    import cv2

    cfg = config or TrackConfig()
    frames = np.asarray(frames)
    pts = np.asarray(points0, np.float32).reshape(-1, 2) - 0.5  # OpenCV: centres at integers
    T, P = len(frames), len(pts)
    tracks = np.zeros((T, P, 2), np.float64)
    valid = np.zeros((T, P), bool)
    tracks[0] = pts + 0.5
    valid[0] = True
    if T == 0 or P == 0:
        return tracks, valid
    lk = {"winSize": (cfg.window, cfg.window), "maxLevel": cfg.levels,
          "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, cfg.iterations, cfg.epsilon)}
    prev = _grey(frames[0])
    cur_pts = pts.reshape(-1, 1, 2)
    for t in range(1, T):
        nxt = _grey(frames[t])
        fwd, st1, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, cur_pts, None, **lk)  # type: ignore[call-overload]  # the stubs refuse nextPts=None
        back, st2, _ = cv2.calcOpticalFlowPyrLK(nxt, prev, fwd, None, **lk)  # type: ignore[call-overload]
        fb = np.linalg.norm((back - cur_pts).reshape(-1, 2), axis=1)
        ok = valid[t - 1] & (st1.ravel() == 1) & (st2.ravel() == 1) & (fb <= cfg.forward_backward)
        h, w = nxt.shape
        f2 = fwd.reshape(-1, 2)
        ok &= (f2[:, 0] >= -0.5) & (f2[:, 0] <= w - 0.5) & (f2[:, 1] >= -0.5) & (f2[:, 1] <= h - 0.5)
        new = np.where(ok[:, None], f2, cur_pts.reshape(-1, 2))
        tracks[t] = new + 0.5
        valid[t] = ok
        cur_pts = new.astype(np.float32).reshape(-1, 1, 2)
        prev = nxt
    return tracks, valid


def mask_centroids(masks: np.ndarray) -> np.ndarray:
    """Centroids [T, 2] px (contract convention) of masks [T, H, W] bool; NaN for an empty mask."""
    m = np.asarray(masks, bool)
    out = np.full((len(m), 2), np.nan)
    for t in range(len(m)):
        v, u = np.nonzero(m[t])
        if len(u):
            out[t] = (u.mean() + 0.5, v.mean() + 0.5)
    return out


def track_centre_and_scale(tracks: np.ndarray, valid: np.ndarray,
                           principal_point: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Centre [T, 2] px of the tracked points and their apparent size relative to frame 0 [T] (None for < 3 points).

    The centre moves with the median displacement of the points still tracked (robust to a few bad ones).
    The size is the RMS spread of the points tracked in both frames. A patch with some depth extent seen off
    the optical axis also spreads along the radial direction from the principal point (the projection of a
    depth offset dz moves a point by -(f / z)(x / z) dz, radially), which is not a change of distance; with
    ``principal_point`` [2] px given, only the spread across that direction (tangential, measured along the same
    direction in both frames) is used, so the ratio follows 1 / z.
    """
    tracks = np.asarray(tracks, np.float64)
    valid = np.asarray(valid, bool)
    T, P = valid.shape
    c0 = tracks[0].mean(0)
    centre = np.tile(c0, (T, 1))
    scale = np.ones(T)
    for t in range(1, T):
        ok = valid[t]
        if not ok.any():
            centre[t:] = centre[t - 1]
            scale[t:] = scale[t - 1]
            break
        centre[t] = c0 + np.median(tracks[t, ok] - tracks[0, ok], axis=0)
        if ok.sum() < 3:
            scale[t] = scale[t - 1]
            continue
        a = tracks[0, ok] - tracks[0, ok].mean(0)
        b = tracks[t, ok] - tracks[t, ok].mean(0)
        if principal_point is not None:
            radial = centre[t] - np.asarray(principal_point, np.float64)
            if np.linalg.norm(radial) > 1e-6:
                n = np.array([-radial[1], radial[0]]) / np.linalg.norm(radial)
                a, b = a @ n, b @ n
        scale[t] = np.sqrt((b**2).sum() / max(float((a**2).sum()), 1e-18))
    return centre, (scale if P >= 3 else None)


def choose_track(tracks: np.ndarray | None, valid: np.ndarray | None, masks: np.ndarray | None,
                 config: TrackConfig | None = None, principal_point: np.ndarray | None = None) -> TrackChoice:
    """Pick the contact region's 2D track: LK (median motion of the points, see :func:`track_centre_and_scale`)
    while enough points hold (``min_valid_fraction`` in every frame), else the centroids of the contact masks."""
    cfg = config or TrackConfig()
    frac = 0.0
    if tracks is not None and valid is not None and np.asarray(valid).size:
        frac = float(np.asarray(valid).mean(1).min())
        if frac >= cfg.min_valid_fraction:
            centre, scale = track_centre_and_scale(tracks, valid, principal_point)
            return TrackChoice(centre, scale, "lk", frac,
                               f"Lucas-Kanade: {np.asarray(valid).shape[1]} points, at least {frac:.0%} tracked in every frame")
    if masks is not None:
        c = mask_centroids(masks)
        good = np.isfinite(c[:, 0])
        if good.any():
            idx = np.arange(len(c))
            c = np.stack([np.interp(idx, idx[good], c[good, k]) for k in range(2)], 1)  # fill empty masks
            why = "no LK points" if tracks is None else f"LK kept only {frac:.0%} of its points"
            return TrackChoice(c, None, "mask", float(good.mean()), f"mask centroids ({why}; {good.sum()}/{len(c)} masks non-empty)")
    raise ValueError(f"choose_track: neither tracker holds (LK kept {frac:.0%} of its points, no usable contact masks)")


def lift_tracks(tracks2d: np.ndarray, anchor3d: np.ndarray, K: np.ndarray, world_to_camera: np.ndarray,
                scale: np.ndarray | None = None) -> np.ndarray:
    """Lift the contact region's 2D track to world positions [T, 3] m.

    The anchor (frame 0's back-projected contact centroid, m, world) moves on screen with the track:
    its pixel at frame t is its frame-0 projection plus ``tracks2d[t] - tracks2d[0]``. Its depth is the
    anchor's camera depth z_0, corrected by the apparent size of the tracked points, z_t = z_0 s_0 / s_t
    (``scale`` [T], spread relative to any reference), or kept constant without it.

    Args:
        tracks2d: [T, 2] px.  anchor3d: [3] m, world.  K: [3, 3].
        world_to_camera: [T, 4, 4] or [4, 4] OpenCV.  scale: [T] or None.
    """
    tr = np.asarray(tracks2d, np.float64)
    T = len(tr)
    w2c = np.broadcast_to(np.asarray(world_to_camera, np.float64), (T, 4, 4))
    with np.errstate(divide="ignore", invalid="ignore"):  # z <= 0 is refused just below
        uv0, z0 = contract.project(np.asarray(K, np.float64), w2c[0], np.asarray(anchor3d, np.float64)[None])
    if z0[0] <= 0:
        raise ValueError(f"lift_tracks: the anchor is behind the camera (z = {z0[0]:.4g} m)")
    z = np.full(T, z0[0])
    if scale is not None:
        s = np.asarray(scale, np.float64)
        z = z0[0] * s[0] / np.maximum(s, 1e-9)
    return contract.unproject(uv0[0] + (tr - tr[0]), z, K, w2c)


def keyframes(times: np.ndarray, positions: np.ndarray, spacing: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``spacing``-th sample of (times [T] s, positions [T, 3]), the last one always included."""
    if spacing < 1:
        raise ValueError(f"keyframes: spacing must be >= 1 frame, got {spacing}")
    times = np.asarray(times, np.float64)
    idx = list(range(0, len(times), spacing))
    if idx and idx[-1] != len(times) - 1:
        idx.append(len(times) - 1)
    return times[idx], np.asarray(positions, np.float64)[idx]
