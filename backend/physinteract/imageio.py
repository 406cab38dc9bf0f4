"""PNG reading and writing with numpy and zlib only (no Pillow in the backend's dependencies).

``read_png`` decodes non-interlaced PNGs of every colour type (grey, grey+alpha,
RGB, RGBA, palette) at bit depths 1-16 and all five row filters; values come back
as float64 in [0, 1]: [H, W] for grey, [H, W, 3] for colour and palette. Alpha is
dropped by ``read_png`` and returned by ``read_png_rgba``. ``write_png`` writes
8-bit grey, RGB or RGBA atomically. Every error is a ValueError naming the file.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from physinteract import contract

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# colour type -> samples per pixel
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# colour type -> allowed bit depths
_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


# ------------------------------------------------------------------ reading


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG as float64 in [0, 1]: [H, W] for grey (+alpha), [H, W, 3] for RGB(A) and palette; alpha dropped."""
    return read_png_rgba(path)[0]


def read_png_rgba(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a PNG as (image, alpha): image as in ``read_png``, alpha [H, W] in [0, 1] or None when the file has none.

    A tRNS chunk counts as alpha (palette transparency, or the colour key of grey/RGB images).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read PNG: {e}") from e
    return decode_png(data, name=str(path))


def decode_png(data: bytes, name: str = "<png>") -> tuple[np.ndarray, np.ndarray | None]:
    """Decode PNG bytes to (image, alpha); ``name`` is used in error messages."""
    if data[:8] != PNG_SIGNATURE:
        raise ValueError(f"{name}: not a PNG file (bad signature)")
    ihdr: tuple[int, ...] | None = None
    palette: np.ndarray | None = None
    trns: bytes | None = None
    idat: list[bytes] = []
    pos, seen_end = 8, False
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError(f"{name}: truncated PNG (chunk header cut off at byte {pos})")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"{name}: truncated PNG (chunk {tag!r} needs {length} bytes, file ends at byte {len(data)})")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if crc != zlib.crc32(tag + body) & 0xFFFFFFFF:
            raise ValueError(f"{name}: CRC mismatch in chunk {tag!r} at byte {pos} (file corrupted)")
        if tag == b"IHDR":
            if length != 13:
                raise ValueError(f"{name}: IHDR chunk has {length} bytes, expected 13")
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"PLTE":
            if length % 3:
                raise ValueError(f"{name}: PLTE chunk length {length} is not a multiple of 3")
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif tag == b"tRNS":
            trns = body
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            seen_end = True
            break
        elif tag[:1].isupper():  # an unknown critical chunk: its meaning would change the pixels
            raise ValueError(f"{name}: unsupported critical chunk {tag!r}")
        pos = end
    if ihdr is None:
        raise ValueError(f"{name}: missing IHDR chunk")
    if not seen_end:
        raise ValueError(f"{name}: truncated PNG (no IEND chunk)")
    if not idat:
        raise ValueError(f"{name}: no IDAT chunk (no pixel data)")
    width, height, depth, ctype, compression, filter_method, interlace = ihdr
    if ctype not in _CHANNELS:
        raise ValueError(f"{name}: unsupported colour type {ctype}")
    if depth not in _DEPTHS[ctype]:
        raise ValueError(f"{name}: unsupported bit depth {depth} for colour type {ctype}")
    if compression != 0 or filter_method != 0:
        raise ValueError(f"{name}: unsupported compression/filter method {compression}/{filter_method}")
    if interlace != 0:
        raise ValueError(f"{name}: interlaced (Adam7) PNGs are not supported; save it non-interlaced")
    if width == 0 or height == 0:
        raise ValueError(f"{name}: empty image {width}x{height}")
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as e:
        raise ValueError(f"{name}: truncated or corrupt pixel data ({e})") from e
    channels = _CHANNELS[ctype]
    row_bytes = (width * channels * depth + 7) // 8
    if len(raw) < height * (row_bytes + 1):
        raise ValueError(f"{name}: truncated pixel data ({len(raw)} bytes, expected {height * (row_bytes + 1)})")
    rows = np.frombuffer(raw, np.uint8)[: height * (row_bytes + 1)].reshape(height, row_bytes + 1)
    bpp = max(1, channels * depth // 8)
    recon = unfilter(rows, bpp, name)  # [H, row_bytes] uint8
    samples = _samples(recon, width, channels, depth)  # [H, W, channels] int
    return _to_float(samples, ctype, depth, palette, trns, name)


def unfilter(rows: np.ndarray, bpp: int, name: str = "<png>") -> np.ndarray:
    """Undo PNG row filtering. rows: [H, 1 + row_bytes] uint8 (filter byte first); returns [H, row_bytes] uint8.

    None/Up are vectorised per row, Sub by a cumulative sum per channel; Average and Paeth
    depend on the reconstructed left byte and run as a plain loop over the row's bytes.
    """
    height, row_bytes = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((height, row_bytes), np.uint8)
    prev = np.zeros(row_bytes, np.uint8)
    for r in range(height):
        ftype = int(rows[r, 0])
        line = rows[r, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:
            cur = _unfilter_sub(line, bpp)
        elif ftype == 2:
            cur = line + prev  # uint8 wraps modulo 256
        elif ftype == 3:
            cur = _unfilter_average(line, prev, bpp)
        elif ftype == 4:
            cur = _unfilter_paeth(line, prev, bpp)
        else:
            raise ValueError(f"{name}: bad filter type {ftype} on row {r}")
        out[r] = cur
        prev = cur
    return out


def _unfilter_sub(line: np.ndarray, bpp: int) -> np.ndarray:
    n = len(line)
    pad = (-n) % bpp
    a = np.concatenate([line.astype(np.int64), np.zeros(pad, np.int64)]).reshape(-1, bpp)
    return (np.cumsum(a, axis=0) % 256).astype(np.uint8).reshape(-1)[:n]


def _unfilter_average(line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    f = line.tolist()
    b = prev.tolist()
    out = [0] * len(f)
    for i in range(len(f)):
        left = out[i - bpp] if i >= bpp else 0
        out[i] = (f[i] + ((left + b[i]) >> 1)) & 0xFF
    return np.array(out, np.uint8)


def _unfilter_paeth(line: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    f = line.tolist()
    b = prev.tolist()
    out = [0] * len(f)
    for i in range(len(f)):
        if i >= bpp:
            a, c = out[i - bpp], b[i - bpp]
        else:
            a = c = 0
        up = b[i]
        p = a + up - c
        pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
        pred = a if (pa <= pb and pa <= pc) else (up if pb <= pc else c)
        out[i] = (f[i] + pred) & 0xFF
    return np.array(out, np.uint8)


def _samples(recon: np.ndarray, width: int, channels: int, depth: int) -> np.ndarray:
    """Unpack reconstructed bytes [H, row_bytes] to integer samples [H, W, channels]."""
    height = recon.shape[0]
    if depth == 8:
        return recon[:, : width * channels].reshape(height, width, channels).astype(np.int64)
    if depth == 16:
        v = recon[:, : width * channels * 2].reshape(height, width * channels, 2).astype(np.int64)
        return (v[..., 0] * 256 + v[..., 1]).reshape(height, width, channels)
    bits = np.unpackbits(recon, axis=1)[:, : width * channels * depth].reshape(height, width * channels, depth)
    weights = 1 << np.arange(depth - 1, -1, -1)
    return (bits.astype(np.int64) @ weights).reshape(height, width, channels)


def _to_float(
    s: np.ndarray, ctype: int, depth: int, palette: np.ndarray | None, trns: bytes | None, name: str
) -> tuple[np.ndarray, np.ndarray | None]:
    scale = float((1 << depth) - 1)
    if ctype == 3:
        if palette is None:
            raise ValueError(f"{name}: palette image without a PLTE chunk")
        idx = s[..., 0]
        if idx.max() >= len(palette):
            raise ValueError(f"{name}: palette index {int(idx.max())} out of range ({len(palette)} entries)")
        rgb = palette[idx].astype(np.float64) / 255.0
        alpha = None
        if trns is not None:
            table = np.full(len(palette), 255, np.int64)
            t = np.frombuffer(trns, np.uint8)[: len(palette)]
            table[: len(t)] = t
            alpha = table[idx].astype(np.float64) / 255.0
        return rgb, alpha
    if ctype == 4:
        return s[..., 0] / scale, s[..., 1] / scale
    if ctype == 6:
        return s[..., :3] / scale, s[..., 3] / scale
    image = s / scale
    alpha = None
    if trns is not None:  # colour key: one 16-bit sample per channel
        n = s.shape[-1]
        if len(trns) < 2 * n:
            raise ValueError(f"{name}: tRNS chunk too short for colour type {ctype}")
        key = np.array(struct.unpack(f">{n}H", trns[: 2 * n]), np.int64)
        alpha = np.where(np.all(s == key, axis=-1), 0.0, 1.0)
    return (image[..., 0] if ctype == 0 else image), alpha


# ------------------------------------------------------------------ writing


def png_bytes(image: np.ndarray) -> bytes:
    """Encode an [H, W] (grey), [H, W, 3] (RGB) or [H, W, 4] (RGBA) image with values in [0, 1] as an 8-bit PNG."""
    img = np.asarray(image, np.float64)
    if not np.all(np.isfinite(img)):
        raise ValueError("png: image contains NaN or infinite values")
    img = np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)
    if img.ndim == 2:
        color_type, channels = 0, 1
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        channels = img.shape[2]
        color_type = 2 if channels == 3 else 6
    else:
        raise ValueError(f"png: expected [H, W], [H, W, 3] or [H, W, 4], got {img.shape}")
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"png: empty image {img.shape}")
    rows = np.zeros((h, 1 + w * channels), np.uint8)  # filter byte 0 (none) on every row
    rows[:, 1:] = img.reshape(h, w * channels)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + png_chunk(b"IEND", b"")


def png_chunk(tag: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, tag, data, CRC-32 of tag + data."""
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` (values in [0, 1]; [H, W], [H, W, 3] or [H, W, 4]) as an 8-bit PNG, atomically."""
    try:
        data = png_bytes(image)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e
    contract.atomic_write_bytes(path, data)
