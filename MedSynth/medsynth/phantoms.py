"""Small analytic CT phantoms: a known answer for self-tests that must run without any download."""

from __future__ import annotations

import numpy as np

from medsynth.volume import Volume, VolumeMetadata


def cylinder_phantom(shape: tuple[int, int, int] = (40, 64, 64), spacing_mm: float = 2.0,
                     radius_mm: float = 50.0, rod_radius_mm: float = 8.0) -> Volume:
    """A water cylinder (0 HU) along S with a bone rod (1000 HU) off its axis, in air (-1000 HU).

    Array [k, j, i]; the cylinder axis runs along k; the rod sits 20 mm towards +R.
    """
    nk, nj, ni = shape
    j, i = np.meshgrid((np.arange(nj) - (nj - 1) / 2.0) * spacing_mm, (np.arange(ni) - (ni - 1) / 2.0) * spacing_mm,
                       indexing="ij")
    plane = np.full((nj, ni), -1000.0, np.float32)
    plane[i ** 2 + j ** 2 <= radius_mm ** 2] = 0.0
    plane[(i - 20.0) ** 2 + j ** 2 <= rod_radius_mm ** 2] = 1000.0
    array = np.repeat(plane[np.newaxis], nk, axis=0)
    matrix = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    matrix[:3, 3] = -(np.array([ni, nj, nk]) - 1) / 2.0 * spacing_mm
    return Volume(array, matrix, VolumeMetadata(modality="CT", units="HU", source="cylinder phantom"))


def abdomen_phantom(seed: int = 0):
    """An analytic abdomen: air, a 40 HU body, a 60 HU liver ellipsoid, 10 HU noise; (CT, liver LabelMap).

    Shape [60, 160, 160] with 1 x 1 x 2.5 mm voxels; the liver (label 1, "liver") fills its middle.
    """
    from medsynth.volume import LabelMap, LabelTable

    k, j, i = np.mgrid[0:60, 0:160, 0:160]
    body = (i - 80) ** 2 + (j - 80) ** 2 < 75 ** 2
    liver = ((i - 80) / 55.0) ** 2 + ((j - 80) / 45.0) ** 2 + ((k - 30) / 26.0) ** 2 < 1
    noise = np.random.default_rng(seed).normal(0, 10, body.shape)
    array = np.where(liver, 60.0, np.where(body, 40.0, -1000.0)) + noise
    ct = Volume.from_spacing(array.astype(np.float32), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0),
                             metadata=VolumeMetadata(modality="CT", units="HU", source="abdomen phantom"))
    return ct, LabelMap(liver.astype(np.uint8), ct.ijk_to_ras, table=LabelTable({1: "liver"}))
