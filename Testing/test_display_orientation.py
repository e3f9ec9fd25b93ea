"""One display-orientation helper for pictures, model slices and tumor pictures (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.errors import GeometryError
from medsynth.volume import DISPLAY_IJK_TO_RAS, Volume, display_oriented


def ramp_volume(directions: np.ndarray) -> Volume:
    """A volume whose value at each voxel is a known function of that voxel's RAS position."""
    matrix = np.eye(4)
    matrix[:3, :3] = directions * np.array([1.5, 2.0, 3.0])
    matrix[:3, 3] = (10.0, -20.0, 30.0)
    k, j, i = np.mgrid[0:5, 0:6, 0:7]
    ras = (matrix @ np.stack([i, j, k, np.ones_like(i)]).reshape(4, -1)).reshape(4, *i.shape)
    return Volume((ras[0] + 10 * ras[1] + 100 * ras[2]).astype(np.float64), matrix)


@pytest.mark.parametrize("directions", [np.eye(3), np.diag([-1.0, 1.0, -1.0]), np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1.0]])],
                         ids=["RAS", "LAI", "swapped"])
def test_axes_are_permuted_exactly_into_the_display_orientation(directions):
    volume = ramp_volume(directions)
    oriented = display_oriented(volume)
    np.testing.assert_allclose(np.sign(oriented.directions), DISPLAY_IJK_TO_RAS[:3, :3], atol=1e-12)
    k, j, i = np.mgrid[0:oriented.array.shape[0], 0:oriented.array.shape[1], 0:oriented.array.shape[2]]
    ras = oriented.ijk_to_ras_points(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1))
    np.testing.assert_allclose(oriented.array.ravel(), ras[:, 0] + 10 * ras[:, 1] + 100 * ras[:, 2], atol=1e-9)


def test_an_oblique_volume_is_refused_or_resampled_on_request():
    angle = np.radians(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])
    volume = ramp_volume(rotation)
    with pytest.raises(GeometryError, match="Resample it onto an axis-aligned grid"):
        display_oriented(volume)
    resampled = display_oriented(volume, resample_oblique=True)
    np.testing.assert_allclose(resampled.ijk_to_ras[:3, :3], DISPLAY_IJK_TO_RAS[:3, :3] * 1.5, atol=1e-9)
    centre = resampled.ras_to_ijk_points(volume.center_ras[None])[0]
    i, j, k = np.rint(centre).astype(int)
    ras = resampled.ijk_to_ras_points(np.array([[i, j, k]], float))[0]
    assert resampled.array[k, j, i] == pytest.approx(ras[0] + 10 * ras[1] + 100 * ras[2], abs=1e-6)
