"""Video in: frame folders and video files read back with the right frames, range, stride and size."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from physinteract.perception.video import read_video  # noqa: E402


def _frame(i: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A frame whose colour encodes its number: flat blocks survive lossy codecs."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 20 * i + 10
    img[..., 1] = 200 - 15 * i
    img[: h // 2, :, 2] = 250
    return img


def _write_folder(folder, n: int = 12, pattern: str = "frame{}.png"):
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / pattern.format(i)), cv2.cvtColor(_frame(i), cv2.COLOR_RGB2BGR))
    return folder


def _write_avi(path, n: int = 10, fps: float = 12.0, fourcc: str = "MJPG"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(_frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_folder_frames_are_exact_and_in_natural_order(tmp_path):
    """PNG is lossless: frame i reads back exactly; frame10 sorts after frame9, not after frame1."""
    v = read_video(_write_folder(tmp_path / "f"))
    assert v.frames.shape == (12, 48, 64, 3) and v.frames.dtype == np.uint8
    assert v.fps == 30.0 and v.indices.tolist() == list(range(12))
    for i in range(12):
        assert np.array_equal(v.frames[i], _frame(i)), i


def test_folder_range_stride_fps_and_downscale(tmp_path):
    """Frames 2..9 inclusive with stride 3 are 2, 5, 8; max_size 32 halves a 64x48 frame to 32x24."""
    v = read_video(_write_folder(tmp_path / "f"), start=2, end=9, stride=3, max_size=32, fps=24.0)
    assert v.indices.tolist() == [2, 5, 8] and v.fps == 24.0
    assert v.frames.shape == (3, 24, 32, 3)
    # Area downscaling of flat blocks keeps their colour.
    assert abs(int(v.frames[1, 20, 10, 0]) - _frame(5)[0, 0, 0]) <= 1
    assert v.frames[1, 2, 10, 2] == 250 and v.frames[1, 20, 10, 2] == 0


def test_video_file_frames_range_and_fps_within_codec_tolerance(tmp_path):
    """An MJPG .avi: frame count, container fps, range, and colours within JPEG tolerance."""
    p = _write_avi(tmp_path / "clip.avi")
    v = read_video(p)
    assert v.frames.shape == (10, 48, 64, 3) and v.fps == pytest.approx(12.0)
    for i in range(10):
        assert np.abs(v.frames[i].astype(int) - _frame(i)).mean() < 6, i
    part = read_video(p, start=3, end=7, stride=2, max_size=16)
    assert part.indices.tolist() == [3, 5, 7] and part.frames.shape == (3, 12, 16, 3)
    assert abs(int(part.frames[1, 9, 8, 0]) - _frame(5)[0, 0, 0]) <= 8
    tail = read_video(p, start=8)
    assert tail.indices.tolist() == [8, 9]


def test_mp4_file_reads_back_within_codec_tolerance(tmp_path):
    """An MPEG-4 .mp4 written by OpenCV: 6 frames at 25 fps, colours within lossy-codec tolerance."""
    p = _write_avi(tmp_path / "clip.mp4", n=6, fps=25.0, fourcc="mp4v")
    v = read_video(p, stride=2)
    assert v.indices.tolist() == [0, 2, 4] and v.fps == pytest.approx(25.0)
    for k, i in enumerate(v.indices):
        assert np.abs(v.frames[k].astype(int) - _frame(i)).mean() < 10, i


def test_errors_name_the_path_and_frame(tmp_path):
    """Missing path, empty folder, undecodable frame file and empty range each say what and where."""
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_video(tmp_path / "nothere.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no frames"):
        read_video(tmp_path / "empty")
    folder = _write_folder(tmp_path / "f", n=3)
    (folder / "frame3.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="frame3.png"):
        read_video(folder)
    assert len(read_video(folder, end=2).frames) == 3  # the bad frame is not read when out of range
    with pytest.raises(ValueError, match="empty frame range"):
        read_video(folder, start=7)
    with pytest.raises(ValueError, match="empty frame range"):
        read_video(folder, start=2, end=1)
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="bad.mp4"):
        read_video(tmp_path / "bad.mp4")
    with pytest.raises(ValueError, match="empty frame range"):
        read_video(_write_avi(tmp_path / "c.avi", n=4), start=4)
