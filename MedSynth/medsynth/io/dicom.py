"""DICOM series: find them in a folder with pydicom, check them, read the voxels with SimpleITK.

Checks happen before any voxel is read so that problems are named precisely: which file is
corrupt, which slice is missing, which series to choose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from medsynth.errors import DicomError, MultipleSeriesError
from medsynth.io.memory import check_memory_for
from medsynth.io.sitk_bridge import volume_from_sitk
from medsynth.volume import RADIOGRAPH_MODALITIES, Volume, VolumeMetadata

#: Relative tolerance on slice spacing before a series is called unevenly spaced.
SPACING_TOLERANCE = 0.02

_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


@dataclass
class SeriesInfo:
    """One series found in a folder, with its files ordered along the slice normal."""

    uid: str
    modality: str
    description: str
    files: list[Path] = field(default_factory=list)
    positions: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.modality} '{self.description}' ({len(self.files)} files) uid={self.uid}"


def _looks_like_dicom(path: Path) -> bool:
    """A file claims to be DICOM by its extension or by the 'DICM' magic at byte 128."""
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _read_header(path: Path) -> pydicom.Dataset | None:
    """The header of a DICOM file, None for files that are not DICOM; corrupt DICOM raises."""
    if path.name.upper() == "DICOMDIR":
        return None
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        if _looks_like_dicom(path):
            raise DicomError(f"{path} claims to be DICOM but cannot be parsed: the file is corrupt.") from None
        return None
    except Exception as error:  # pydicom raises many types on truncated files
        if _looks_like_dicom(path):
            raise DicomError(f"{path} is a corrupt or truncated DICOM file ({error}). Remove or replace it.") from None
        return None
    if "SOPInstanceUID" not in header and _looks_like_dicom(path):
        raise DicomError(f"{path} claims to be DICOM but its header is unreadable: the file is corrupt.")
    return header


def _not_a_slice(path: Path, header: pydicom.Dataset) -> str:
    """Why an image file without a slice position cannot be (part of) a CT volume, and what to give."""
    modality = str(header.get("Modality", "")).upper()
    if modality in RADIOGRAPH_MODALITIES:
        kind = f"a 2D radiograph ({modality}, {RADIOGRAPH_MODALITIES[modality]})"
    else:
        kind = f"a 2D image without a slice position (modality {modality or 'unknown'})"
    return (f"{path.name} is {kind}, not a CT. A CT series is needed: give the folder of its slices, "
            "or one of its .dcm files.")


def _slice_position(header: pydicom.Dataset) -> float:
    """Position of a slice along the normal of its image plane (mm)."""
    orientation = np.array(header.ImageOrientationPatient, dtype=np.float64)
    normal = np.cross(orientation[:3], orientation[3:])
    return float(np.dot(normal, np.array(header.ImagePositionPatient, dtype=np.float64)))


def list_dicom_series(folder: str | Path) -> list[SeriesInfo]:
    """All image series in a folder tree, each with its files sorted by slice position."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DicomError(f"{folder} is not a folder. Give the folder that holds the DICOM files.")
    series: dict[str, SeriesInfo] = {}
    flat_images: list[tuple[Path, pydicom.Dataset]] = []  # radiographs and other 2D images
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        header = _read_header(path)
        if header is not None and "ImagePositionPatient" not in header and "Rows" in header:
            flat_images.append((path, header))
        if header is None or "ImagePositionPatient" not in header or "SeriesInstanceUID" not in header:
            continue
        uid = str(header.SeriesInstanceUID)
        info = series.setdefault(
            uid,
            SeriesInfo(uid, str(header.get("Modality", "")), str(header.get("SeriesDescription", ""))),
        )
        info.files.append(path)
        info.positions.append(_slice_position(header))
    if not series and flat_images:
        others = f" (and {len(flat_images) - 1} more such files)" if len(flat_images) > 1 else ""
        raise DicomError(f"{folder} holds no CT series: " + _not_a_slice(*flat_images[0]) + others)
    if not series:
        raise DicomError(
            f"No DICOM image series found in {folder}. Check that the folder holds .dcm files "
            "(not a zip archive) and that they are images, not reports."
        )
    for info in series.values():
        order = np.argsort(info.positions, kind="stable")
        info.files = [info.files[i] for i in order]
        info.positions = [info.positions[i] for i in order]
    return list(series.values())


def check_slice_spacing(info: SeriesInfo) -> float:
    """Return the slice spacing; raise if slices are duplicated, missing or unevenly spaced."""
    if len(info.files) < 2:
        return 1.0
    gaps = np.diff(np.array(info.positions))
    if np.any(gaps < 1e-4):
        index = int(np.argmin(gaps))
        raise DicomError(
            f"Series {info.uid} has two slices at the same position ({info.files[index].name} and "
            f"{info.files[index + 1].name}): remove duplicates or pick one acquisition."
        )
    spacing = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - spacing) > SPACING_TOLERANCE * spacing)
    if bad.size:
        index = int(bad[0])
        ratio = gaps[index] / spacing
        what = (
            f"about {round(ratio) - 1} slice(s) missing" if ratio > 1.5 and abs(ratio - round(ratio)) < 0.1
            else f"a gap of {gaps[index]:.2f} mm where the series spacing is {spacing:.2f} mm"
        )
        raise DicomError(
            f"Series {info.uid} is not evenly spaced: {what} between {info.files[index].name} and "
            f"{info.files[index + 1].name}. Re-export the complete series from the PACS."
        )
    return spacing


def _check_pixel_data(info: SeriesInfo) -> None:
    """Name the first file whose pixel data is shorter than its header promises (truncated)."""
    for path in info.files:
        try:
            dataset = pydicom.dcmread(path, defer_size=256)
            syntax = str(dataset.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
            if "PixelData" not in dataset:
                raise DicomError(f"{path} has no pixel data: it is not an image slice.")
            if syntax in _UNCOMPRESSED:
                expected = (
                    int(dataset.Rows) * int(dataset.Columns) * int(dataset.BitsAllocated) // 8
                    * int(dataset.get("SamplesPerPixel", 1)) * int(dataset.get("NumberOfFrames", 1) or 1)
                )
                if len(dataset.PixelData) < expected:
                    raise DicomError(
                        f"{path} is truncated: {len(dataset.PixelData)} bytes of pixel data, {expected} expected. "
                        "Copy the file again from its source."
                    )
        except DicomError:
            raise
        except Exception as error:
            raise DicomError(f"{path} is a corrupt or truncated DICOM file ({error}).") from None


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Volume:
    """Read one DICOM series from a folder as a Volume (CT values in HU after rescale).

    If the folder holds several series and ``series_uid`` is not given, MultipleSeriesError lists them.
    """
    all_series = list_dicom_series(folder)
    if series_uid is not None:
        chosen = [s for s in all_series if s.uid == series_uid]
        if not chosen:
            raise DicomError(f"No series {series_uid} in {folder}. Found: " + "; ".join(map(str, all_series)))
        info = chosen[0]
    elif len(all_series) > 1:
        raise MultipleSeriesError(
            f"{folder} holds {len(all_series)} series; choose one by its uid: "
            + "; ".join(map(str, all_series)),
            all_series,
        )
    else:
        info = all_series[0]
    check_slice_spacing(info)
    _check_pixel_data(info)
    header = pydicom.dcmread(info.files[0], stop_before_pixels=True)
    check_memory_for(
        int(header.Rows) * int(header.Columns) * len(info.files) * 4, f"Reading DICOM series {info.uid}"
    )
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([os.fspath(p) for p in info.files])
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise DicomError(f"SimpleITK could not read series {info.uid} in {folder}: {error}") from None
    modality = info.modality or None
    metadata = VolumeMetadata(
        modality=modality,
        units="HU" if modality == "CT" else None,
        source=str(folder),
        extra={
            "SeriesInstanceUID": info.uid,
            "SeriesDescription": info.description,
            "PatientID": str(header.get("PatientID", "")),
            "StudyInstanceUID": str(header.get("StudyInstanceUID", "")),
        },
    )
    volume = volume_from_sitk(image, metadata)
    if np.issubdtype(volume.array.dtype, np.integer) and volume.array.dtype.itemsize > 2:
        if volume.array.min() >= -32768 and volume.array.max() <= 32767:
            volume.array = volume.array.astype(np.int16)  # HU always fits; halves the memory
    return volume


def read_dicom_file_series(path: str | Path) -> Volume:
    """Read the series a given DICOM file belongs to (the other series of its folder are ignored)."""
    path = Path(path)
    header = _read_header(path)
    if header is None or "SeriesInstanceUID" not in header:
        raise DicomError(f"{path} is not a DICOM image file.")
    if "ImagePositionPatient" not in header:
        raise DicomError(_not_a_slice(path, header))  # not "another series of its folder"
    return read_dicom_series(path.parent, series_uid=str(header.SeriesInstanceUID))
