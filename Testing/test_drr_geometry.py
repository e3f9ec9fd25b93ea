"""C-arm geometry: conventions, projection matrix, rays, presets, pose round trips and bad set-ups."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medsynth import Volume
from medsynth.errors import GeometryError, InputError
from medsynth.geometry import PATIENT_POSITIONS, PRESETS, CArm, load_preset, sweep


def small(**changes) -> CArm:
    return CArm(sid=1000.0, sod=600.0, detector_rows=81, detector_columns=101, pixel_spacing=(1.0, 0.8)).replace(**changes)


def test_presets_are_data_with_the_documented_geometry():
    assert {"mobile", "angio"} <= set(PRESETS)
    mobile = load_preset("mobile")
    assert (mobile.sid, mobile.sod, mobile.detector_rows, mobile.detector_columns) == (1020.0, 530.0, 1536, 1536)
    assert mobile.spacing_rc == (0.194, 0.194)
    angio = load_preset("angio")
    assert angio.sid > angio.sod and angio.secondary_range[1] < 90
    with pytest.raises(InputError, match="Choose one of"):
        load_preset("no-such-c-arm")


def test_ap_view_shows_patient_right_on_image_left_and_head_at_top():
    carm = small()
    centre = carm.project_points([[0.0, 0.0, 0.0]])[0]
    np.testing.assert_allclose(centre, [50.0, 40.0])
    right, left, head, feet = carm.project_points(
        [[20.0, 0.0, 0.0], [-20.0, 0.0, 0.0], [0.0, 0.0, 20.0], [0.0, 0.0, -20.0]]
    )
    assert right[0] < centre[0] < left[0]  # patient right at low columns (image left)
    assert head[1] < centre[1] < feet[1]  # head at low rows (image top)
    # the beam goes posterior -> anterior: source behind the patient
    np.testing.assert_allclose(carm.source_position(), [0.0, -600.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(carm.beam_direction(), [0.0, 1.0, 0.0], atol=1e-12)


def test_lao_and_cran_move_the_detector_to_the_patients_left_and_head():
    lao = small(primary_angle=90.0)
    np.testing.assert_allclose(lao.beam_direction(), [-1.0, 0.0, 0.0], atol=1e-12)  # detector at the left
    anterior, posterior = lao.project_points([[0.0, 20.0, 0.0], [0.0, -20.0, 0.0]])
    assert anterior[0] < posterior[0]  # documented: anterior on the image's left in LAO 90
    cran = small(secondary_angle=30.0)
    direction = cran.beam_direction()
    assert direction[2] > 0.49 and direction[1] > 0.86  # tilted towards the head
    rao = small(primary_angle=-45.0)
    assert rao.beam_direction()[0] > 0.7  # detector towards the patient's right


def test_projection_matrix_agrees_with_pixel_grid_and_rays():
    carm = small(primary_angle=25.0, secondary_angle=-15.0, isocenter=(10.0, -20.0, 30.0))
    grid = carm.pixel_grid()
    assert grid.shape == (81, 101, 3)
    cols, rows = np.meshgrid(np.arange(101), np.arange(81))
    projected = carm.project_points(grid.reshape(-1, 3))
    np.testing.assert_allclose(projected[:, 0], cols.ravel(), atol=1e-6)
    np.testing.assert_allclose(projected[:, 1], rows.ravel(), atol=1e-6)
    origin, direction = carm.ray(12.0, 70.0)
    np.testing.assert_allclose(origin, carm.source_position())
    assert abs(np.linalg.norm(direction) - 1.0) < 1e-12
    # any point along the ray projects to that pixel
    np.testing.assert_allclose(carm.project_points([origin + 700.0 * direction])[0], [12.0, 70.0], atol=1e-6)
    # the central ray passes through the isocenter and hits the detector centre at SID
    np.testing.assert_allclose(np.linalg.norm(carm.detector_center() - carm.source_position()), 1000.0)
    np.testing.assert_allclose(carm.project_points([carm.isocenter])[0], [50.0, 40.0], atol=1e-9)


def test_detector_corners_span_the_detector():
    carm = small(primary_angle=10.0)
    corners = carm.detector_corners()
    width = np.linalg.norm(corners[1] - corners[0])
    height = np.linalg.norm(corners[3] - corners[0])
    np.testing.assert_allclose([height, width], carm.detector_size_mm)
    np.testing.assert_allclose(corners.mean(axis=0), carm.detector_center(), atol=1e-9)


def test_pose_matrix_is_rigid_and_round_trips_for_every_patient_position():
    for position in PATIENT_POSITIONS:
        carm = small(primary_angle=-37.0, secondary_angle=22.0, isocenter=(1.0, 2.0, 3.0), patient_position=position)
        pose = carm.pose_matrix()
        np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
        back = CArm.from_pose_matrix(pose, like=carm)
        assert back.primary_angle == pytest.approx(-37.0)
        assert back.secondary_angle == pytest.approx(22.0)
        np.testing.assert_allclose(back.isocenter, (1.0, 2.0, 3.0))
    # source at +z of the C-arm frame, at SOD
    np.testing.assert_allclose(pose @ [0, 0, 600.0, 1], [*carm.source_position(), 1.0], atol=1e-9)


def test_patient_position_turns_the_anatomy():
    ffs = small(patient_position="FFS")
    hfp = small(patient_position="HFP")
    # feet first: the head is at the bottom of the AP image
    assert ffs.project_points([[0.0, 0.0, 20.0]])[0][1] > 40.0
    # prone: the beam at 0 / 0 enters anteriorly (a PA view)
    np.testing.assert_allclose(hfp.beam_direction(), [0.0, -1.0, 0.0], atol=1e-12)


def test_from_pose_matrix_rejects_rolls_and_non_rigid_transforms():
    carm = small()
    roll = np.eye(4)
    angle = np.radians(10.0)
    roll[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    with pytest.raises(GeometryError, match="roll"):
        CArm.from_pose_matrix(carm.pose_matrix() @ roll, like=carm)
    with pytest.raises(GeometryError, match="rigid"):
        CArm.from_pose_matrix(carm.pose_matrix() @ np.diag([2.0, 1.0, 1.0, 1.0]), like=carm)


def test_impossible_set_ups_say_what_to_change():
    with pytest.raises(GeometryError, match="Lower SOD"):
        small(sod=1000.0).validate()
    with pytest.raises(GeometryError, match="no pixels"):
        small(detector_rows=0).validate()
    with pytest.raises(GeometryError, match="mechanical range"):
        load_preset("angio", secondary_angle=80.0).validate()
    with pytest.raises(GeometryError, match="RAO 150"):
        load_preset("angio", primary_angle=-150.0).validate()
    with pytest.raises(GeometryError, match="SID"):
        load_preset("angio", sid=1500.0).validate()
    with pytest.raises(GeometryError, match="patient position"):
        small(patient_position="SITTING").validate()
    with pytest.raises(GeometryError, match="positive"):
        small(pixel_spacing=-1.0).validate()
    volume = Volume.from_spacing(np.zeros((100, 100, 100), np.float32), spacing=(14.0, 14.0, 14.0), origin=(-693.0, -693.0, -693.0))
    with pytest.raises(GeometryError, match="inside the volume"):
        small().validate(volume)
    small(sod=800.0, sid=1200.0).validate(Volume.from_spacing(np.zeros((10, 10, 10), np.float32)))
    load_preset("mobile", primary_angle=180.0).validate()


def test_dict_round_trip_and_sweep():
    carm = load_preset("angio", primary_angle=30.0, secondary_angle=-10.0, isocenter=(1.0, 2.0, 3.0))
    data = json.loads(json.dumps(carm.to_dict()))
    assert np.array(data["projection_matrix"]).shape == (3, 4)
    assert CArm.from_dict(data) == carm
    poses = sweep(carm, primary=range(-90, 91, 45))
    assert [p.primary_angle for p in poses] == [-90, -45, 0, 45, 90]
    assert all(p.secondary_angle == -10.0 for p in poses)
