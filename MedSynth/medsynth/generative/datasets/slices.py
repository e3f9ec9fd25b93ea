"""3D CT + label map -> a 2D slice dataset (image + class map per slice) for label-map models.

Slices are taken along a chosen axis in the radiological display orientation, resampled to a
square ``size`` x ``size`` grid with square pixels (a fixed pixel spacing, or the slice's field of
view), with the label map's structures mapped by *name* onto a short list of model classes.
Patients (not slices) are split into train/val/test, so no patient leaks across splits. The
whole dataset folder is written atomically with a manifest.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress
from medsynth.volume import LabelMap, LabelTable, Volume

DATASET_KIND = "medsynth-slices"
DATASET_VERSION = 1
AXES = ("axial", "coronal", "sagittal")
SPLITS = ("train", "val", "test")
#: The demo models' classes: merged TotalSegmentator groups (mapped by name, see class_mapping.py).
DEFAULT_CT_CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]
HU_RANGE = (-1024.0, 3071.0)


@dataclass
class SliceCase:
    """One patient's CT and label map (paths or loaded volumes). ``split`` forces its split."""

    patient: str
    ct: str | Path | Volume
    labels: str | Path | LabelMap
    table: str | Path | LabelTable | None = None
    split: str | None = None


@dataclass
class SliceDatasetSpec:
    """How to cut the slices. Saved in the manifest so a dataset can be rebuilt exactly."""

    classes: list[str] = field(default_factory=lambda: list(DEFAULT_CT_CLASSES))
    class_mapping: dict[str, str] = field(default_factory=dict)  # source name -> class, wins over names
    unknown: str = "error"  # or the class unknown structures are painted as
    body_class: str | None = "soft_tissue"  # body voxels without a structure; None: keep background
    axis: str = "axial"
    size: int = 64
    pixel_spacing_mm: float | None = None  # None: each slice's whole field of view
    remove_background: bool = True
    min_body_fraction: float = 0.05
    slice_step: int = 1
    context_slices: int = 0  # > 0: also store the +-n neighbouring class slices (2.5D conditioning)
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1})
    seed: int = 0
    preview_window: dict = field(default_factory=lambda: {"level": 40.0, "width": 400.0})

    def validate(self) -> None:
        if self.axis not in AXES:
            raise InputError(f"Slice axis must be one of {', '.join(AXES)}, got {self.axis!r}.")
        if int(self.size) < 8 or int(self.size) > 2048:
            raise InputError(f"Slice size must be between 8 and 2048 pixels, got {self.size}.")
        if self.pixel_spacing_mm is not None and not float(self.pixel_spacing_mm) > 0:
            raise InputError(f"Pixel spacing must be positive (mm), got {self.pixel_spacing_mm}.")
        if len(self.classes) < 2 or self.classes[0].lower() != "background":
            raise InputError(f"Classes must start with 'background' and hold at least two, got {self.classes}.")
        if self.body_class is not None and self.body_class not in self.classes:
            raise InputError(f"body_class {self.body_class!r} is not one of the classes {self.classes}.")
        unknown = set(self.split_fractions) - set(SPLITS)
        if unknown or not self.split_fractions or min(self.split_fractions.values()) < 0 \
                or sum(self.split_fractions.values()) <= 0:
            raise InputError(f"split_fractions must give non-negative shares of {SPLITS}, got {self.split_fractions}.")
        if int(self.slice_step) < 1:
            raise InputError(f"slice_step must be >= 1, got {self.slice_step}.")
        if not 0 <= int(self.context_slices) <= 8:
            raise InputError(f"context_slices must be between 0 and 8, got {self.context_slices}.")


def split_patients(patients: Sequence[str], fractions: Mapping[str, float], seed: int,
                   forced: Mapping[str, str] | None = None) -> dict[str, str]:
    """Assign whole patients to splits by the fractions (seeded), honouring forced assignments."""
    forced = dict(forced or {})
    for patient, split in forced.items():
        if split not in SPLITS:
            raise InputError(f"Patient {patient}: split must be one of {SPLITS}, got {split!r}.")
    free = [p for p in patients if p not in forced]
    order = np.random.default_rng(seed).permutation(len(free))
    free = [free[i] for i in order]
    total = sum(fractions.values())
    shares = {s: fractions.get(s, 0.0) / total for s in SPLITS}
    counts = {s: int(math.floor(shares[s] * len(free))) for s in SPLITS}
    # Hand out the remainder: splits with a share but no patient first (val/test need one), then by share.
    remainder = len(free) - sum(counts.values())
    for split in sorted(SPLITS, key=lambda s: (counts[s] > 0 or shares[s] == 0, -shares[s])):
        if remainder == 0:
            break
        if shares[split] > 0:
            counts[split] += 1
            remainder -= 1
    assignment = dict(forced)
    start = 0
    for split in SPLITS:
        for patient in free[start:start + counts[split]]:
            assignment[patient] = split
        start += counts[split]
    return assignment


def display_slices(array: np.ndarray, spacing_ijk: np.ndarray, axis: str) -> tuple[np.ndarray, tuple[float, float]]:
    """A display-oriented volume [k, j, i] -> (stack of 2D slices [n, rows, cols], (row, col) spacing)."""
    si, sj, sk = (float(v) for v in spacing_ijk)
    if axis == "axial":
        return array, (sj, si)
    if axis == "coronal":
        return np.transpose(array[::-1], (1, 0, 2)), (sk, si)
    return np.transpose(array[::-1], (2, 0, 1)), (sk, sj)


def resample_slice(image: np.ndarray, spacing: tuple[float, float], size: int, pixel_mm: float,
                   center: tuple[float, float], order: int, fill: float) -> np.ndarray:
    """Resample a 2D slice onto a size x size grid of ``pixel_mm`` pixels centred at ``center`` (mm).

    Linear images are smoothed first so down-sampling does not alias (label maps use nearest).
    """
    rows = (np.arange(size) - (size - 1) / 2.0) * pixel_mm + center[0]
    cols = (np.arange(size) - (size - 1) / 2.0) * pixel_mm + center[1]
    grid = np.meshgrid(rows / spacing[0], cols / spacing[1], indexing="ij")
    source = image
    if order > 0:
        sigma = [max(0.0, (pixel_mm / s - 1.0) / 2.0) for s in spacing]
        if max(sigma) > 0:
            source = ndimage.gaussian_filter(image.astype(np.float32), sigma)
    return ndimage.map_coordinates(source, grid, order=order, mode="constant", cval=fill)


def _load_case(case: SliceCase) -> tuple[Volume, LabelMap]:
    from medsynth.io import read_labelmap, read_volume

    ct = case.ct if isinstance(case.ct, Volume) else read_volume(case.ct, modality="CT")
    if isinstance(case.labels, LabelMap):
        labels = case.labels
    else:
        table = case.table
        labels = read_labelmap(case.labels, table if not isinstance(table, LabelTable) else None)
        if isinstance(table, LabelTable):
            labels.table = table
    ct.require_hu()
    if not ct.same_grid(labels):
        labels = _aligned_labels(ct, labels)
    ct.require_same_grid(labels, f"label map of {case.patient}")
    if not labels.table.names:
        raise InputError(
            f"The label map of {case.patient} has no label names; classes are mapped by name. "
            "Give its label table (e.g. TotalSegmentator's structures.csv)."
        )
    return ct, labels


def _aligned_labels(ct: Volume, labels: LabelMap) -> LabelMap:
    """The label map with its axes permuted/flipped like the CT's (a DICOM series' NIfTI export)."""
    from medsynth.errors import GeometryMismatchError
    from medsynth.volume import reorient_like

    try:
        moved = reorient_like(labels, ct)
    except GeometryMismatchError:
        return labels
    return LabelMap(moved.array, moved.ijk_to_ras, labels.metadata, labels.table)


def class_map_volume(ct: Volume, labels: LabelMap, spec: SliceDatasetSpec) -> tuple[np.ndarray, np.ndarray, dict]:
    """(class index volume [k, j, i] uint8, body mask, mapping summary) for one case."""
    from medsynth.generative.class_mapping import map_classes
    from medsynth.generative.datasets.body import body_mask

    present = set(labels.present_labels())
    names = {value: labels.table.name(value) for value in present}
    mapping = map_classes(names, spec.classes, spec.class_mapping, spec.unknown)
    classes = mapping.apply(labels.array).astype(np.uint8)
    body = body_mask(ct)
    if spec.body_class is not None:
        classes[(classes == 0) & body] = spec.classes.index(spec.body_class)
    if spec.remove_background:
        classes[~body] = 0
    return classes, body, {"mapping": mapping.summary(), "unknown": mapping.unknown}


def case_slices(case: SliceCase, spec: SliceDatasetSpec, cancel: CancelToken | None = None) -> dict:
    """Cut one case into resampled slices: images (HU, float32), class maps (uint8), spacing, indices."""
    from medsynth.volume import display_oriented as _display_oriented

    ct, labels = _load_case(case)
    classes, body, info = class_map_volume(ct, labels, spec)
    hu = np.clip(np.asarray(ct.array, dtype=np.float32), *HU_RANGE)
    if spec.remove_background:
        hu = np.where(body, hu, -1000.0).astype(np.float32)
    oriented_ct = _display_oriented(ct.with_array(hu))
    oriented_classes = _display_oriented(ct.with_array(classes))
    oriented_body = _display_oriented(ct.with_array(body.astype(np.uint8)))
    images, spacing = display_slices(oriented_ct.array, oriented_ct.spacing, spec.axis)
    class_stack, _ = display_slices(oriented_classes.array, oriented_ct.spacing, spec.axis)
    body_stack, _ = display_slices(oriented_body.array, oriented_ct.spacing, spec.axis)
    extent = (images.shape[1] * spacing[0], images.shape[2] * spacing[1])
    pixel_mm = float(spec.pixel_spacing_mm or max(extent) / spec.size)
    out_images, out_classes, out_context, kept = [], [], [], []
    context = int(spec.context_slices)
    for index in range(0, images.shape[0], int(spec.slice_step)):
        check_cancel(cancel)
        body_slice = body_stack[index] > 0
        if body_slice.mean() < spec.min_body_fraction:
            continue
        if spec.pixel_spacing_mm is None:
            center = ((images.shape[1] - 1) * spacing[0] / 2.0, (images.shape[2] - 1) * spacing[1] / 2.0)
        else:  # fixed pixels: centre the field of view on the body
            rows, cols = np.nonzero(body_slice)
            center = ((rows.min() + rows.max()) / 2.0 * spacing[0], (cols.min() + cols.max()) / 2.0 * spacing[1])
        out_images.append(resample_slice(images[index], spacing, spec.size, pixel_mm, center, 1, -1000.0))
        out_classes.append(resample_slice(class_stack[index], spacing, spec.size, pixel_mm, center, 0, 0))
        if context:  # neighbours on the same grid as the centre slice (clamped at the volume's ends)
            neighbours = np.clip(np.arange(index - context, index + context + 1), 0, images.shape[0] - 1)
            out_context.append([resample_slice(class_stack[n], spacing, spec.size, pixel_mm, center, 0, 0)
                                for n in neighbours])
        kept.append(index)
    result = {
        "images": np.asarray(out_images, np.float32).reshape(-1, spec.size, spec.size),
        "labels": np.asarray(out_classes, np.uint8).reshape(-1, spec.size, spec.size),
        "slice_index": np.asarray(kept, np.int32),
        "pixel_spacing_mm": pixel_mm,
        "info": info,
    }
    if context:
        result["context_labels"] = np.asarray(out_context, np.uint8).reshape(-1, 2 * context + 1, spec.size, spec.size)
    return result


def build_slice_dataset(cases: Sequence[SliceCase], out_dir: str | Path, spec: SliceDatasetSpec | None = None,
                        progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Path:
    """Write ``out_dir/{train,val,test}.npz`` (images in HU, class maps), a manifest and a preview PNG.

    Each split's npz holds ``images`` [N, H, W] float32 HU, ``labels`` [N, H, W] uint8 class
    indices, ``patient`` and ``slice_index`` per slice, and ``pixel_spacing_mm``; with
    ``context_slices`` n also ``context_labels`` [N, 2n + 1, H, W] (slices k-n..k+n, centre = labels).
    """
    spec = spec or SliceDatasetSpec()
    spec.validate()
    cases = list(cases)
    if not cases:
        raise InputError("No cases were given: a slice dataset needs at least one CT with its label map.")
    patients = [c.patient for c in cases]
    if len(set(patients)) != len(patients):
        raise InputError(f"Patient names must be unique (one case per patient), got {patients}.")
    assignment = split_patients(patients, spec.split_fractions, spec.seed,
                                {c.patient: c.split for c in cases if c.split})
    per_split: dict[str, list] = {s: [] for s in SPLITS}
    case_rows = []
    for number, case in enumerate(cases):
        check_cancel(cancel)
        report(progress, number / len(cases), f"slicing {case.patient}")
        result = case_slices(case, spec, cancel)
        per_split[assignment[case.patient]].append((case.patient, result))
        case_rows.append({
            "patient": case.patient, "split": assignment[case.patient],
            "ct": str(case.ct) if not isinstance(case.ct, Volume) else case.ct.metadata.source,
            "labels": str(case.labels) if not isinstance(case.labels, Volume) else case.labels.metadata.source,
            "slices": int(len(result["slice_index"])), "pixel_spacing_mm": result["pixel_spacing_mm"],
            "class_mapping": result["info"]["mapping"],
        })
    total = sum(len(r["slice_index"]) for rows in per_split.values() for _, r in rows)
    if total == 0:
        raise InputError(
            "No slice kept: every slice has less body than min_body_fraction "
            f"({spec.min_body_fraction}). Check the CTs (HU?) or lower min_body_fraction."
        )
    out_dir = Path(out_dir)
    with atomic_output(out_dir, directory=True) as temp:
        counts = {}
        for split, rows in per_split.items():
            counts[split] = int(sum(len(r["slice_index"]) for _, r in rows))
            if not rows:
                continue
            extra = {}
            if spec.context_slices:
                extra["context_labels"] = np.concatenate([r["context_labels"] for _, r in rows])
            np.savez_compressed(
                temp / f"{split}.npz",
                **extra,
                images=np.concatenate([r["images"] for _, r in rows]),
                labels=np.concatenate([r["labels"] for _, r in rows]),
                patient=np.concatenate([[p] * len(r["slice_index"]) for p, r in rows]).astype(str),
                slice_index=np.concatenate([r["slice_index"] for _, r in rows]),
                pixel_spacing_mm=np.concatenate([[r["pixel_spacing_mm"]] * len(r["slice_index"]) for _, r in rows]),
            )
        manifest = {
            "kind": DATASET_KIND, "version": DATASET_VERSION, "units": "HU",
            "classes": list(spec.classes), "image_size": int(spec.size), "axis": spec.axis,
            "pixel_spacing_mm": spec.pixel_spacing_mm, "context_slices": int(spec.context_slices),
            "counts": counts, "cases": case_rows,
            "spec": asdict(spec),
        }
        (temp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _save_preview(temp, per_split, spec)
    report(progress, 1.0, f"{total} slices from {len(cases)} patients")
    return out_dir


def _save_preview(folder: Path, per_split: dict, spec: SliceDatasetSpec) -> None:
    """preview.png: a few slices per split with their class outlines."""
    from medsynth.pictures import montage, overlay_outlines, save_picture, slice_to_image, window

    tiles, titles = [], []
    for split, rows in per_split.items():
        for patient, result in rows[:2]:
            count = len(result["slice_index"])
            for pick in np.linspace(0, count - 1, min(3, count)).astype(int) if count else []:
                gray = window(result["images"][pick], spec.preview_window["level"], spec.preview_window["width"])
                masks = [result["labels"][pick] == c for c in range(1, len(spec.classes))]
                tiles.append(slice_to_image(overlay_outlines(gray, masks), (1.0, 1.0)).resize((128, 128)))
                titles.append(f"{split} {patient[:10]} {int(result['slice_index'][pick])}")
    if tiles:
        save_picture(montage(tiles, titles, columns=min(6, len(tiles))), folder / "preview.png")


def read_manifest(dataset_dir: str | Path, kind: str = DATASET_KIND) -> dict:
    """The manifest of a dataset folder, checked to be of ``kind``."""
    path = Path(dataset_dir) / "manifest.json"
    if not path.is_file():
        raise InputError(f"{dataset_dir} is not a MedSynth dataset (no manifest.json). Build one with `medsynth dataset`.")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON ({error}). Rebuild the dataset.") from None
    if manifest.get("kind") != kind:
        raise InputError(f"{dataset_dir} holds a {manifest.get('kind')!r} dataset, but a {kind!r} dataset is needed here.")
    return manifest


def load_split(dataset_dir: str | Path, split: str, kind: str = DATASET_KIND) -> dict[str, np.ndarray]:
    """The arrays of one split of a dataset (an empty split raises)."""
    manifest = read_manifest(dataset_dir, kind)
    path = Path(dataset_dir) / f"{split}.npz"
    if not path.is_file():
        raise InputError(
            f"The dataset {dataset_dir} has no {split!r} slices (counts: {manifest.get('counts')}). "
            "Give it more patients or other split fractions."
        )
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    if not len(next(iter(arrays.values()))):
        raise InputError(f"The {split!r} split of {dataset_dir} is empty.")
    return arrays
