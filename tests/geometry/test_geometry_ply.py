"""3DGS PLY and mesh file I/O: lossless round trips and clear errors (file, property) for bad files."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from physinteract.contract import ContractError
from physinteract.geometry import GaussianCloud, read_gaussian_ply, read_mesh, write_gaussian_ply
from physinteract.geometry.bench import _to_big_endian, synthetic_cloud
from physinteract.geometry.fill import Particles
from physinteract.geometry.mesh_io import write_glb
from physinteract.geometry.particles_io import read_particles_ply, write_particles_ply
from physinteract.geometry.plyfile import write_ply
from physinteract.geometry.shapes import box, torus


def _same(a: GaussianCloud, b: GaussianCloud) -> None:
    for name in ("means", "f_dc", "f_rest", "opacity_logit", "log_scales", "rotations", "normals"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert list(a.extra) == list(b.extra)
    for k in a.extra:
        assert a.extra[k].dtype == b.extra[k].dtype and np.array_equal(a.extra[k], b.extra[k]), k


@pytest.mark.parametrize("binary", [True, False])
def test_gaussian_ply_round_trip_is_lossless(tmp_path, binary):
    """write -> read returns bit-identical arrays (binary and ASCII), extra properties and their types kept."""
    cloud = synthetic_cloud(500)
    cloud.extra = {"segment": np.arange(500, dtype=np.int32), "confidence": np.linspace(0, 1, 500, dtype=np.float32)}
    path = tmp_path / "c.ply"
    write_gaussian_ply(path, cloud, binary=binary)
    back = read_gaussian_ply(path)
    _same(cloud, back)
    write_gaussian_ply(tmp_path / "again.ply", back, binary=binary)
    assert (tmp_path / "again.ply").read_bytes() == path.read_bytes()


def test_big_endian_and_no_f_rest_and_doubles(tmp_path):
    """Big-endian files read like little-endian; files without f_rest or nx/ny/nz, or with doubles, are accepted."""
    cloud = synthetic_cloud(300)
    le, be = tmp_path / "le.ply", tmp_path / "be.ply"
    write_gaussian_ply(le, cloud)
    _to_big_endian(le, be)
    _same(read_gaussian_ply(le), read_gaussian_ply(be))
    bare = GaussianCloud(means=cloud.means.astype(np.float64), f_dc=cloud.f_dc, f_rest=np.zeros((300, 0), np.float32),
                         opacity_logit=cloud.opacity_logit, log_scales=cloud.log_scales, rotations=cloud.rotations)
    write_gaussian_ply(tmp_path / "bare.ply", bare)
    back = read_gaussian_ply(tmp_path / "bare.ply")
    assert back.f_rest.shape == (300, 0) and back.normals is None and back.means.dtype == np.float64
    _same(bare, back)


def _vertex_props(n: int, drop: str | None = None, extra: dict | None = None) -> dict:
    cloud = synthetic_cloud(n)
    props = {"x": cloud.means[:, 0], "y": cloud.means[:, 1], "z": cloud.means[:, 2]}
    props.update({f"f_dc_{i}": cloud.f_dc[:, i] for i in range(3)})
    props["opacity"] = cloud.opacity_logit
    props.update({f"scale_{i}": cloud.log_scales[:, i] for i in range(3)})
    props.update({f"rot_{i}": cloud.rotations[:, i] for i in range(4)})
    props.update(extra or {})
    props.pop(drop, None)
    return props


def _error(path) -> ContractError:
    with pytest.raises(ContractError) as e:
        read_gaussian_ply(path)
    assert str(path) in str(e.value)
    return e.value


def test_missing_f_dc_0_names_file_and_property(tmp_path):
    """A file without f_dc_0 fails with (file, 'vertex.f_dc_0', missing)."""
    path = tmp_path / "no_dc.ply"
    write_ply(path, {"vertex": _vertex_props(10, drop="f_dc_0")})
    err = _error(path)
    assert err.field == "vertex.f_dc_0" and err.got == "missing"


def test_compressed_layouts_are_refused(tmp_path):
    """SuperSplat-style compressed files ('chunk' element, packed_position) fail with a message saying so."""
    chunked = tmp_path / "chunk.ply"
    write_ply(chunked, {"chunk": {"min_x": np.zeros(2, np.float32)},
                        "vertex": {"packed_position": np.zeros(4, np.uint32), "packed_rotation": np.zeros(4, np.uint32)}})
    err = _error(chunked)
    assert err.field == "chunk" and "compressed" in err.got
    packed = tmp_path / "packed.ply"
    write_ply(packed, {"vertex": {"packed_position": np.zeros(4, np.uint32)}})
    err = _error(packed)
    assert err.field == "vertex.packed_position" and "compressed" in err.got


def test_truncated_binary_names_the_element(tmp_path):
    """A binary file cut short fails with the element and the byte counts, not a numpy traceback."""
    path = tmp_path / "cut.ply"
    write_gaussian_ply(path, synthetic_cloud(100))
    blob = path.read_bytes()
    path.write_bytes(blob[:-500])
    err = _error(path)
    assert err.field == "vertex" and "truncated" in err.got


def test_truncated_ascii_and_bad_tokens(tmp_path):
    """ASCII files with too few numbers or a non-number token fail clearly."""
    path = tmp_path / "a.ply"
    write_gaussian_ply(path, synthetic_cloud(20), binary=False)
    text = path.read_text()
    (tmp_path / "cut.ply").write_text(text[: len(text) - 200])
    assert "truncated" in _error(tmp_path / "cut.ply").got
    (tmp_path / "bad.ply").write_text(text.replace("end_header\n", "end_header\nabc "))
    assert "not a number" in _error(tmp_path / "bad.ply").got


def test_unsupported_property_type_and_not_a_ply(tmp_path):
    """An unknown property type is named with its property; a non-PLY file is refused."""
    path = tmp_path / "half.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty half x\nend_header\n\0\0")
    err = _error(path)
    assert err.field == "vertex.x" and "half" in err.got
    other = tmp_path / "other.ply"
    other.write_bytes(b"solid stl\n")
    assert _error(other).field == ""
    fmt = tmp_path / "fmt.ply"
    fmt.write_bytes(b"ply\nformat binary_middle_endian 1.0\nend_header\n")
    assert _error(fmt).field == "format"


def test_particles_ply_round_trip(tmp_path):
    """Particle PLY keeps positions (float32), volumes, labels, sources and the cell size."""
    rng = np.random.default_rng(0)
    p = Particles(positions=rng.normal(size=(50, 3)).astype(np.float32).astype(np.float64),
                  volume=np.full(50, 1e-6, np.float32).astype(np.float64), labels=(rng.random(50) > 0.5).astype(np.uint8),
                  cell_size=0.01, source_index=rng.integers(-1, 40, 50))
    write_particles_ply(tmp_path / "p.ply", p)
    q = read_particles_ply(tmp_path / "p.ply")
    assert np.array_equal(p.positions, q.positions) and np.array_equal(p.labels, q.labels)
    assert np.array_equal(p.volume, q.volume) and np.array_equal(p.source_index, q.source_index) and q.cell_size == 0.01


def _signed_volume(v, f):
    t = v[f]
    return np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6


def test_mesh_readers_agree_obj_ply_glb(tmp_path):
    """The same torus read from OBJ (quads), binary/ASCII PLY and GLB (translated node) encloses the same volume."""
    v, f = torus(0.3, 0.1, 24, 12)
    ref = _signed_volume(v, f)
    # OBJ with the triangles merged pairwise into quads (fan-triangulated back by the reader) and v/vt/vn indices.
    quads = np.concatenate([f[: len(f) // 2], f[len(f) // 2:, 2:3]], axis=1)
    lines = [f"v {x:.17g} {y:.17g} {z:.17g}" for x, y, z in v] + [f"f {a + 1}/1/1 {b + 1}//2 {c + 1} {d + 1}" for a, b, c, d in quads]
    (tmp_path / "t.obj").write_text("\n".join(lines) + "\n")
    vo, fo = read_mesh(tmp_path / "t.obj")
    assert len(fo) == len(f) and np.isclose(_signed_volume(vo, fo), ref)
    # PLY with a face list, binary and ASCII, and one with mixed triangles and quads.
    for binary in (True, False):
        path = tmp_path / f"t{int(binary)}.ply"
        _write_mesh_ply(path, v, [list(t) for t in f], binary)
        vp, fp = read_mesh(path)
        assert np.isclose(_signed_volume(vp, fp), ref)
    half = len(f) // 2
    mixed = [list(q) for q in quads[:10]] + [list(t) for t in np.concatenate([f[10:half], f[half + 10:]])]
    _write_mesh_ply(tmp_path / "mixed.ply", v, mixed, True)
    vm, fm = read_mesh(tmp_path / "mixed.ply")
    assert len(fm) == len(f) and np.isclose(_signed_volume(vm, fm), ref)
    # GLB: glTF axes (+Y up) under a translated node; read back into Blender axes (x, -z, y).
    write_glb(tmp_path / "t.glb", v, f, translation=(1.0, 2.0, 3.0))
    vg, fg = read_mesh(tmp_path / "t.glb")
    moved = v.astype(np.float32).astype(np.float64) + [1.0, 2.0, 3.0]
    assert np.allclose(vg, np.stack([moved[:, 0], -moved[:, 2], moved[:, 1]], 1))
    assert np.isclose(_signed_volume(vg, fg), ref, rtol=1e-5)


def _write_mesh_ply(path, v, polys, binary):
    head = ["ply", "format " + ("binary_little_endian" if binary else "ascii") + " 1.0", f"element vertex {len(v)}",
            "property double x", "property double y", "property double z", f"element face {len(polys)}",
            "property list uchar int vertex_indices", "end_header"]
    if binary:
        body = np.asarray(v, "<f8").tobytes() + b"".join(struct.pack(f"<B{len(p)}i", len(p), *p) for p in polys)
        path.write_bytes(("\n".join(head) + "\n").encode() + body)
    else:
        rows = [" ".join(repr(float(c)) for c in p) for p in v] + [" ".join(map(str, [len(p), *p])) for p in polys]
        path.write_text("\n".join(head + rows) + "\n")


def test_bad_mesh_files_name_file_and_field(tmp_path):
    """Meshes with out-of-range indices, unknown suffixes or required glTF extensions fail with a named field."""
    (tmp_path / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(ContractError) as e:
        read_mesh(tmp_path / "bad.obj")
    assert e.value.field == "faces"
    with pytest.raises(ContractError):
        read_mesh(tmp_path / "x.stl")
    v, f = box()
    write_glb(tmp_path / "b.glb", v, f)
    blob = bytearray((tmp_path / "b.glb").read_bytes())
    blob = blob.replace(b'"asset"', b'"extensionsRequired": ["KHR_draco_mesh_compression"], "asset"')
    # Fix the JSON chunk length (padded to 4 bytes with spaces) and the total length.
    js_len = struct.unpack_from("<I", blob, 12)[0]
    extra = len(blob) - (tmp_path / "b.glb").stat().st_size
    pad = (-(js_len + extra)) % 4
    js_end = 20 + js_len + extra
    blob[js_end:js_end] = b" " * pad
    struct.pack_into("<I", blob, 12, js_len + extra + pad)
    struct.pack_into("<I", blob, 8, len(blob))
    (tmp_path / "draco.glb").write_bytes(bytes(blob))
    with pytest.raises(ContractError) as e:
        read_mesh(tmp_path / "draco.glb")
    assert e.value.field == "extensionsRequired" and "draco" in e.value.got.lower()


def test_glb_node_rotation_scale_and_matrix_are_applied(tmp_path):
    """A GLB node with rotation + scale (TRS) or a 4x4 matrix places vertices at M v (glTF axes kept when asked)."""
    import json as _json

    v, f = box((0.3, 0.2, 0.1))
    write_glb(tmp_path / "b.glb", v, f)
    blob = (tmp_path / "b.glb").read_bytes()
    js_len = struct.unpack_from("<I", blob, 12)[0]
    doc = _json.loads(blob[20:20 + js_len])
    s = np.sqrt(0.5)
    for node, M in [({"rotation": [0.0, 0.0, s, s], "scale": [2.0, 1.0, 1.0]},
                     np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]) @ np.diag([2.0, 1.0, 1.0])),
                    ({"matrix": [1, 0, 0, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0.5, 0, 0, 1]},  # column-major: x -> x, y -> z, z -> -y
                     np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]]))]:
        doc["nodes"] = [{"mesh": 0, **node}]
        js = _json.dumps(doc).encode()
        js += b" " * (-len(js) % 4)
        rest = blob[20 + js_len:]
        out = struct.pack("<III", 0x46546C67, 2, 20 + len(js) + len(rest)) + struct.pack("<II", len(js), 0x4E4F534A) + js + rest
        (tmp_path / "n.glb").write_bytes(out)
        got, faces = read_mesh(tmp_path / "n.glb", gltf_to_blender_axes=False)
        expected = v.astype(np.float32).astype(np.float64) @ M.T
        if "matrix" in node:
            expected = expected + [0.5, 0, 0]
        assert np.allclose(got, expected, atol=1e-6)
        assert np.isclose(_signed_volume(got, faces), 0.006 * abs(np.linalg.det(M)))
