"""Volume and label map basics: geometry, orientation, HU checks, label tables."""

import numpy as np
import pytest

from medsynth.errors import GeometryMismatchError, InputError, NotHUError
from medsynth.volume import LabelMap, LabelTable, Volume, VolumeMetadata, reorient_like


def oblique_volume() -> Volume:
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    return Volume.from_spacing(array, (0.5, 0.7, 2.0), (10, -20, 30), rotation)


def test_geometry_properties_of_an_oblique_volume():
    volume = oblique_volume()
    assert volume.shape_ijk == (6, 5, 4)
    np.testing.assert_allclose(volume.spacing, [0.5, 0.7, 2.0])
    np.testing.assert_allclose(volume.origin, [10, -20, 30])
    points = np.array([[0, 0, 0], [5, 4, 3], [1.5, 2.5, 0.5]])
    np.testing.assert_allclose(volume.ras_to_ijk_points(volume.ijk_to_ras_points(points)), points, atol=1e-9)
    # voxel (1, 0, 0) lies 0.5 mm along the rotated I axis
    np.testing.assert_allclose(volume.ijk_to_ras_points([1, 0, 0]) - volume.origin,
                               [0.5 * np.cos(np.deg2rad(30)), 0.5 * np.sin(np.deg2rad(30)), 0], atol=1e-12)


def test_reorient_like_flips_axes_exactly():
    volume = Volume.from_spacing(np.random.default_rng(0).normal(size=(3, 4, 5)), (1, 2, 3), (5, 6, 7),
                                 np.diag([1.0, -1.0, 1.0]))
    reference = Volume.from_spacing(np.zeros((1, 1, 1)), directions=np.eye(3))
    flipped = reorient_like(volume, reference)
    np.testing.assert_allclose(flipped.directions, np.eye(3))
    # the same physical point holds the same value
    ijk = np.array([2, 1, 0])
    ras = volume.ijk_to_ras_points(ijk)
    i, j, k = np.rint(flipped.ras_to_ijk_points(ras)).astype(int)
    assert flipped.array[k, j, i] == volume.array[0, 1, 2]


def test_reorient_like_refuses_oblique_axes():
    with pytest.raises(GeometryMismatchError):
        reorient_like(oblique_volume(), Volume(np.zeros((1, 1, 1))))


def test_require_hu_accepts_ct_and_rejects_mr_and_normalised_images(lidc_ct):
    lidc_ct.require_hu()
    mr = Volume(np.zeros((2, 2, 2)), metadata=VolumeMetadata(modality="MR"))
    with pytest.raises(NotHUError, match="modality is MR"):
        mr.require_hu()
    normalised = Volume(np.random.default_rng(0).uniform(0, 1, (8, 8, 8)).astype(np.float32))
    with pytest.raises(NotHUError, match="air in HU"):
        normalised.require_hu()


def test_grid_mismatch_is_explained(lidc_ct):
    shifted = Volume(np.zeros((2, 2, 2)), np.eye(4))
    with pytest.raises(GeometryMismatchError, match="Resample"):
        lidc_ct.require_same_grid(shifted)


def test_label_table_from_totalsegmentator_csv(lidc_dir):
    table = LabelTable.from_totalsegmentator_csv(lidc_dir / "structures.csv")
    assert table.value("liver") == 5
    assert table.name(5) == "liver"
    assert "Liver" in table
    with pytest.raises(InputError, match="No label named"):
        table.value("unicorn")


def test_label_map_rejects_fractional_values():
    with pytest.raises(InputError, match="whole numbers"):
        LabelMap(np.full((2, 2, 2), 0.5))
    labels = LabelMap(np.array([[[0.0, 2.0]]]), table=LabelTable({2: "liver"}))
    assert labels.array.dtype == np.int32
    assert labels.mask("liver").sum() == 1


def test_volume_needs_3d_and_invertible_matrix():
    with pytest.raises(InputError, match="3D"):
        Volume(np.zeros((4, 4)))
    with pytest.raises(InputError, match="invertible"):
        Volume(np.zeros((2, 2, 2)), np.zeros((4, 4)))
