"""Study images: read PNG/JPEG/TIFF/DICOM, window DICOM, and write bare 8-bit PNGs.

Blinding is done by re-encoding: only the grey levels survive. The written PNG carries no text
chunks, no EXIF and no DICOM tags, under a random name, at one common size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medsynth.display import CT_WINDOWS, display_range, level_width_range, to_grey
from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.study.parameters import StudyParameters

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
SUPPORTED = "PNG, JPEG, TIFF, BMP or DICOM"


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    with open(path, "rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def list_images(folder: str | Path) -> list[Path]:
    """Every image file in ``folder`` (recursively, hidden files skipped); an unsupported file is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of images; give a folder holding {SUPPORTED} files.")
    images = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.suffix.lower() in PICTURE_SUFFIXES or _is_dicom(path):
            images.append(path)
        else:
            raise InputError(f"{path} is not a supported study image ({SUPPORTED}); "
                             f"convert it to PNG or move it out of {folder}.")
    if not images:
        raise InputError(f"{folder} holds no {SUPPORTED} images; point to the folder that holds them.")
    return images


def _dicom_window(dataset, values: np.ndarray, parameters: StudyParameters) -> tuple[float, float]:
    choice = parameters.window
    if choice == "custom":
        return level_width_range(parameters.window_level, parameters.window_width)
    if choice in CT_WINDOWS:
        return level_width_range(*CT_WINDOWS[choice])
    if choice == "dicom" and "WindowCenter" in dataset and "WindowWidth" in dataset:
        center, width = dataset.WindowCenter, dataset.WindowWidth
        center = center[0] if getattr(center, "VM", 1) > 1 else center
        width = width[0] if getattr(width, "VM", 1) > 1 else width
        if float(width) > 0:
            return level_width_range(float(center), float(width))
    return display_range(values)


def _read_dicom(path: Path, parameters: StudyParameters) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut

    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for broken files
        raise InputError(f"{path} is not a readable DICOM image ({error.__class__.__name__}); "
                         "replace it or move it out of the study folder.") from error
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1 or pixels.ndim != 2:
        raise InputError(f"{path} is a multi-frame or colour DICOM; export one grey frame per file "
                         "(for example as PNG) for the study.")
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    low, high = _dicom_window(dataset, values, parameters)
    return to_grey(values, low, high, invert=getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1")


def _read_picture(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I", "F"):
                values = np.asarray(image, dtype=np.float64)
                return to_grey(values, *display_range(values, (0.0, 100.0)))
            return np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"{path} cannot be read as an image ({error}); replace it or move it out of "
                         "the study folder.") from error


def read_study_image(path: str | Path, parameters: StudyParameters | None = None) -> np.ndarray:
    """The grey levels (uint8, rows x columns) a reader will see for ``path``."""
    path = Path(path)
    parameters = parameters or StudyParameters()
    return _read_dicom(path, parameters) if _is_dicom(path) else _read_picture(path)


def resized(grey: np.ndarray, longest_side: int) -> np.ndarray:
    """``grey`` scaled (Lanczos) so that its longest side is ``longest_side`` pixels."""
    rows, columns = grey.shape
    scale = longest_side / max(rows, columns)
    size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
    return np.asarray(Image.fromarray(grey, "L").resize(size, Image.Resampling.LANCZOS))


def write_blinded_png(grey: np.ndarray, path: str | Path) -> Path:
    """Write grey levels as a PNG with no metadata at all (Pillow adds chunks only when asked)."""
    with atomic_output(path) as temporary:
        Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), "L").save(temporary, format="PNG")
    return Path(path)
