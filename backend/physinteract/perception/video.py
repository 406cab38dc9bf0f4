"""Video in: a video file (OpenCV) or a folder of frames, as an RGB uint8 array.

Frames are numbered from 0 in the source (the first decoded frame, or the first
file in natural order). ``start``/``end`` select source frames, ``end`` inclusive;
``stride`` keeps every stride-th of them. ``Video.indices`` says which source
frames were kept, so a caller can map back to the video's own numbering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
FOLDER_FPS = 30.0  # frame rate assumed for a folder of frames unless given


@dataclass
class Video:
    frames: np.ndarray  # [T, H, W, 3] uint8 RGB
    fps: float  # frames per second of the kept frames' source (not divided by stride)
    indices: np.ndarray  # [T] int, source frame numbers
    source: str


def _natural_key(path: Path) -> tuple:
    """Sort key for frame files: frame2.png before frame10.png (numbers compared as numbers)."""
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p.lower()) for p in parts)


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frame folder, in natural order of their names."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES), key=_natural_key)


def downscale(frame: np.ndarray, max_size: int | None) -> np.ndarray:
    """Area-downscale ``frame`` [H, W, 3] so that max(H, W) <= max_size (never upscales)."""
    if max_size is None or max(frame.shape[:2]) <= max_size:
        return frame
    import cv2

    h, w = frame.shape[:2]
    s = max_size / max(h, w)
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _selected(start: int, end: int | None, stride: int, count: int | None) -> range:
    """Source frame numbers kept: start..end inclusive, every stride-th, clipped to count when known."""
    last = end if end is not None else (count - 1 if count is not None else 2**62)
    if count is not None:
        last = min(last, count - 1)
    return range(start, last + 1, stride)


def read_video(
    path: str | Path,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    max_size: int | None = None,
    fps: float | None = None,
) -> Video:
    """Read frames ``start..end`` (inclusive, every ``stride``-th) of a video file or frame folder.

    Args:
        path: a video file OpenCV can decode (mp4, avi, ...) or a folder of png/jpg frames.
        start, end: source frame numbers, from 0; ``end`` None means to the last frame.
        stride: keep every stride-th frame (>= 1).
        max_size: downscale (area interpolation) so that max(H, W) <= max_size.
        fps: frame rate; default from the container, or FOLDER_FPS for a folder.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: no frames, an empty range, bad arguments, or a frame that cannot be decoded
            (the message names the path and, for folders, the frame file).
    """
    import cv2

    path = Path(path)
    if stride < 1:
        raise ValueError(f"{path}: stride must be >= 1, got {stride}")
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"{path}: empty frame range start={start} end={end}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"{path}: max_size must be >= 1, got {max_size}")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or frame folder")

    frames: list[np.ndarray] = []
    kept: list[int] = []
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise ValueError(f"{path}: no frames (no {'/'.join(FRAME_SUFFIXES)} files) in this folder")
        rate = float(fps) if fps is not None else FOLDER_FPS
        for i in _selected(start, end, stride, len(files)):
            bgr = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: unreadable frame file {files[i].name}")
            frames.append(downscale(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_size))
            kept.append(i)
        total = len(files)
    else:
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise ValueError(f"{path}: not a video OpenCV can open")
            container_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            rate = float(fps) if fps is not None else (container_fps if container_fps > 0 else FOLDER_FPS)
            wanted = _selected(start, end, stride, None)
            i = 0
            # Decode sequentially: seeking is codec-dependent and often inexact.
            while wanted.stop > i:
                ok, bgr = cap.read()
                if not ok:
                    break
                if i in wanted:
                    if bgr is None or bgr.ndim != 3:
                        raise ValueError(f"{path}: unreadable frame {i}")
                    frames.append(downscale(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), max_size))
                    kept.append(i)
                i += 1
            total = i
        finally:
            cap.release()
        if total == 0:
            raise ValueError(f"{path}: no frames could be decoded")
    if not frames:
        raise ValueError(f"{path}: empty frame range start={start} end={end} (the source has {total} frames)")
    return Video(frames=np.stack(frames).astype(np.uint8), fps=rate, indices=np.asarray(kept, dtype=np.int64), source=str(path))
