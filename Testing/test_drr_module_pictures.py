"""Headless pictures of the C-arm around the CT (VTK offscreen) and the DRR demo step."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medsynth.geometry import load_preset
from medsynth.volume import Volume, VolumeMetadata

pytest.importorskip("vtk")


@pytest.fixture(scope="module")
def coarse_ct(lidc_ct) -> Volume:
    matrix = lidc_ct.ijk_to_ras.copy()
    matrix[:3, :2] *= 4.0
    return Volume(np.ascontiguousarray(lidc_ct.array[:, ::4, ::4]), matrix, VolumeMetadata(modality="CT", units="HU"))


def colour_fraction(picture: np.ndarray, rgb, tolerance: float = 60.0) -> float:
    """Fraction of pixels close to a colour (shading changes brightness, so compare chromaticity too)."""
    target = np.asarray(rgb, float) * 255.0
    pixels = picture.reshape(-1, 3).astype(float)
    near = np.linalg.norm(pixels / np.maximum(pixels.sum(1, keepdims=True), 1) - target / target.sum(), axis=1) < 0.06
    bright = pixels.sum(1) > 0.35 * target.sum()
    return float(np.mean(near & bright))


def test_scene_shows_ct_and_carm_parts_and_follows_the_pose(coarse_ct):
    from medsynth.module_logic.carm_models import PART_STYLES
    from medsynth.module_logic.scene_pictures import ct_surfaces, render_scene

    surfaces = ct_surfaces(coarse_ct, target_voxel_mm=4.0)
    assert all(polydata.GetNumberOfCells() > 1000 for polydata, _, _ in surfaces)  # skin and bone
    bounds = np.array(surfaces[1][0].GetBounds()).reshape(3, 2)
    corners = coarse_ct.ijk_to_ras_points(np.array([[0, 0, 0], np.array(coarse_ct.shape_ijk) - 1]))
    assert np.all(bounds[:, 0] >= corners.min(0) - 1) and np.all(bounds[:, 1] <= corners.max(0) + 1)  # in RAS
    carm = load_preset("mobile", isocenter=tuple(coarse_ct.center_ras))
    ap = render_scene(coarse_ct, carm, size=(200, 150), surfaces=surfaces)
    assert ap.shape == (150, 200, 3) and ap.dtype == np.uint8
    assert colour_fraction(ap, PART_STYLES["source"][0]) > 0.002  # the tube housing
    assert colour_fraction(ap, PART_STYLES["detector"][0]) > 0.002  # the flat panel
    oblique = render_scene(coarse_ct, carm.replace(primary_angle=60.0, secondary_angle=25.0), size=(200, 150),
                           surfaces=surfaces)
    assert np.abs(oblique.astype(int) - ap.astype(int)).mean() > 2.0
    # a DRR drawn on the detector shows up as grey levels the scene alone does not have
    striped = np.tile((np.arange(64) // 8 % 2).astype(np.float32), (64, 1))
    with_drr = render_scene(coarse_ct, carm, drr=striped, size=(200, 150), surfaces=surfaces)
    assert np.abs(with_drr.astype(int) - ap.astype(int)).max() > 60


def test_drr_demo_step_writes_the_readme_pictures(tmp_path):
    from medsynth.demo import drr as demo

    written = demo.run(tmp_path, None, size=(240, 180))
    names = {path.name for path in written}
    assert {"drr.png", "drr_outputs.png", "drr_scene_ap.png", "drr_lao30_cran20.png"} <= names
    for path in written:
        picture = np.asarray(Image.open(path))
        assert picture.std() > 10, path.name
    ap, oblique = (np.asarray(Image.open(tmp_path / f"drr_{stem}.png"), float) for stem in ("ap", "lao30_cran20"))
    assert np.abs(ap - oblique).mean() > 5  # two poses, two radiographs
