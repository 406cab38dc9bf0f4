"""A small, vectorised PLY reader and writer (numpy only).

Reads ``ascii``, ``binary_little_endian`` and ``binary_big_endian`` files. Elements
whose properties are all scalars are read with one ``np.frombuffer`` on a
structured dtype, so a million-row element reads in well under a second. List
properties (mesh faces) take a vectorised path when every row has the same list
length (triangle meshes) and a per-row path otherwise.

Every failure raises :class:`physinteract.contract.ContractError` naming the file
and the element or property at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from physinteract.contract import ContractError, atomic_write_bytes

# PLY type names (both spellings) -> numpy type codes, without byte order.
PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
# numpy type codes -> the PLY name we write.
PLY_NAMES: dict[str, str] = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
                             "f4": "float", "f8": "double"}
FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
_SUPPORTED_TYPES = "one of " + ", ".join(sorted(set(PLY_TYPES)))


@dataclass
class PlyProperty:
    """One property of an element; ``count_type`` is set for list properties."""

    name: str
    type: str  # numpy code without byte order, e.g. "f4"
    count_type: str | None = None


@dataclass
class PlyElement:
    name: str
    count: int
    properties: list[PlyProperty] = field(default_factory=list)

    @property
    def has_lists(self) -> bool:
        return any(p.count_type is not None for p in self.properties)

    def property_names(self) -> list[str]:
        return [p.name for p in self.properties]


@dataclass
class PlyHeader:
    format: str
    elements: list[PlyElement]
    comments: list[str]
    data_offset: int  # byte offset of the first data byte

    def element(self, name: str) -> PlyElement | None:
        for e in self.elements:
            if e.name == name:
                return e
        return None


@dataclass
class PlyList:
    """A list property: row i holds ``values[offsets[i]:offsets[i + 1]]``."""

    counts: np.ndarray  # [n] int64
    values: np.ndarray  # [sum(counts)]

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.counts)])

    def uniform(self) -> np.ndarray | None:
        """The lists as an [n, L] array when every row has length L, else None."""
        if len(self.counts) == 0:
            return self.values.reshape(0, 0)
        length = int(self.counts[0])
        if np.all(self.counts == length):
            return self.values.reshape(len(self.counts), length)
        return None


PlyData = dict[str, dict[str, "np.ndarray | PlyList"]]


def read_ply_header(path: str | Path, head: bytes) -> PlyHeader:
    """Parse the header at the start of ``head`` (the file's first bytes)."""
    if not head.startswith(b"ply"):
        raise ContractError(path, "", "a PLY file (first line 'ply')", f"{head[:16]!r}")
    end = head.find(b"end_header")
    if end < 0:
        raise ContractError(path, "end_header", "a PLY header closed by 'end_header'", "no 'end_header' line")
    line_end = head.find(b"\n", end)
    if line_end < 0:
        raise ContractError(path, "end_header", "a newline after 'end_header'", "end of file")
    text = head[:end].decode("ascii", errors="replace")
    fmt = ""
    elements: list[PlyElement] = []
    comments: list[str] = []
    for raw in text.splitlines()[1:]:
        words = raw.split()
        if not words:
            continue
        key = words[0]
        if key == "format":
            if len(words) < 2 or words[1] not in FORMATS:
                raise ContractError(path, "format", " or ".join(FORMATS), repr(" ".join(words[1:])))
            fmt = words[1]
        elif key in ("comment", "obj_info"):
            comments.append(raw.partition(" ")[2])
        elif key == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise ContractError(path, "element", "'element NAME COUNT'", repr(raw))
            elements.append(PlyElement(words[1], int(words[2])))
        elif key == "property":
            if not elements:
                raise ContractError(path, "property", "a property after an 'element' line", repr(raw))
            el = elements[-1]
            if len(words) == 5 and words[1] == "list":
                for t in (words[2], words[3]):
                    if t not in PLY_TYPES:
                        raise ContractError(path, f"{el.name}.{words[4]}", f"a PLY type ({_SUPPORTED_TYPES})", repr(t))
                el.properties.append(PlyProperty(words[4], PLY_TYPES[words[3]], PLY_TYPES[words[2]]))
            elif len(words) == 3:
                if words[1] not in PLY_TYPES:
                    raise ContractError(path, f"{el.name}.{words[2]}", f"a PLY type ({_SUPPORTED_TYPES})", repr(words[1]))
                el.properties.append(PlyProperty(words[2], PLY_TYPES[words[1]]))
            else:
                raise ContractError(path, f"{el.name}", "'property TYPE NAME' or 'property list CTYPE TYPE NAME'", repr(raw))
        else:
            raise ContractError(path, key, "a PLY header keyword (format, comment, element, property)", repr(raw))
    if not fmt:
        raise ContractError(path, "format", "a 'format' line", "none")
    return PlyHeader(fmt, elements, comments, line_end + 1)


def read_ply(path: str | Path) -> tuple[PlyHeader, PlyData]:
    """Read every element of a PLY file into ``{element: {property: array}}``.

    Scalar properties come back as 1-D arrays in the file's type (native byte
    order); list properties as :class:`PlyList`.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise ContractError(path, "", "a readable file", str(e)) from e
    header = read_ply_header(path, blob[:1 << 20] if len(blob) > 1 << 20 else blob)
    body = memoryview(blob)[header.data_offset:]
    if header.format == "ascii":
        return header, _read_ascii(path, header, bytes(body))
    endian = "<" if header.format == "binary_little_endian" else ">"
    return header, _read_binary(path, header, body, endian)


def _scalar_dtype(el: PlyElement, endian: str) -> np.dtype:
    return np.dtype([(p.name, endian + p.type) for p in el.properties])


def _native(a: np.ndarray) -> np.ndarray:
    """A contiguous copy in native byte order."""
    return np.ascontiguousarray(a).astype(a.dtype.newbyteorder("="), copy=False)


def _check_unique(path: Path, el: PlyElement) -> None:
    names = el.property_names()
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ContractError(path, f"{el.name}.{dup[0]}", "unique property names", "a repeated name")


def _read_binary(path: Path, header: PlyHeader, body: memoryview, endian: str) -> PlyData:
    out: PlyData = {}
    pos = 0
    for el in header.elements:
        _check_unique(path, el)
        if not el.has_lists:
            dt = _scalar_dtype(el, endian)
            need = dt.itemsize * el.count
            if pos + need > len(body):
                raise ContractError(path, el.name, f"{need} bytes of data for {el.count} '{el.name}' rows",
                                    f"{len(body) - pos} bytes (truncated file)")
            rows = np.frombuffer(body, dtype=dt, count=el.count, offset=pos)
            out[el.name] = {p.name: _native(rows[p.name]) for p in el.properties}
            pos += need
        else:
            out[el.name], pos = _read_binary_lists(path, el, body, pos, endian)
    return out


def _read_binary_lists(path: Path, el: PlyElement, body: memoryview, pos: int, endian: str) -> tuple[dict, int]:
    """An element with list properties: a uniform fast path, else row by row."""
    if el.count == 0:
        return {p.name: (PlyList(np.zeros(0, np.int64), np.zeros(0, p.type)) if p.count_type else np.zeros(0, p.type))
                for p in el.properties}, pos
    # Guess the list lengths from the first row, then check them all.
    lengths: list[int] = []
    q = pos
    for p in el.properties:
        if p.count_type is None:
            q += np.dtype(p.type).itemsize
            continue
        cdt = np.dtype(endian + p.count_type)
        if q + cdt.itemsize > len(body):
            raise ContractError(path, f"{el.name}.{p.name}", "a list length", "end of file (truncated file)")
        n = int(np.frombuffer(body, dtype=cdt, count=1, offset=q)[0])
        lengths.append(n)
        q += cdt.itemsize + n * np.dtype(p.type).itemsize
    fields: list[tuple] = []
    li = 0
    for p in el.properties:
        if p.count_type is None:
            fields.append((p.name, endian + p.type))
        else:
            fields.append((p.name + "\0n", endian + p.count_type))
            fields.append((p.name, endian + p.type, (lengths[li],)))
            li += 1
    dt = np.dtype(fields)
    if pos + dt.itemsize * el.count <= len(body):
        rows = np.frombuffer(body, dtype=dt, count=el.count, offset=pos)
        li = 0
        ok = True
        for p in el.properties:
            if p.count_type is not None:
                ok &= bool(np.all(rows[p.name + "\0n"] == lengths[li]))
                li += 1
        if ok:
            res: dict = {}
            li = 0
            for p in el.properties:
                if p.count_type is None:
                    res[p.name] = _native(rows[p.name])
                else:
                    vals = _native(rows[p.name]).reshape(-1)
                    res[p.name] = PlyList(np.full(el.count, lengths[li], np.int64), vals)
                    li += 1
            return res, pos + dt.itemsize * el.count
    # Mixed list lengths (e.g. triangles and quads): row by row.
    scal: dict[str, list] = {p.name: [] for p in el.properties}
    counts: dict[str, list[int]] = {p.name: [] for p in el.properties if p.count_type}
    q = pos
    try:
        for _ in range(el.count):
            for p in el.properties:
                if p.count_type is None:
                    dt1 = np.dtype(endian + p.type)
                    scal[p.name].append(np.frombuffer(body, dtype=dt1, count=1, offset=q))
                    q += dt1.itemsize
                else:
                    cdt = np.dtype(endian + p.count_type)
                    n = int(np.frombuffer(body, dtype=cdt, count=1, offset=q)[0])
                    q += cdt.itemsize
                    vdt = np.dtype(endian + p.type)
                    scal[p.name].append(np.frombuffer(body, dtype=vdt, count=n, offset=q))
                    counts[p.name].append(n)
                    q += n * vdt.itemsize
    except ValueError as e:
        raise ContractError(path, el.name, f"{el.count} '{el.name}' rows", "end of file (truncated file)") from e
    res = {}
    for p in el.properties:
        cat = np.concatenate(scal[p.name]) if scal[p.name] else np.zeros(0, p.type)
        cat = _native(cat)
        res[p.name] = PlyList(np.asarray(counts[p.name], np.int64), cat) if p.count_type else cat
    return res, q


def _read_ascii(path: Path, header: PlyHeader, body: bytes) -> PlyData:
    try:
        numbers = np.array(body.split(), dtype=np.float64)
    except ValueError as e:
        raise ContractError(path, "", "numbers in the ASCII data", f"a token that is not a number ({e})") from e
    out: PlyData = {}
    pos = 0
    for el in header.elements:
        _check_unique(path, el)
        nprop = len(el.properties)
        if not el.has_lists:
            need = nprop * el.count
            if pos + need > len(numbers):
                raise ContractError(path, el.name, f"{need} numbers for {el.count} '{el.name}' rows",
                                    f"{len(numbers) - pos} numbers (truncated file)")
            block = numbers[pos:pos + need].reshape(el.count, nprop)
            out[el.name] = {p.name: block[:, j].astype(p.type) for j, p in enumerate(el.properties)}
            pos += need
            continue
        cols: dict[str, list] = {p.name: [] for p in el.properties}
        cnts: dict[str, list[int]] = {p.name: [] for p in el.properties if p.count_type}
        for _ in range(el.count):
            for p in el.properties:
                if pos >= len(numbers):
                    raise ContractError(path, el.name, f"{el.count} '{el.name}' rows", "end of file (truncated file)")
                if p.count_type is None:
                    cols[p.name].append(numbers[pos:pos + 1])
                    pos += 1
                else:
                    n = int(numbers[pos])
                    if pos + 1 + n > len(numbers):
                        raise ContractError(path, el.name, f"{el.count} '{el.name}' rows", "end of file (truncated file)")
                    cols[p.name].append(numbers[pos + 1:pos + 1 + n])
                    cnts[p.name].append(n)
                    pos += 1 + n
        res: dict = {}
        for p in el.properties:
            cat = np.concatenate(cols[p.name]).astype(p.type) if cols[p.name] else np.zeros(0, p.type)
            res[p.name] = PlyList(np.asarray(cnts[p.name], np.int64), cat) if p.count_type else cat
        out[el.name] = res
    return out


def write_ply(path: str | Path, elements: dict[str, dict[str, np.ndarray]], binary: bool = True,
              comments: tuple[str, ...] = ()) -> None:
    """Write scalar-only elements ``{element: {property: [n] array}}`` atomically.

    Property types follow the arrays' dtypes (bool is written as uchar, int64 as
    int, float16 as float). ``binary`` selects little-endian binary, else ASCII.
    """
    lines = ["ply", "format " + ("binary_little_endian 1.0" if binary else "ascii 1.0")]
    lines += [f"comment {c}" for c in comments]
    chunks: list[bytes] = []
    for ename, props in elements.items():
        arrays = {}
        n = None
        for pname, a in props.items():
            a = np.asarray(a)
            if a.ndim != 1:
                raise ValueError(f"{path}: {ename}.{pname} must be 1-D, got shape {a.shape}")
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError(f"{path}: {ename}.{pname} has {len(a)} rows, expected {n}")
            b = a.astype(_ply_code(a.dtype), copy=False)
            if a.dtype.kind in "iu" and b.dtype != a.dtype and not np.array_equal(a, b):
                raise ValueError(f"{path}: {ename}.{pname} has values outside the 32-bit range PLY can store")
            arrays[pname] = b
        n = n or 0
        lines.append(f"element {ename} {n}")
        lines += [f"property {PLY_NAMES[_ply_code(a.dtype)]} {k}" for k, a in arrays.items()]
        dt = np.dtype([(k, "<" + _ply_code(a.dtype)) for k, a in arrays.items()])
        if binary:
            rec = np.empty(n, dtype=dt)
            for k, a in arrays.items():
                rec[k] = a
            chunks.append(rec.tobytes())
        else:
            chunks.append(_ascii_rows(list(arrays.values()), n))
    lines.append("end_header")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("ascii") + b"".join(chunks))


def _ply_code(dt: np.dtype) -> str:
    dt = np.dtype(dt)
    if dt == np.bool_:
        return "u1"
    if dt.kind == "f":
        return "f8" if dt.itemsize == 8 else "f4"
    if dt.kind in "iu":
        code = f"{dt.kind}{min(dt.itemsize, 4)}"
        return code
    raise ValueError(f"no PLY type for dtype {dt}")


def _ascii_rows(columns: list[np.ndarray], n: int) -> bytes:
    if n == 0 or not columns:
        return b""
    fmts = []
    for a in columns:
        fmts.append("%.17g" if a.dtype == np.float64 else "%.9g" if a.dtype.kind == "f" else "%d")
    fmt = " ".join(fmts) + "\n"
    table = list(zip(*[a.tolist() for a in columns]))
    return "".join(fmt % row for row in table).encode("ascii")
