"""PNG encoding is a valid, lossless 8-bit PNG (checked by decoding it back with zlib by hand)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from physinteract.imageio import png_bytes


def _decode(data: bytes) -> tuple[int, int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    assert ihdr is not None
    w, h, depth, ctype = ihdr[:4]
    assert depth == 8
    return w, h, ctype, zlib.decompress(idat)


def test_png_round_trips_rgb_pixels_exactly():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(7, 5, 3)) / 255.0
    w, h, ctype, raw = _decode(png_bytes(img))
    assert (w, h, ctype) == (5, 7, 2)
    rows = np.frombuffer(raw, np.uint8).reshape(7, 1 + 5 * 3)
    assert np.all(rows[:, 0] == 0)  # filter type none
    np.testing.assert_array_equal(rows[:, 1:].reshape(7, 5, 3), np.round(img * 255).astype(np.uint8))


def test_png_grey_and_clipping():
    w, h, ctype, raw = _decode(png_bytes(np.array([[-1.0, 0.5, 2.0]])))
    assert (w, h, ctype) == (3, 1, 0)
    assert list(raw) == [0, 0, 128, 255]
