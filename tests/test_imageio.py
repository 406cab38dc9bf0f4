"""PNG reader/writer: decoded pixels equal the encoded integers for every filter, depth and colour type (PNG spec)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from physinteract.imageio import PNG_SIGNATURE, png_bytes, png_chunk, read_png, read_png_rgba, write_png


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _filter_rows(rows: np.ndarray, bpp: int, ftypes: list[int]) -> bytes:
    """Forward PNG filtering, byte by byte from the spec (the reference the decoder must invert)."""
    out = bytearray()
    prev = [0] * rows.shape[1]
    for r, ft in zip(range(rows.shape[0]), ftypes):
        x = [int(v) for v in rows[r]]
        out.append(ft)
        for i, v in enumerate(x):
            a = x[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][ft]
            out.append((v - pred) % 256)
        prev = x
    return bytes(out)


def _make_png(width: int, height: int, depth: int, ctype: int, payload: bytes, extra: bytes = b"", interlace: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(payload)) + png_chunk(b"IEND", b"")


def test_round_trip_rgb_and_grey_are_exact_at_8_bits(tmp_path: Path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(9, 11, 3)) / 255.0
    grey = rng.integers(0, 256, size=(5, 4)) / 255.0
    write_png(tmp_path / "rgb.png", rgb)
    write_png(tmp_path / "grey.png", grey)
    back = read_png(tmp_path / "rgb.png")
    assert back.shape == (9, 11, 3) and back.dtype == np.float64
    np.testing.assert_array_equal(back, rgb)
    np.testing.assert_array_equal(read_png(tmp_path / "grey.png"), grey)


def test_rgba_write_returns_alpha_separately(tmp_path: Path):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, size=(6, 7, 4)) / 255.0
    write_png(tmp_path / "a.png", rgba)
    img, alpha = read_png_rgba(tmp_path / "a.png")
    np.testing.assert_array_equal(img, rgba[..., :3])
    assert alpha is not None
    np.testing.assert_array_equal(alpha, rgba[..., 3])
    assert read_png(tmp_path / "a.png").shape == (6, 7, 3)


@pytest.mark.parametrize("ftype", [0, 1, 2, 3, 4])
def test_each_filter_type_inverts_to_the_original_bytes(tmp_path: Path, ftype: int):
    rng = np.random.default_rng(ftype)
    pix = rng.integers(0, 256, size=(8, 10, 3), dtype=np.uint8)
    pix[2:5] = pix[2:5] // 4 + 60  # smoother band so predictors matter
    payload = _filter_rows(pix.reshape(8, 30), 3, [ftype] * 8)
    (tmp_path / "f.png").write_bytes(_make_png(10, 8, 8, 2, payload))
    np.testing.assert_array_equal(read_png(tmp_path / "f.png"), pix / 255.0)


def test_mixed_filters_and_16_bit_rgba(tmp_path: Path):
    rng = np.random.default_rng(7)
    pix = rng.integers(0, 65536, size=(6, 5, 4)).astype(np.int64)
    raw = np.zeros((6, 5 * 4 * 2), np.uint8)
    raw[:, 0::2] = (pix.reshape(6, 20) >> 8).astype(np.uint8)
    raw[:, 1::2] = (pix.reshape(6, 20) & 0xFF).astype(np.uint8)
    payload = _filter_rows(raw, 8, [0, 1, 2, 3, 4, 4])
    (tmp_path / "w.png").write_bytes(_make_png(5, 6, 16, 6, payload))
    img, alpha = read_png_rgba(tmp_path / "w.png")
    np.testing.assert_array_equal(img, pix[..., :3] / 65535.0)
    assert alpha is not None
    np.testing.assert_array_equal(alpha, pix[..., 3] / 65535.0)


def test_16_bit_grey_with_sub_filter(tmp_path: Path):
    pix = np.arange(12, dtype=np.int64).reshape(3, 4) * 5000
    raw = np.zeros((3, 8), np.uint8)
    raw[:, 0::2] = pix >> 8
    raw[:, 1::2] = pix & 0xFF
    (tmp_path / "g16.png").write_bytes(_make_png(4, 3, 16, 0, _filter_rows(raw, 2, [1, 1, 3])))
    np.testing.assert_array_equal(read_png(tmp_path / "g16.png"), pix / 65535.0)


def test_palette_with_transparency_and_4_bit_indices(tmp_path: Path):
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    idx = np.array([[0, 1, 2, 3, 0], [3, 2, 1, 0, 1]])
    packed = np.zeros((2, 3), np.uint8)  # 5 nibbles -> 3 bytes per row
    for r in range(2):
        nib = list(idx[r]) + [0]
        packed[r] = [(nib[2 * k] << 4) | nib[2 * k + 1] for k in range(3)]
    extra = png_chunk(b"PLTE", palette.tobytes()) + png_chunk(b"tRNS", bytes([255, 128]))
    (tmp_path / "p.png").write_bytes(_make_png(5, 2, 4, 3, _filter_rows(packed, 1, [0, 2]), extra))
    img, alpha = read_png_rgba(tmp_path / "p.png")
    np.testing.assert_array_equal(img, palette[idx] / 255.0)
    assert alpha is not None
    np.testing.assert_array_equal(alpha, np.where(idx == 1, 128 / 255.0, 1.0))


def test_grey_alpha_8_bit_drops_alpha(tmp_path: Path):
    raw = np.array([[10, 255, 20, 0], [30, 128, 40, 64]], np.uint8)
    (tmp_path / "ga.png").write_bytes(_make_png(2, 2, 8, 4, _filter_rows(raw, 2, [4, 4])))
    img, alpha = read_png_rgba(tmp_path / "ga.png")
    np.testing.assert_array_equal(img, raw[:, 0::2] / 255.0)
    assert alpha is not None
    np.testing.assert_array_equal(alpha, raw[:, 1::2] / 255.0)


def test_bad_crc_names_the_file_and_chunk(tmp_path: Path):
    data = bytearray(png_bytes(np.zeros((4, 4, 3))))
    data[-20] ^= 0xFF  # inside the IDAT body
    p = tmp_path / "crc.png"
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"crc\.png.*CRC mismatch.*IDAT"):
        read_png(p)


def test_truncated_file_is_a_clear_error(tmp_path: Path):
    data = png_bytes(np.full((10, 10), 0.5))
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) - 30])
    with pytest.raises(ValueError, match=r"cut\.png.*truncated"):
        read_png(p)


def test_bad_signature_and_interlace_and_bad_filter_are_refused(tmp_path: Path):
    (tmp_path / "sig.png").write_bytes(b"GIF89a" + b"\0" * 40)
    with pytest.raises(ValueError, match=r"sig\.png.*signature"):
        read_png(tmp_path / "sig.png")
    (tmp_path / "il.png").write_bytes(_make_png(2, 2, 8, 0, b"\0\0\0\0\0\0", interlace=1))
    with pytest.raises(ValueError, match=r"il\.png.*interlaced"):
        read_png(tmp_path / "il.png")
    (tmp_path / "ft.png").write_bytes(_make_png(2, 1, 8, 0, b"\x07\0\0"))
    with pytest.raises(ValueError, match=r"ft\.png.*filter type 7"):
        read_png(tmp_path / "ft.png")
    with pytest.raises(ValueError, match=r"out\.png"):
        write_png(tmp_path / "out.png", np.zeros((3, 3, 2)))
    assert not (tmp_path / "out.png").exists()
