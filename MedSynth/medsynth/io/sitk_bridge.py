"""Conversion between Volume (RAS) and SimpleITK images (LPS): the one place that flips axes."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medsynth.volume import RAS_FROM_LPS, Volume, VolumeMetadata


def volume_from_sitk(image: sitk.Image, metadata: VolumeMetadata | None = None) -> Volume:
    """Wrap a SimpleITK image as a Volume; voxels are copied, geometry converted LPS -> RAS."""
    if image.GetDimension() == 2:
        image = sitk.JoinSeries(image)
    if image.GetDimension() != 3:
        raise ValueError(f"Only 3D images are supported, got {image.GetDimension()}D.")
    array = sitk.GetArrayFromImage(image)  # [k, j, i]
    if image.GetNumberOfComponentsPerPixel() > 1:
        raise ValueError("Multi-component (vector, RGB) images are not supported; convert to scalar first.")
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = direction @ np.diag(image.GetSpacing())
    ijk_to_lps[:3, 3] = image.GetOrigin()
    return Volume(array, RAS_FROM_LPS @ ijk_to_lps, metadata or VolumeMetadata())


def volume_to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the volume's voxels and geometry (converted RAS -> LPS)."""
    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    ijk_to_lps = RAS_FROM_LPS @ volume.ijk_to_ras
    spacing = np.linalg.norm(ijk_to_lps[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(ijk_to_lps[:3, 3].tolist())
    image.SetDirection((ijk_to_lps[:3, :3] / spacing).ravel().tolist())
    return image
