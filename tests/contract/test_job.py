"""The job folder: round trip and the documented errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from physinteract import contract
from physinteract.contract import ContractError
from tests.conftest import make_job


def _assert_same_job(a: contract.Job, b: contract.Job) -> None:
    for name in ("particles", "labels", "volume", "E", "nu", "density", "contact", "trajectory_times", "trajectory"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.interaction == b.interaction
    assert a.solver == b.solver
    assert (a.fps, a.frame_start, a.frame_end, a.name, a.metadata) == (b.fps, b.frame_start, b.frame_end, b.name, b.metadata)
    assert (a.camera is None) == (b.camera is None)
    if a.camera is not None and b.camera is not None:
        np.testing.assert_array_equal(a.camera.K, b.camera.K)
        np.testing.assert_array_equal(a.camera.world_to_camera, b.camera.world_to_camera)
        assert (a.camera.width, a.camera.height) == (b.camera.width, b.camera.height)
    assert [p.name for p in a.point_sets] == [p.name for p in b.point_sets]
    for p, q in zip(a.point_sets, b.point_sets):
        np.testing.assert_array_equal(p.rest_positions, q.rest_positions)
        np.testing.assert_array_equal(p.object_to_world, q.object_to_world)


def test_job_written_and_read_back_is_identical(tmp_path):
    job = make_job()
    job.solver.ground = contract.Ground(height=0.0, friction=0.3, mode="slip")
    job.solver.substep_dt = 1e-4
    job.solver.domain_min = (-0.1, -0.1, 0.0)
    job.solver.domain_max = (0.1, 0.1, 0.2)
    job.interaction = contract.Interaction(type="point_non_adherent", collider_shape="capsule", collider_radius=0.005,
                                           collider_axis=(0.0, 0.0, 0.01), friction=0.2)
    job.point_sets[0].rest_rotations = np.tile([1.0, 0, 0, 0], (8, 1))
    job.point_sets[0].rest_scales = np.full((8, 3), 0.002)
    job.point_sets[0].faces = np.array([[0, 1, 2], [2, 3, 7]])
    contract.write_job(job, tmp_path / "job")
    back = contract.read_job(tmp_path / "job")
    _assert_same_job(job, back)
    np.testing.assert_array_equal(back.point_sets[0].rest_scales, job.point_sets[0].rest_scales)
    np.testing.assert_array_equal(back.point_sets[0].faces, job.point_sets[0].faces)
    # writing the read-back job gives byte-identical files
    contract.write_job(back, tmp_path / "job2")
    for f in sorted((tmp_path / "job").iterdir()):
        assert f.read_bytes() == (tmp_path / "job2" / f.name).read_bytes(), f.name


def test_job_with_video_paths_round_trips(tmp_path):
    job = make_job(frames=3)
    folder = tmp_path / "job"
    (folder / "frames").mkdir(parents=True)
    for i in range(3):
        (folder / "frames" / f"{i:04d}.png").write_bytes(b"png")
    job.video = contract.Video(frames=[f"frames/{i:04d}.png" for i in range(3)], masks=[])
    contract.write_job(job, folder)
    assert contract.read_job(folder).video == job.video


@pytest.fixture
def written(tmp_path):
    folder = tmp_path / "job"
    contract.write_job(make_job(), folder)
    return folder


def _edit_manifest(folder, fn):
    path = folder / "job.json"
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def test_missing_array_file_names_the_file_and_field(written):
    (written / "E.npy").unlink()
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.file.endswith("E.npy") and e.value.field == "arrays.E"
    assert "no such file" in str(e.value)


def test_missing_manifest_is_reported(tmp_path):
    with pytest.raises(ContractError, match="job.json"):
        contract.read_job(tmp_path)


def test_wrong_shape_names_the_array(written):
    np.save(written / "nu.npy", np.full((7, 2), 0.3))
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == "nu" and e.value.file.endswith("nu.npy")
    assert "shape [40]" in e.value.expected and "[7, 2]" in e.value.got


def test_nan_is_rejected_with_its_index(written):
    x = np.load(written / "particles.npy")
    x[5, 1] = np.nan
    np.save(written / "particles.npy", x)
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == "particles" and "[5, 1]" in e.value.got


def test_wrong_schema_version_is_rejected(written):
    _edit_manifest(written, lambda m: m.update(version=99))
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == "version" and "99" in e.value.got and e.value.file.endswith("job.json")


def test_unknown_interaction_type_is_rejected(written):
    _edit_manifest(written, lambda m: m["interaction"].update(type="grab"))
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == "interaction.type"
    assert "point_adherent" in e.value.expected and "'grab'" in e.value.got


@pytest.mark.parametrize(
    "name, value, field",
    [
        ("contact", np.array([0, 999]), "contact"),
        ("E", np.full(40, -1.0), "E"),
        ("nu", np.full(40, 0.5), "nu"),
        ("labels", np.full(40, 3, np.uint8), "labels"),
        ("trajectory_times", np.array([0.0, 0.2, 0.1]), "trajectory_times"),
        ("contact", np.array([0.5, 1.0]), "contact"),
    ],
)
def test_out_of_range_values_are_rejected(written, name, value, field):
    np.save(written / f"{name}.npy", value)
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == field


def test_pickled_array_is_refused_not_loaded(written):
    np.save(written / "E.npy", np.array([{"evil": 1}] * 40, dtype=object), allow_pickle=True)
    with pytest.raises(ContractError, match="no pickles"):
        contract.read_job(written)


def test_camera_extrinsics_need_one_matrix_per_frame(written):
    np.save(written / "camera_world_to_camera.npy", np.tile(np.eye(4), (2, 1, 1)))
    with pytest.raises(ContractError) as e:
        contract.read_job(written)
    assert e.value.field == "camera_world_to_camera" and "[6, 4, 4]" in e.value.expected


def test_missing_video_frame_is_named(tmp_path):
    job = make_job(frames=2)
    job.video = contract.Video(frames=["a.png", "b.png"])
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    contract.write_job(job, tmp_path)
    (tmp_path / "b.png").unlink()
    with pytest.raises(ContractError) as e:
        contract.read_job(tmp_path)
    assert e.value.field == "video.frames[1]" and e.value.file.endswith("b.png")


def test_write_refuses_an_invalid_job_and_leaves_the_folder_untouched(written):
    before = {p.name: p.read_bytes() for p in written.iterdir()}
    bad = make_job()
    bad.interaction.type = "shake"
    with pytest.raises(ContractError):
        contract.write_job(bad, written)
    assert {p.name: p.read_bytes() for p in written.iterdir()} == before


def test_opencv_camera_round_trip_and_projection():
    """A Blender camera at (0, -2, 0) looking along +Y sees the origin at the image centre, 2 m deep."""
    # Blender camera rotated 90 degrees about X: its -Z axis points along world +Y.
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    mw = np.array([[1, 0, 0, 0], [0, c, -s, -2.0], [0, s, c, 0], [0, 0, 0, 1]])
    w2c = contract.world_to_camera_from_blender(mw)
    np.testing.assert_allclose(contract.blender_matrix_from_world_to_camera(w2c), mw, atol=1e-12)
    K = contract.intrinsics_from_blender(50.0, 36.0, 24.0, "AUTO", 640, 480)
    uv, z = contract.project(K, w2c, np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]]))
    np.testing.assert_allclose(uv[0], [320.0, 240.0])
    np.testing.assert_allclose(z, [2.0, 2.0])
    # world +Z (up) appears above the centre: smaller v in OpenCV's y-down image
    assert uv[1, 1] < 240.0
    np.testing.assert_allclose(240.0 - uv[1, 1], 50.0 / 36.0 * 640 * 0.1 / 2.0)


def test_point_set_faces_must_index_its_points(tmp_path):
    job = make_job()
    job.point_sets[0].faces = np.array([[0, 1, 8]])  # 8 points: index 8 is out of range
    with pytest.raises(ContractError) as e:
        contract.write_job(job, tmp_path)
    assert e.value.field == "point_sets[0].faces"


def test_gaussian_colors_and_opacities_round_trip_and_are_range_checked(tmp_path):
    """A point set's colours (linear RGB in [0, 1]) and opacities ((0, 1]) survive write/read; out of range is named."""
    job = make_job()
    rng = np.random.default_rng(0)
    v = 5
    job.point_sets = [contract.PointSet("gaussians", rng.normal(size=(v, 3)), rest_rotations=np.tile([1.0, 0, 0, 0], (v, 1)),
                                        rest_scales=np.full((v, 3), 0.01), colors=rng.uniform(size=(v, 3)),
                                        opacities=rng.uniform(0.1, 1.0, size=v))]
    contract.write_job(job, tmp_path / "a")
    back = contract.read_job(tmp_path / "a").point_sets[0]
    np.testing.assert_array_equal(back.colors, job.point_sets[0].colors)
    np.testing.assert_array_equal(back.opacities, job.point_sets[0].opacities)
    job.point_sets[0].colors = job.point_sets[0].colors * 2.0 + 0.5
    with pytest.raises(ContractError, match=r"point_sets\[0\]\.colors"):
        contract.write_job(job, tmp_path / "b")
    job.point_sets[0].colors = None
    job.point_sets[0].opacities = np.zeros(v)
    with pytest.raises(ContractError, match=r"point_sets\[0\]\.opacities"):
        contract.write_job(job, tmp_path / "c")


def test_scaled_intrinsics_project_a_point_to_the_same_place_in_a_resampled_image():
    """A point's pixel in a W x H image, mapped to a W/2 x H/3 image by the ratio of sizes (pixel edges fixed),
    is where the scaled intrinsics project it."""
    from physinteract.contract import project, scale_intrinsics

    K = np.array([[500.0, 0.0, 321.0], [0.0, 480.0, 239.0], [0.0, 0.0, 1.0]])
    w2c = np.eye(4)
    pts = np.array([[0.1, -0.05, 2.0], [-0.3, 0.2, 3.5]])
    uv, _ = project(K, w2c, pts)
    uv2, _ = project(scale_intrinsics(K, (640, 480), (320, 160)), w2c, pts)
    np.testing.assert_allclose(uv2, uv * np.array([320 / 640, 160 / 480]), rtol=1e-12)


def test_contact_weights_are_optional_round_trip_and_are_checked_against_the_contact_set(tmp_path):
    """contact_weights (the share of each contact particle held): absent in a job without them (None), written and
    read back unchanged, turned into the Control's grip, and refused with the file and field named when their count
    differs from the contact set's or a weight lies outside (0, 1]."""
    from physinteract.mpm.model import control_from_job

    job = make_job()
    contract.write_job(job, tmp_path / "plain")
    plain = contract.read_job(tmp_path / "plain")
    assert plain.contact_weights is None and control_from_job(plain).grip is None
    job.contact_weights = np.array([0.25, 1.0])
    contract.write_job(job, tmp_path / "weighted")
    back = contract.read_job(tmp_path / "weighted")
    np.testing.assert_array_equal(back.contact_weights, [0.25, 1.0])
    np.testing.assert_array_equal(control_from_job(back).grip, [0.25, 1.0])
    for bad in (np.array([0.5]), np.array([0.0, 1.0]), np.array([0.5, 1.5])):
        np.save(tmp_path / "weighted" / "contact_weights.npy", bad)
        with pytest.raises(ContractError) as e:
            contract.read_job(tmp_path / "weighted")
        assert e.value.field == "contact_weights" and e.value.file.endswith("contact_weights.npy")
    job.contact_weights = np.array([1.0, 1.0, 1.0])
    with pytest.raises(ContractError, match="contact_weights"):
        contract.write_job(job, tmp_path / "bad")
