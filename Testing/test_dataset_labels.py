"""Projected labels on an analytic case: a ball of water, off the isocenter, seen from an oblique C-arm.

Known answers: the ball's silhouette is a disk centred on the projection of its centre, of radius
SID * R / sqrt(d^2 - R^2) (d: source-centre distance); the path through its centre is 2 R; its area
density there is 2 R x its mass density; the DRR's attenuation is where the mask is.
"""

from __future__ import annotations

import numpy as np
import pytest

from medsynth.geometry import CArm
from medsynth.volume import Volume, VolumeMetadata

SPACING = 1.5
RADIUS = 20.0


@pytest.fixture(scope="module")
def ball():
    n = 72
    k, j, i = np.mgrid[0:n, 0:n, 0:n].astype(np.float32)
    centre = np.array([40.0, 30.0, 36.0])  # voxel (i, j, k): off the volume's centre
    inside = ((i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2) * SPACING**2 <= RADIUS**2
    ct = Volume.from_spacing(np.where(inside, 0, -1000).astype(np.int16), (SPACING,) * 3,
                             metadata=VolumeMetadata(modality="CT", units="HU"))
    return ct, inside, ct.ijk_to_ras_points(centre)


def test_projected_ball_matches_its_analytic_silhouette(ball):
    from medsynth.drr import prepare, project
    from medsynth.drr.structures import ct_density, structure_projector

    ct, inside, centre_ras = ball
    carm = CArm(primary_angle=35.0, secondary_angle=-20.0, sid=1000.0, sod=600.0, detector_rows=160,
                detector_columns=180, pixel_spacing=0.6, isocenter=tuple(ct.center_ras))
    prepared = prepare(ct)
    projector = structure_projector({"ball": inside}, ct.ijk_to_ras, ct_density(prepared))
    result = projector.project(carm)[0]
    assert result.mask.shape == (160, 180) and result.mask.dtype == np.uint8

    distance = np.linalg.norm(carm.source_position() - centre_ras)
    expected_radius_px = carm.sid * RADIUS / np.sqrt(distance**2 - RADIUS**2) / 0.6  # on the detector plane,
    # the ball's centre projects off-axis, so the disk is slightly stretched: compare areas within 8 %
    area = result.mask.sum()
    assert area == pytest.approx(np.pi * expected_radius_px**2, rel=0.08)
    rows, cols = np.nonzero(result.mask)
    col, row = carm.project_points(centre_ras[None])[0]
    assert abs(cols.mean() - col) < 1.0 and abs(rows.mean() - row) < 1.0
    # the longest path is the diameter (up to the voxelisation, one voxel)
    assert result.thickness_mm.max() == pytest.approx(2 * RADIUS, abs=SPACING)
    water = float(ct_density(prepared)[inside].mean())
    assert result.area_density.max() == pytest.approx(2 * RADIUS / 10 * water, rel=0.05)

    drr = project(prepared, carm, device="cpu")[0]
    attenuating = drr.log_image > 0.05
    assert (attenuating & (result.mask > 0)).sum() / attenuating.sum() > 0.97
    assert (attenuating & (result.mask > 0)).sum() / result.mask.sum() > 0.9


def test_empty_structure_projects_to_zeros(ball):
    from medsynth.drr.structures import structure_projector

    ct, inside, _ = ball
    carm = CArm(sid=1000.0, sod=600.0, detector_rows=16, detector_columns=16, pixel_spacing=4.0,
                isocenter=tuple(ct.center_ras))
    result = structure_projector({"none": np.zeros_like(inside)}, ct.ijk_to_ras).project(carm)[0]
    assert result.mask.sum() == 0 and result.area_density is None
