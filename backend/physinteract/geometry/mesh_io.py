"""Triangle meshes from OBJ, PLY and GLB (binary glTF 2.0) files, numpy only.

Polygons are fan-triangulated. glTF is +Y up; by default its vertices are turned
into Blender's +Z-up world frame the way Blender's glTF importer does
((x, y, z) -> (x, -z, y)), so particles line up with the imported object.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from physinteract.contract import ContractError
from physinteract.geometry.plyfile import PlyList, read_ply

MESH_SUFFIXES = (".obj", ".ply", ".glb")


def read_mesh(path: str | Path, gltf_to_blender_axes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh.

    Returns:
        vertices: [V, 3] float64, m (file units taken as metres).
        faces: [F, 3] int64 vertex indices, counter-clockwise seen from outside when
            the file follows that convention (OBJ, PLY and glTF do).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".obj":
        v, f = _read_obj(path)
    elif suffix == ".ply":
        v, f = _read_ply_mesh(path)
    elif suffix == ".glb":
        v, f = _read_glb(path, gltf_to_blender_axes)
    else:
        raise ContractError(path, "", "a mesh file (" + ", ".join(MESH_SUFFIXES) + ")", f"suffix '{path.suffix}'")
    if len(f) == 0:
        raise ContractError(path, "faces", "at least one triangle", "none")
    if not np.all(np.isfinite(v)):
        raise ContractError(path, "vertices", "finite coordinates", "NaN or infinite values")
    if f.min() < 0 or f.max() >= len(v):
        raise ContractError(path, "faces", f"vertex indices in [0, {len(v)})", f"[{f.min()}, {f.max()}]")
    return v, f


def _fan(polys: list[list[int]]) -> np.ndarray:
    tris = [(p[0], p[i], p[i + 1]) for p in polys for i in range(1, len(p) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts: list[list[float]] = []
    polys: list[list[int]] = []
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise ContractError(path, "", "a readable file", str(e)) from e
    for lineno, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "v":
                verts.append([float(w) for w in words[1:4]])
            elif words[0] == "f":
                idx = []
                for w in words[1:]:
                    i = int(w.split("/")[0])
                    idx.append(i - 1 if i > 0 else len(verts) + i)
                polys.append(idx)
        except ValueError as e:
            raise ContractError(path, f"line {lineno}", "'v X Y Z' or 'f I J K ...'", repr(line.strip())) from e
    v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    return v, _fan(polys)


def _read_ply_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    header, data = read_ply(path)
    if "vertex" not in data:
        raise ContractError(path, "vertex", "a 'vertex' element", "none")
    v = data["vertex"]
    for c in ("x", "y", "z"):
        if c not in v:
            raise ContractError(path, f"vertex.{c}", "a vertex coordinate", "missing")
    verts = np.stack([np.asarray(v[c], np.float64) for c in ("x", "y", "z")], axis=1)
    face = data.get("face")
    if face is None:
        raise ContractError(path, "face", "a 'face' element (a mesh), or a 3DGS PLY with f_dc_0", "no 'face' element")
    lists = [a for k, a in face.items() if k in ("vertex_indices", "vertex_index") and isinstance(a, PlyList)]
    if not lists:
        raise ContractError(path, "face.vertex_indices", "a list property of vertex indices", "missing")
    lst = lists[0]
    uni = lst.uniform()
    if uni is not None and uni.shape[1] == 3:
        return verts, uni.astype(np.int64)
    if np.any(lst.counts < 3):
        raise ContractError(path, "face.vertex_indices", "faces with at least 3 vertices", "a face with fewer")
    off = lst.offsets
    polys = [lst.values[off[i]:off[i + 1]].astype(np.int64).tolist() for i in range(len(lst.counts))]
    return verts, _fan(polys)


_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_COMPONENTS = {5120: "i1", 5121: "u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_TYPE_SIZE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _read_glb(path: Path, to_blender: bool) -> tuple[np.ndarray, np.ndarray]:
    blob = path.read_bytes()
    if len(blob) < 20 or struct.unpack_from("<I", blob, 0)[0] != _GLB_MAGIC:
        raise ContractError(path, "", "a binary glTF (.glb) file starting with 'glTF'", f"{blob[:4]!r}")
    version, total = struct.unpack_from("<II", blob, 4)
    if version != 2:
        raise ContractError(path, "version", "glTF 2", str(version))
    pos, doc, binchunk = 12, None, b""
    while pos + 8 <= min(total, len(blob)):
        length, ctype = struct.unpack_from("<II", blob, pos)
        chunk = blob[pos + 8:pos + 8 + length]
        if len(chunk) < length:
            raise ContractError(path, "chunk", f"{length} bytes", f"{len(chunk)} (truncated file)")
        if ctype == _CHUNK_JSON:
            doc = json.loads(chunk.decode("utf-8"))
        elif ctype == _CHUNK_BIN and not binchunk:
            binchunk = chunk
        pos += 8 + length
    if doc is None:
        raise ContractError(path, "JSON", "a JSON chunk", "none")
    for ext in doc.get("extensionsRequired", []):
        raise ContractError(path, "extensionsRequired", "no required extensions (e.g. no Draco or meshopt compression)",
                            repr(ext))

    def accessor(i: int, what: str) -> np.ndarray:
        acc = doc["accessors"][i]
        if "sparse" in acc:
            raise ContractError(path, f"accessors[{i}].sparse", "dense accessors", "a sparse accessor")
        bv = doc["bufferViews"][acc["bufferView"]]
        if bv.get("buffer", 0) != 0 or "uri" in doc["buffers"][bv.get("buffer", 0)]:
            raise ContractError(path, f"accessors[{i}]", "data in the GLB's BIN chunk", "an external buffer")
        dt = np.dtype(_COMPONENTS[acc["componentType"]])
        ncomp = _TYPE_SIZE[acc["type"]]
        count = acc["count"]
        start = bv.get("byteOffset", 0) + acc.get("byteOffset", 0)
        stride = bv.get("byteStride", 0) or dt.itemsize * ncomp
        need = start + stride * (count - 1) + dt.itemsize * ncomp if count else start
        if need > len(binchunk):
            raise ContractError(path, f"accessors[{i}]", f"{need} bytes in the BIN chunk", f"{len(binchunk)}")
        raw = np.frombuffer(binchunk, dtype=np.uint8, count=need - start, offset=start) if count else np.zeros(0, np.uint8)
        rows = np.lib.stride_tricks.as_strided(raw, shape=(count, dt.itemsize * ncomp), strides=(stride, 1))
        return np.ascontiguousarray(rows).view(dt).reshape(count, ncomp)

    verts_all, faces_all, base = [], [], 0

    def visit(node_index: int, parent: np.ndarray) -> None:
        nonlocal base
        node = doc["nodes"][node_index]
        m = parent @ _node_matrix(node)
        if "mesh" in node:
            for k, prim in enumerate(doc["meshes"][node["mesh"]]["primitives"]):
                mode = prim.get("mode", 4)
                if mode in (0, 1, 2, 3):
                    continue  # points and lines carry no volume
                if mode != 4:
                    raise ContractError(path, f"meshes[{node['mesh']}].primitives[{k}].mode", "4 (triangles)", str(mode))
                if "POSITION" not in prim.get("attributes", {}):
                    raise ContractError(path, f"meshes[{node['mesh']}].primitives[{k}]", "a POSITION attribute", "none")
                p = accessor(prim["attributes"]["POSITION"], "POSITION").astype(np.float64)
                idx = (accessor(prim["indices"], "indices").reshape(-1).astype(np.int64) if "indices" in prim
                       else np.arange(len(p), dtype=np.int64))
                p = p @ m[:3, :3].T + m[:3, 3]
                verts_all.append(p)
                tri = idx[: len(idx) // 3 * 3].reshape(-1, 3)
                if np.linalg.det(m[:3, :3]) < 0:
                    tri = tri[:, ::-1]
                faces_all.append(tri + base)
                base += len(p)
        for c in node.get("children", []):
            visit(c, m)

    scenes = doc.get("scenes")
    if scenes:
        roots = scenes[doc.get("scene", 0)].get("nodes", [])
    else:
        children = {c for n in doc.get("nodes", []) for c in n.get("children", [])}
        roots = [i for i in range(len(doc.get("nodes", []))) if i not in children]
    for r in roots:
        visit(r, np.eye(4))
    if not verts_all:
        raise ContractError(path, "meshes", "at least one triangle primitive", "none")
    v = np.concatenate(verts_all)
    if to_blender:
        v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    return v, np.concatenate(faces_all)


def _node_matrix(node: dict) -> np.ndarray:
    """The node's local 4x4 transform (column vectors): matrix, or T R S."""
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T  # glTF stores column-major
    m = np.eye(4)
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                  [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                  [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    m[:3, :3] = r * np.asarray(node.get("scale", [1.0, 1.0, 1.0]))[None, :]
    m[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return m


def write_glb(path: str | Path, vertices: np.ndarray, faces: np.ndarray, translation: tuple[float, float, float] | None = None) -> None:
    """Write a one-mesh GLB (float32 positions, uint32 indices), vertices given in glTF axes.

    Used by tests and examples; ``translation`` puts the mesh under a translated node.
    """
    from physinteract.contract import atomic_write_bytes

    v = np.ascontiguousarray(vertices, dtype="<f4")
    f = np.ascontiguousarray(faces, dtype="<u4").reshape(-1)
    vb, fb = v.tobytes(), f.tobytes()
    node: dict = {"mesh": 0}
    if translation is not None:
        node["translation"] = list(translation)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [node],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "mode": 4}]}],
        "buffers": [{"byteLength": len(vb) + len(fb)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(vb)},
                        {"buffer": 0, "byteOffset": len(vb), "byteLength": len(fb)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(v), "type": "VEC3",
                       "min": v.min(0).tolist(), "max": v.max(0).tolist()},
                      {"bufferView": 1, "componentType": 5125, "count": len(f), "type": "SCALAR"}],
    }
    js = json.dumps(doc).encode("utf-8")
    js += b" " * (-len(js) % 4)
    binc = vb + fb
    binc += b"\0" * (-len(binc) % 4)
    total = 12 + 8 + len(js) + 8 + len(binc)
    out = struct.pack("<III", _GLB_MAGIC, 2, total) + struct.pack("<II", len(js), _CHUNK_JSON) + js
    out += struct.pack("<II", len(binc), _CHUNK_BIN) + binc
    atomic_write_bytes(path, out)
