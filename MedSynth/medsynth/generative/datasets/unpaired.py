"""Unpaired image sets for CycleGAN: simulated radiographs (domain A) and real ones (domain B).

Either side can be a folder of DICOM files (rescaled, MONOCHROME1 inverted so bone is bright),
PNG/JPEG images, NumPy arrays, or DRRs handed over as arrays. Every image is padded to a square,
resized to ``size`` and mapped to [-1, 1] by its own percentiles (real radiographs carry no shared
physical scale). Folders are split into train/val per side; the dataset is written atomically.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

UNPAIRED_KIND = "medsynth-unpaired"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclass
class UnpairedSpec:
    size: int = 64
    val_fraction: float = 0.2
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    seed: int = 0


def read_radiograph(path: str | Path) -> np.ndarray:
    """A 2D radiograph as float32, brighter = more attenuation (DICOM, PNG/JPEG/TIFF, .npy)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        with Image.open(path) as image:
            return np.asarray(image.convert("F"), np.float32)
    if suffix == ".npy":
        array = np.load(path)
    else:
        import pydicom

        try:
            dataset = pydicom.dcmread(path)
            array = dataset.pixel_array.astype(np.float32)
        except Exception as error:
            raise InputError(f"{path.name} is neither an image (PNG/JPEG/TIFF/npy) nor a readable DICOM file: {error}") from None
        array = array * float(getattr(dataset, "RescaleSlope", 1) or 1) + float(getattr(dataset, "RescaleIntercept", 0) or 0)
        if str(getattr(dataset, "PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            array = array.max() - array
    array = np.squeeze(np.asarray(array, np.float32))
    if array.ndim != 2:
        raise InputError(f"{path.name} is not a single 2D image (shape {array.shape}); give one radiograph per file.")
    return array


def to_training_image(image: np.ndarray, spec: UnpairedSpec) -> np.ndarray:
    """Pad to a square (with the image's darkest value), resize to spec.size, map percentiles to [-1, 1]."""
    image = np.asarray(image, np.float32)
    if not np.isfinite(image).all():
        raise InputError("A radiograph holds NaN or infinite values.")
    low, high = np.percentile(image, [spec.low_percentile, spec.high_percentile])
    if high - low <= 1e-6:
        raise InputError("A radiograph is blank (constant intensity); it cannot be used for training.")
    side = max(image.shape)
    square = np.full((side, side), low, np.float32)
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    square[top:top + image.shape[0], left:left + image.shape[1]] = image
    resized = np.asarray(Image.fromarray(square, "F").resize((spec.size, spec.size), Image.BILINEAR), np.float32)
    return np.clip((resized - low) / (high - low) * 2.0 - 1.0, -1.0, 1.0)


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder of radiographs.")
    files = [f for f in sorted(folder.rglob("*")) if f.is_file() and not f.name.startswith(".")
             and (f.suffix.lower() in IMAGE_SUFFIXES + (".dcm", ".npy") or f.suffix == "")]
    if not files:
        raise InputError(f"{folder} holds no radiographs (DICOM, PNG, JPEG, TIFF or .npy files).")
    return files


def _load_side(side: str | Path | Sequence[np.ndarray], spec: UnpairedSpec, cancel) -> tuple[np.ndarray, list[str]]:
    if isinstance(side, (str, Path)):
        names, images = [], []
        for file in list_images(side):
            check_cancel(cancel)
            images.append(to_training_image(read_radiograph(file), spec))
            names.append(str(file))
        return np.stack(images), names
    arrays = list(side)
    if not arrays:
        raise InputError("One side of the unpaired set is empty: give at least one radiograph per side.")
    return np.stack([to_training_image(a, spec) for a in arrays]), [f"array {i}" for i in range(len(arrays))]


def _split(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(count)
    n_val = int(round(count * fraction)) if count > 1 else 0
    n_val = min(max(n_val, 1 if fraction > 0 and count > 1 else 0), count - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_unpaired_set(simulated, real, out_dir: str | Path, spec: UnpairedSpec | None = None,
                       progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """Write ``out_dir/{train,val}.npz`` (arrays ``a`` simulated, ``b`` real, in [-1, 1]) and a manifest."""
    spec = spec or UnpairedSpec()
    if not 8 <= int(spec.size) <= 2048:
        raise InputError(f"Image size must be between 8 and 2048, got {spec.size}.")
    report(progress, 0.0, "reading simulated radiographs")
    a, names_a = _load_side(simulated, spec, cancel)
    report(progress, 0.5, "reading real radiographs")
    b, names_b = _load_side(real, spec, cancel)
    train_a, val_a = _split(len(a), spec.val_fraction, spec.seed)
    train_b, val_b = _split(len(b), spec.val_fraction, spec.seed + 1)
    out_dir = Path(out_dir)
    with atomic_output(out_dir, directory=True) as temp:
        np.savez_compressed(temp / "train.npz", a=a[train_a], b=b[train_b])
        counts = {"train": {"a": len(train_a), "b": len(train_b)}}
        if len(val_a) and len(val_b):
            np.savez_compressed(temp / "val.npz", a=a[val_a], b=b[val_b])
            counts["val"] = {"a": len(val_a), "b": len(val_b)}
        manifest = {"kind": UNPAIRED_KIND, "version": 1, "image_size": int(spec.size), "counts": counts,
                    "domain_a": {"name": "simulated", "sources": names_a},
                    "domain_b": {"name": "real", "sources": names_b}, "spec": asdict(spec),
                    "scaling": "each image's percentiles -> [-1, 1]"}
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    report(progress, 1.0, f"{len(a)} simulated, {len(b)} real")
    return out_dir
