"""Read any supported volume by path; write NIfTI and NRRD atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.io.memory import check_memory_for
from medsynth.io.sitk_bridge import volume_from_sitk, volume_to_sitk
from medsynth.volume import LabelMap, LabelTable, Volume, VolumeMetadata

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
NUMPY_SUFFIXES = (".npy", ".npz")
WRITABLE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    return path.name.lower().endswith(suffixes)


def read_volume(
    path: str | Path,
    modality: str | None = None,
    spacing: tuple[float, float, float] | None = None,
    series_uid: str | None = None,
) -> Volume:
    """Read a volume from a DICOM folder, a NIfTI/NRRD/MHA file or a NumPy file.

    ``modality`` records what the caller knows the image to be (NIfTI and NRRD do not store it);
    ``spacing`` is required for NumPy files, which carry no geometry; ``series_uid`` picks one
    series from a DICOM folder holding several.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist. Check the path.")
    if path.is_dir():
        from medsynth.io.dicom import read_dicom_series

        return read_dicom_series(path, series_uid=series_uid)
    if _has_suffix(path, NUMPY_SUFFIXES):
        from medsynth.io.numpy_io import read_numpy

        if spacing is None:
            raise InputError(f"{path.name} is a NumPy file, which stores no voxel size: pass its spacing in mm.")
        return read_numpy(path, spacing=spacing, modality=modality)
    if path.suffix.lower() == ".dcm":
        from medsynth.io.dicom import read_dicom_file_series

        return read_dicom_file_series(path)
    return read_image_file(path, modality=modality)


def read_image_file(path: str | Path, modality: str | None = None) -> Volume:
    """Read a NIfTI, NRRD or MHA file with SimpleITK, checking memory before allocating."""
    path = Path(path)
    if not _has_suffix(path, IMAGE_SUFFIXES):
        raise InputError(
            f"{path.name}: unsupported file type. MedSynth reads {', '.join(IMAGE_SUFFIXES + NUMPY_SUFFIXES)} "
            "and DICOM folders."
        )
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise InputError(f"{path.name} cannot be read as an image (corrupt or truncated?): {error}") from None
    n_voxels = int(np.prod(reader.GetSize()))
    check_memory_for(n_voxels * _bytes_per_voxel(reader) * 2, f"Reading {path.name}")
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise InputError(f"{path.name} cannot be read (corrupt or truncated?): {error}") from None
    units = "HU" if (modality or "").upper() == "CT" else None
    return volume_from_sitk(image, VolumeMetadata(modality=modality, units=units, source=str(path)))


def _bytes_per_voxel(reader: sitk.ImageFileReader) -> int:
    """Bytes one voxel of the file takes in memory, from its header alone."""
    probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())
    return sitk.GetArrayViewFromImage(probe).nbytes


def read_labelmap(path: str | Path, table: LabelTable | str | Path | None = None) -> LabelMap:
    """Read a label map as integers with its label table (a LabelTable or TotalSegmentator CSV)."""
    volume = read_volume(path)
    if isinstance(table, (str, Path)):
        table = LabelTable.from_totalsegmentator_csv(table)
    labels = LabelMap.from_volume(volume, table)
    labels.metadata.modality = "SEG"
    return labels


def write_volume(volume: Volume, path: str | Path, compress: bool = True) -> Path:
    """Write a volume as NIfTI (.nii/.nii.gz), NRRD or MHA, atomically."""
    path = Path(path)
    if not _has_suffix(path, WRITABLE_SUFFIXES):
        raise InputError(f"Cannot write {path.name}: use one of {', '.join(WRITABLE_SUFFIXES)}.")
    image = volume_to_sitk(volume)
    with atomic_output(path) as temp:
        sitk.WriteImage(image, os.fspath(temp), compress)
    return path


def resample_like(volume: Volume, reference: Volume, nearest: bool = False, default: float = 0.0) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid (nearest neighbour for label maps)."""
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    image = sitk.Resample(
        volume_to_sitk(volume), volume_to_sitk(reference), sitk.Transform(), interpolator, default
    )
    result = volume_from_sitk(image, volume.metadata)
    result.array = result.array.astype(volume.array.dtype, copy=False)
    if isinstance(volume, LabelMap):
        return LabelMap(result.array, result.ijk_to_ras, result.metadata, volume.table)
    return result
