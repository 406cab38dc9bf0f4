"""The cache folder: frames, markers, events, PC2, guarded deletes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from physinteract import contract
from physinteract.contract import ContractError


def _writer(folder, n=5, frames=(1, 4)):
    m = np.eye(4)
    m[:3, 3] = [1.0, 2.0, 3.0]  # object sits at (1, 2, 3): world->object subtracts it
    return contract.CacheWriter(
        folder, kind="simulate", fps=24, frame_start=frames[0], frame_end=frames[1],
        point_sets=[contract.PointSetInfo("particles", n), contract.PointSetInfo("mesh", 3, np.linalg.inv(m))],
    )


def _frame_data(f, n=5):
    return {"particles": {"positions": np.full((n, 3), float(f))}, "mesh": {"positions": np.full((3, 3), 10.0 + f)}}


def test_frames_are_named_zero_padded_and_marked_after_data(tmp_path):
    w = _writer(tmp_path)
    w.write_frame(12, _frame_data(12))
    assert (tmp_path / "frames" / "frame_000012.npz").is_file()
    marker = json.loads((tmp_path / "frames" / "frame_000012.done").read_text())
    assert marker["frame"] == 12 and marker["bytes"] == (tmp_path / "frames" / "frame_000012.npz").stat().st_size
    assert contract.completed_frames(tmp_path, verify=True) == [12]
    np.testing.assert_array_equal(contract.read_frame(tmp_path, 12)["particles.positions"], np.full((5, 3), 12.0))


def test_read_frame_with_keys_returns_those_arrays_only_and_names_a_missing_one(tmp_path):
    """A playback handler asks for two arrays of a frame: it gets exactly those, with the written values; an
    absent array is a ContractError naming the frame file and the array."""
    w = _writer(tmp_path)
    w.write_frame(4, _frame_data(4))
    data = contract.read_frame(tmp_path, 4, keys=("mesh.positions",))
    assert list(data) == ["mesh.positions"]
    np.testing.assert_array_equal(data["mesh.positions"], np.full((3, 3), 14.0))
    with pytest.raises(ContractError) as e:
        contract.read_frame(tmp_path, 4, keys=("particles.positions", "particles.scales"))
    assert e.value.field == "particles.scales" and e.value.file.endswith("frame_000004.npz")


def test_a_frame_without_marker_or_with_truncated_data_does_not_count(tmp_path):
    w = _writer(tmp_path)
    for f in (1, 2, 3):
        w.write_frame(f, _frame_data(f))
    (tmp_path / "frames" / "frame_000002.done").unlink()  # crashed before the marker
    data = (tmp_path / "frames" / "frame_000003.npz").read_bytes()
    (tmp_path / "frames" / "frame_000003.npz").write_bytes(data[:-10])  # truncated
    assert contract.completed_frames(tmp_path) == [1]
    with pytest.raises(ContractError):
        contract.read_frame(tmp_path, 2)


def test_finish_writes_pc2_in_object_space_for_each_point_set(tmp_path):
    w = _writer(tmp_path)
    for f in (1, 2, 3, 4):
        w.write_frame(f, _frame_data(f))
    w.finish()
    pts, start, rate = contract.read_pc2(tmp_path / "particles.pc2")
    assert (start, rate, pts.shape) == (1.0, 1.0, (4, 5, 3))
    np.testing.assert_array_equal(pts[:, 0, 0], [1, 2, 3, 4])
    mesh, _, _ = contract.read_pc2(tmp_path / "mesh.pc2")
    np.testing.assert_allclose(mesh[0, 0], [11 - 1.0, 11 - 2.0, 11 - 3.0])  # world (11,11,11) - object origin
    assert contract.read_cache_manifest(tmp_path)["status"] == "complete"


def test_pc2_covers_only_the_contiguous_completed_run(tmp_path):
    w = _writer(tmp_path)
    for f in (1, 2, 4):
        w.write_frame(f, _frame_data(f))
    contract.assemble_pc2(tmp_path)
    pts, start, _ = contract.read_pc2(tmp_path / "particles.pc2")
    assert start == 1.0 and len(pts) == 2


def test_pc2_header_matches_the_format(tmp_path):
    """POINTCACHE2 header: signature, version 1, points, start frame, sample rate, samples."""
    import struct

    contract.write_pc2(tmp_path / "a.pc2", np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3), start_frame=5)
    raw = (tmp_path / "a.pc2").read_bytes()
    sig, ver, npts, start, rate, nsamp = struct.unpack("<12siiffi", raw[:32])
    assert (sig, ver, npts, start, rate, nsamp) == (b"POINTCACHE2\0", 1, 3, 5.0, 1.0, 2)
    assert len(raw) == 32 + 2 * 3 * 3 * 4
    assert np.frombuffer(raw[32:], "<f4")[4] == 4.0


def test_corrupt_pc2_is_reported(tmp_path):
    contract.write_pc2(tmp_path / "a.pc2", np.zeros((2, 3, 3)), start_frame=1)
    p = tmp_path / "a.pc2"
    p.write_bytes(p.read_bytes()[:-4])
    with pytest.raises(ContractError, match="a.pc2"):
        contract.read_pc2(p)


def test_events_are_followed_incrementally_and_partial_lines_wait(tmp_path):
    log = contract.EventLog(tmp_path / "events.jsonl")
    log.emit("start", frames=3)
    log.emit("progress", frame=1, loss=np.float32(0.5))
    events, off = contract.follow_events(tmp_path / "events.jsonl")
    assert [e["event"] for e in events] == ["start", "progress"] and events[1]["loss"] == 0.5
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('{"event": "fra')  # a writer mid-line
    events, off2 = contract.follow_events(tmp_path / "events.jsonl", off)
    assert events == [] and off2 == off
    with open(tmp_path / "events.jsonl", "a") as f:
        f.write('me", "frame": 2}\n')
    events, _ = contract.follow_events(tmp_path / "events.jsonl", off2)
    assert events == [{"event": "frame", "frame": 2}]


def test_clear_cache_removes_only_known_files(tmp_path):
    w = _writer(tmp_path)
    w.write_frame(1, _frame_data(1))
    w.write_material(np.ones(5), np.full(5, 0.3))
    w.finish()
    (tmp_path / "notes.txt").write_text("the user's own file")
    (tmp_path / "frames" / "keep.png").write_bytes(b"user data")
    removed = contract.clear_cache(tmp_path)
    assert removed >= 6
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["frames", "keep.png", "notes.txt"]


def test_clear_cache_refuses_a_folder_that_is_not_a_cache(tmp_path):
    (tmp_path / "precious.blend").write_bytes(b"x")
    with pytest.raises(ContractError):
        contract.clear_cache(tmp_path)
    assert (tmp_path / "precious.blend").exists()


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "E.npy"
    contract.atomic_save_npy(path, np.ones(3))

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        contract.atomic_save_npy(path, np.zeros(3))
    np.testing.assert_array_equal(np.load(path), np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["E.npy"]  # no temporary left behind


def test_writer_rejects_wrong_shapes_and_nan(tmp_path):
    w = _writer(tmp_path)
    with pytest.raises(ValueError, match="shape"):
        w.write_frame(1, {"particles": {"positions": np.zeros((4, 3))}, "mesh": {"positions": np.zeros((3, 3))}})
    bad = _frame_data(1)
    bad["particles"]["positions"][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        w.write_frame(1, bad)
    assert contract.completed_frames(tmp_path) == []


def test_atomic_writes_get_umask_permissions_not_private_ones(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        contract.atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_clear_cache_removes_the_estimate_files_and_nothing_else(tmp_path):
    """An estimate cache's own files (material, trajectory, contact, summary, checkpoint) go; a user's file stays."""
    from physinteract.contract import CacheWriter, PointSetInfo, clear_cache

    w = CacheWriter(tmp_path, kind="estimate", fps=24, frame_start=1, frame_end=2, point_sets=[PointSetInfo("particles", 2)])
    w.write_material(np.ones(2), np.full(2, 0.3))
    for name in ("estimate.json", "estimate_trajectory.npy", "estimate_trajectory_times.npy", "estimate_contact.npy",
                 "estimate_checkpoint.pt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    clear_cache(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_read_contact_returns_the_written_indices_and_names_the_file_when_they_do_not_fit(tmp_path):
    """read_contact: None without the file (an older estimate), the written indices sorted and unique, and a clear
    error naming estimate_contact.npy for indices beyond the particle count, floats or a pickled object array."""
    from physinteract.contract import CONTACT_FILE, ContractError, read_contact

    assert read_contact(tmp_path, 5) is None
    np.save(tmp_path / CONTACT_FILE, np.array([4, 1, 1, 3]))
    np.testing.assert_array_equal(read_contact(tmp_path, 5), [1, 3, 4])
    with pytest.raises(ContractError, match=r"estimate_contact.npy.*contact.*\[0, 4\)"):
        read_contact(tmp_path, 4)
    np.save(tmp_path / CONTACT_FILE, np.array([0.5, 1.0]))
    with pytest.raises(ContractError, match="estimate_contact.npy.*float64"):
        read_contact(tmp_path, 5)
    np.save(tmp_path / CONTACT_FILE, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ContractError, match="estimate_contact.npy"):
        read_contact(tmp_path, 5)


def test_read_material_names_the_file_and_field(tmp_path):
    """read_material refuses a wrong particle count and a missing file with the file's name."""
    from physinteract.contract import ContractError, read_material

    np.save(tmp_path / "material_E.npy", np.full(3, 1e4))
    with pytest.raises(ContractError, match="material_nu.npy"):
        read_material(tmp_path, 3)
    np.save(tmp_path / "material_nu.npy", np.full(3, 0.3))
    E, nu = read_material(tmp_path, 3)
    assert E.shape == (3,) and nu[0] == 0.3
    with pytest.raises(ContractError, match=r"material_E.npy.*\[4\]"):
        read_material(tmp_path, 4)


def test_read_contact_weights_follow_the_contact_indices_order_and_name_the_file_when_they_do_not_fit(tmp_path):
    """read_contact_weights: None without the file, the weights reordered with read_contact's sorted unique indices,
    and a clear error naming estimate_contact_weights.npy for a count that differs from the indices', a weight outside
    (0, 1], or weights without the indices beside them."""
    from physinteract.contract import CONTACT_FILE, CONTACT_WEIGHTS_FILE, ContractError, read_contact_weights

    assert read_contact_weights(tmp_path, 5) is None
    np.save(tmp_path / CONTACT_WEIGHTS_FILE, np.array([0.5, 1.0]))
    with pytest.raises(ContractError, match="estimate_contact_weights.npy.*estimate_contact.npy"):
        read_contact_weights(tmp_path, 5)
    np.save(tmp_path / CONTACT_FILE, np.array([4, 1, 3]))
    np.save(tmp_path / CONTACT_WEIGHTS_FILE, np.array([0.2, 0.4, 1.0]))
    np.testing.assert_array_equal(read_contact_weights(tmp_path, 5), [0.4, 1.0, 0.2])  # indices 1, 3, 4
    for bad in (np.array([0.5, 1.0]), np.array([0.0, 0.5, 1.0]), np.array([1, 1, 1])):
        np.save(tmp_path / CONTACT_WEIGHTS_FILE, bad)
        with pytest.raises(ContractError, match="estimate_contact_weights.npy"):
            read_contact_weights(tmp_path, 5)
