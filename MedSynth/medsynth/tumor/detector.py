"""The tumor detector: a small MONAI 2D U-Net that finds tumors in an organ, slice by slice.

It is MedSynth's proof of utility (Hu et al.: a network trained only on synthetic tumors finds
real ones): trained by ``medsynth tumor train-segmenter`` on healthy CTs with tumors synthesised
on the fly (``medsynth.tumor.detector_training``), shipped in ``weights/``, run by
``medsynth tumor detect CT --organ-mask M``. Input per axial slice: the CT in a soft-tissue window
and the organ mask, both resampled to the recipe's pixel spacing; output: tumor probability,
kept inside the organ. torch and MONAI are imported on first use.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.volume import LabelMap, Volume, reorient_like

FORMAT = "medsynth-tumor-detector"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = WEIGHTS_DIR / "liver_tumor_detector.pt"
#: The display orientation slices are cut in: i -> patient left, j -> posterior, k -> superior.
_DISPLAY = Volume(np.zeros((1, 1, 1)), np.diag([-1.0, -1.0, 1.0, 1.0]))


@dataclass
class DetectorRecipe:
    """Everything that made a detector; stored with its weights."""

    organ: str = "liver"
    pixel_spacing_mm: float = 1.5
    crop: int = 96  # training crops are crop x crop pixels (144 mm at 1.5 mm)
    window: tuple[float, float] = (-160.0, 240.0)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    steps: int = 2800
    time_limit_minutes: float = 24.0  # training stops here even before ``steps`` (the record says where)
    batch: int = 8
    learning_rate: float = 2e-3
    tumor_slice_share: float = 0.7  # share of crops through a tumor
    kinds: tuple[str, ...] = ("tiny", "small", "medium", "large")
    hyper_share: float = 0.15  # share of synthesis calls with hyperdense tumors (the rest hypodense)
    min_component_mm3: float = 100.0  # smaller predicted pieces are dropped (about a 6 mm sphere)
    seed: int = 0
    train_cases: list[str] = field(default_factory=lambda: ["lidc", "totalseg_dicom"])
    heldout_cases: list[str] = field(default_factory=lambda: ["totalseg_small"])

    def to_dict(self) -> dict:
        values = asdict(self)
        values["window"], values["channels"], values["kinds"] = (list(values["window"]), list(values["channels"]),
                                                                 list(values["kinds"]))
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "DetectorRecipe":
        return cls(**{**values, "window": tuple(values["window"]), "channels": tuple(values["channels"]),
                      "kinds": tuple(values["kinds"])})


def build_network(recipe: DetectorRecipe):
    """A small residual U-Net: 2 inputs (CT, organ mask), 2 outputs (background, tumor)."""
    from monai.networks.nets import UNet

    channels = list(recipe.channels)
    return UNet(spatial_dims=2, in_channels=2, out_channels=2, channels=channels,
                strides=[2] * (len(channels) - 1), num_res_units=1, norm="INSTANCE")


def network_input(ct_hu: np.ndarray, organ: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """[N, 2, H, W] float32: the windowed CT in -1..1 and the organ mask in -1/1."""
    low, high = window
    unit = np.clip((np.asarray(ct_hu, np.float32) - low) / (high - low), 0.0, 1.0) * 2.0 - 1.0
    return np.stack([unit, organ.astype(np.float32) * 2.0 - 1.0], axis=1).astype(np.float32)


class TumorDetector:
    """A trained detector: CT + organ mask -> tumor mask on the CT's grid."""

    def __init__(self, network, recipe: DetectorRecipe, path: str | None = None) -> None:
        self.network = network.eval()
        self.recipe = recipe
        self.path = path

    def probabilities(self, x: np.ndarray, batch_size: int = 8) -> np.ndarray:
        """Tumor probability [N, H, W] for network inputs [N, 2, H, W] (sides multiples of 2^depth)."""
        import torch

        out = []
        device = next(self.network.parameters()).device
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = self.network(torch.from_numpy(x[start:start + batch_size]).to(device))
                out.append(torch.softmax(logits, dim=1)[:, 1].cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0,) + x.shape[2:], np.float32)

    def detect(self, ct: Volume, organ: np.ndarray | Volume, threshold: float = 0.5) -> np.ndarray:
        """Bool tumor mask on ``ct``'s grid: axial slices through the organ, resampled, segmented, put back."""
        ct.require_hu()
        organ_array = organ.array if isinstance(organ, Volume) else np.asarray(organ)
        if organ_array.shape != ct.array.shape:
            raise InputError(f"The organ mask has shape {organ_array.shape} but the CT has {ct.array.shape}. "
                             "Give a mask on the CT's grid.")
        organ_mask = organ_array > 0
        if not organ_mask.any():
            raise InputError(f"The organ mask is empty. Segment the {self.recipe.organ} first (TotalSegmentator).")
        oriented_ct, oriented_organ = orient(ct), orient(ct.with_array(organ_mask.astype(np.uint8)))
        probability = self.probability_volume(oriented_ct, oriented_organ.array > 0)
        mask = (probability >= threshold) & (oriented_organ.array > 0)
        mask = drop_small_pieces(mask, oriented_ct.spacing, self.recipe.min_component_mm3)
        back = reorient_like(Volume(mask.astype(np.uint8), oriented_ct.ijk_to_ras), ct)
        return back.array > 0

    def probability_volume(self, ct: Volume, organ: np.ndarray) -> np.ndarray:
        """Tumor probability on a display-oriented CT's grid (0 outside the organ's slices)."""
        spacing = ct.spacing  # (i, j, k)
        pixel = self.recipe.pixel_spacing_mm
        zoom = (spacing[1] / pixel, spacing[0] / pixel)  # rows are j, columns i
        region = organ_region(organ, spacing, margin_mm=12.0)
        out = np.zeros(ct.array.shape, np.float32)
        if region is None:
            return out
        rows, cols = region[1], region[2]
        multiple = 2 ** (len(self.recipe.channels) - 1)
        slices = [k for k in range(region[0].start, region[0].stop) if organ[k, rows, cols].any()]
        for start in range(0, len(slices), 16):
            chunk = slices[start:start + 16]
            images = np.stack([ndimage.zoom(np.asarray(ct.array[k, rows, cols], np.float32), zoom, order=1)
                               for k in chunk])
            organs = np.stack([ndimage.zoom(organ[k, rows, cols].astype(np.float32), zoom, order=1) > 0.5
                               for k in chunk])
            height, width = images.shape[1:]
            pad = ((0, 0), (0, -height % multiple), (0, -width % multiple))
            x = network_input(np.pad(images, pad, mode="edge"), np.pad(organs, pad), self.recipe.window)
            probability = self.probabilities(x)[:, :height, :width]
            native = (rows.stop - rows.start, cols.stop - cols.start)
            for k, plane in zip(chunk, probability):
                back = ndimage.zoom(plane, (native[0] / plane.shape[0], native[1] / plane.shape[1]), order=1)
                out[k, rows, cols] = fit_plane(back, native)
        return out


def fit_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``plane`` cropped or edge-padded to ``shape`` (zoom may be off by a pixel)."""
    plane = plane[:shape[0], :shape[1]]
    return np.pad(plane, ((0, shape[0] - plane.shape[0]), (0, shape[1] - plane.shape[1])), mode="edge")


def orient(volume: Volume) -> Volume:
    """The volume in display orientation (axial slices along k); an oblique scan gets a clear error."""
    from medsynth.errors import GeometryMismatchError

    try:
        return reorient_like(volume, _DISPLAY)
    except GeometryMismatchError:
        raise InputError("The detector reads axial slices: this CT is oblique. Resample it to an axial grid first "
                         "(Resample Scalar Volume, or SimpleITK).") from None


def organ_region(organ: np.ndarray, spacing_ijk: np.ndarray, margin_mm: float) -> tuple[slice, slice, slice] | None:
    """Bounding box [k, j, i] of the organ, grown in-plane by ``margin_mm``."""
    if not organ.any():
        return None
    box = []
    for axis in range(3):
        hits = np.flatnonzero(organ.any(axis=tuple(a for a in range(3) if a != axis)))
        grow = 0 if axis == 0 else int(np.ceil(margin_mm / spacing_ijk[2 - axis]))
        box.append(slice(max(int(hits[0]) - grow, 0), min(int(hits[-1]) + 1 + grow, organ.shape[axis])))
    return tuple(box)


def drop_small_pieces(mask: np.ndarray, spacing_ijk: np.ndarray, min_mm3: float) -> np.ndarray:
    """``mask`` without its 3D pieces smaller than ``min_mm3`` (specks are not tumors)."""
    labelled, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labelled.ravel()) * float(np.prod(spacing_ijk))
    keep = sizes >= min_mm3
    keep[0] = False
    return keep[labelled]


# --- loading --------------------------------------------------------------------------------------
_LOADED: dict[str, TumorDetector] = {}


def detector_payload(network, recipe: DetectorRecipe) -> dict:
    """What a detector file holds: only tensors and plain values (loads with ``weights_only=True``)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "recipe": recipe.to_dict(),
            "state": {key: value.detach().cpu() for key, value in network.state_dict().items()}}


def save_detector(network, recipe: DetectorRecipe, path: str | Path) -> Path:
    """Write weights + recipe atomically."""
    import torch

    from medsynth.io.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as temp:
        torch.save(detector_payload(network, recipe), temp)
    return path


def load_detector(path: str | Path | None = None) -> TumorDetector:
    """Load a detector file (default: the shipped one, checked against its recorded checksum)."""
    import torch

    path = Path(path) if path is not None else SHIPPED
    key = str(path.resolve())
    if key in _LOADED:
        return _LOADED[key]
    if not path.is_file():
        raise InputError(f"Tumor detector weights {path} are missing. Reinstall MedSynth, or train them: "
                         "medsynth tumor train-segmenter --out detector.pt")
    if path == SHIPPED:
        from medsynth.generative.model_cache import verify_checksum

        record = json.loads(path.with_suffix(".json").read_text())
        verify_checksum(path, record["sha256"], "the tumor detector")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise InputError(f"{path} is not a readable detector file (corrupt or truncated): "
                         f"{type(error).__name__}.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a MedSynth tumor detector. "
                         "Use one written by 'medsynth tumor train-segmenter'.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has detector format {payload.get('format_version')}; "
                         f"this MedSynth reads {FORMAT_VERSION}.")
    recipe = DetectorRecipe.from_dict(payload["recipe"])
    network = build_network(recipe)
    try:
        network.load_state_dict(payload["state"], strict=True)
    except RuntimeError as error:
        raise InputError(f"{path}: the weights do not fit the network its recipe describes "
                         f"({str(error).splitlines()[0]}).") from None
    detector = TumorDetector(network, recipe, str(path))
    _LOADED[key] = detector
    return detector


def organ_mask_from(labels: LabelMap | Volume, organ: str, label: int | str | None = None) -> np.ndarray:
    """The organ's voxels of a mask or TotalSegmentator label map (both kidneys for "kidney")."""
    from medsynth.tumor.organ import organ_label_values

    values = organ_label_values(labels, organ, label)
    array = labels.array
    return array > 0 if values is None else np.isin(array, values)
