"""The project's CT slice segmenter: scores generated images by how well their anatomy reads back.

A small MONAI U-Net, trained by the project on the real, fetchable CT slices (LIDC-IDRI-0001 and
TotalSegmentator's test scans) with the demo models' classes. Two uses:

- segmentation consistency: segment a generated slice, Dice against the label map it was
  generated from (OASIS/SDM report the same idea as mIoU);
- medical features: its bottleneck activations, pooled, for a CT-domain FID/MMD next to the
  ImageNet-Inception FID.

The shipped weights (``weights/ct_segmenter.pt``) come from ``python -m medsynth.generative.segmenter
train``; the recipe is stored inside the file and in ``weights/ct_segmenter.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from medsynth.errors import InputError
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

FORMAT = "medsynth-segmenter"
FORMAT_VERSION = 1
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = WEIGHTS_DIR / "ct_segmenter.pt"
CLASSES = ["background", "soft_tissue", "lung", "liver", "bone", "vessels"]


@dataclass
class SegmenterRecipe:
    """Everything that made a segmenter; stored with its weights."""

    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    size: int = 128
    pixel_spacing_mm: float = 3.0
    window: tuple[float, float] = (-1000.0, 1000.0)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    steps: int = 1500
    batch: int = 8
    learning_rate: float = 2e-3
    noise_hu: float = 40.0  # Gaussian noise added while training: generated images are not clean
    seed: int = 0
    cases: list[str] = field(default_factory=lambda: ["lidc", "totalseg_small", "totalseg_dicom"])


def build_network(recipe: SegmenterRecipe):
    from monai.networks.nets import UNet

    channels = list(recipe.channels)
    return UNet(spatial_dims=2, in_channels=1, out_channels=len(recipe.classes), channels=channels,
                strides=[2] * (len(channels) - 1), num_res_units=1, norm="INSTANCE")


class Segmenter:
    """A trained segmenter: HU slices at its pixel spacing -> class indices, and features."""

    def __init__(self, network, recipe: SegmenterRecipe, path: str | None = None) -> None:
        self.network = network.eval()
        self.recipe = recipe
        self.path = path
        self._feature_module = None

    @property
    def class_names(self) -> list[str]:
        return list(self.recipe.classes)

    @property
    def pixel_spacing_mm(self) -> float:
        return float(self.recipe.pixel_spacing_mm)

    def _to_unit(self, images_hu: np.ndarray):
        import torch

        low, high = self.recipe.window
        stack = np.asarray(images_hu, np.float32)
        if stack.ndim == 2:
            stack = stack[None]
        if stack.ndim != 3:
            raise InputError(f"The segmenter takes 2D slices or a [N, H, W] stack; got shape {stack.shape}.")
        multiple = 2 ** (len(self.recipe.channels) - 1)
        if stack.shape[1] % multiple or stack.shape[2] % multiple:
            raise InputError(
                f"Slices of {stack.shape[1]}x{stack.shape[2]} pixels cannot go through the segmenter: sides must be "
                f"multiples of {multiple}. Resample them to {self.recipe.size}x{self.recipe.size} at "
                f"{self.recipe.pixel_spacing_mm} mm."
            )
        unit = np.clip((stack - low) / (high - low), 0.0, 1.0) * 2.0 - 1.0
        return torch.from_numpy(unit)[:, None]

    def predict(self, images_hu: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Class indices [N, H, W] for HU slices [N, H, W] at the segmenter's pixel spacing."""
        import torch

        x = self._to_unit(images_hu)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out.append(self.network(x[start:start + batch_size]).argmax(dim=1).numpy())
        return np.concatenate(out).astype(np.int64)

    def features(self, images_hu: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Pooled bottleneck features [N, 2C] (mean and max over space) for a CT-domain FID/MMD."""
        import torch

        module = self._bottleneck()
        captured = []
        handle = module.register_forward_hook(lambda _m, _i, output: captured.append(output))
        x = self._to_unit(images_hu)
        rows = []
        try:
            with torch.no_grad():
                for start in range(0, len(x), batch_size):
                    captured.clear()
                    self.network(x[start:start + batch_size])
                    deep = captured[0]
                    rows.append(torch.cat([deep.mean(dim=(2, 3)), deep.amax(dim=(2, 3))], dim=1).numpy())
        finally:
            handle.remove()
        return np.concatenate(rows).astype(np.float64)

    def _bottleneck(self):
        """The U-Net's deepest block (smallest output), found once by a probe pass."""
        import torch

        if self._feature_module is not None:
            return self._feature_module
        shapes, handles = {}, []
        for name, module in self.network.named_modules():
            if module.__class__.__name__ == "ResidualUnit":
                handles.append(module.register_forward_hook(
                    lambda m, _i, o, name=name: shapes.__setitem__(name, (o.shape[-1] * o.shape[-2], -o.shape[1], m))))
        size = self.recipe.size
        with torch.no_grad():
            self.network(torch.zeros(1, 1, size, size))
        for handle in handles:
            handle.remove()
        self._feature_module = min(shapes.values(), key=lambda item: (item[0], item[1]))[2]
        return self._feature_module


# --- loading --------------------------------------------------------------------------------------
_LOADED: dict[str, Segmenter] = {}


def load_segmenter(path: str | Path | None = None) -> Segmenter:
    """Load a segmenter file (default: the shipped one, checked against its recorded checksum)."""
    import torch

    path = Path(path) if path is not None else SHIPPED
    key = str(path.resolve())
    if key in _LOADED:
        return _LOADED[key]
    if not path.is_file():
        raise InputError(
            f"Segmenter weights {path} are missing. Reinstall MedSynth, or train them: "
            "python -m medsynth.generative.segmenter train --out ct_segmenter.pt"
        )
    if path == SHIPPED:
        from medsynth.generative.model_cache import verify_checksum

        record = json.loads((WEIGHTS_DIR / "ct_segmenter.json").read_text())
        verify_checksum(path, record["sha256"], "the CT segmenter")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a bad file
        raise InputError(f"{path} is not a readable segmenter file (corrupt or truncated): {type(error).__name__}.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a MedSynth segmenter file. Use one written by 'segmenter train'.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{path} has segmenter format {payload.get('format_version')}; this MedSynth reads {FORMAT_VERSION}.")
    recipe = SegmenterRecipe(**{**payload["recipe"], "window": tuple(payload["recipe"]["window"]),
                                "channels": tuple(payload["recipe"]["channels"])})
    network = build_network(recipe)
    try:
        network.load_state_dict(payload["state"], strict=True)
    except RuntimeError as error:
        raise InputError(f"{path}: the weights do not fit the segmenter its recipe describes ({str(error).splitlines()[0]}).") from None
    segmenter = Segmenter(network, recipe, str(path))
    _LOADED[key] = segmenter
    return segmenter


# --- training -------------------------------------------------------------------------------------
def training_slices(recipe: SegmenterRecipe, cancel: CancelToken | None = None) -> tuple[np.ndarray, np.ndarray]:
    """HU slices and class maps of the real cases, at the recipe's size and pixel spacing."""
    from medsynth.data import fetch
    from medsynth.generative.datasets.slices import SliceCase, SliceDatasetSpec, case_slices
    from medsynth.volume import LabelTable

    lidc = fetch("lidc")
    totalseg = fetch("totalseg")
    table = LabelTable.from_totalsegmentator_csv(lidc / "structures.csv")  # TotalSegmentator v2 ids
    available = {
        "lidc": SliceCase("lidc", lidc / "ct.nii.gz", lidc / "labels.nii.gz", table),
        "totalseg_small": SliceCase("totalseg_small", totalseg / "ct_sm.nii.gz", totalseg / "seg_sm.nii.gz", table),
        "totalseg_dicom": SliceCase("totalseg_dicom", totalseg / "dicom", totalseg / "seg_dicom.nii.gz", table),
    }
    spec = SliceDatasetSpec(classes=list(recipe.classes), size=recipe.size, pixel_spacing_mm=recipe.pixel_spacing_mm)
    images, labels = [], []
    for name in recipe.cases:
        check_cancel(cancel)
        if name not in available:
            raise InputError(f"Unknown training case {name!r}; known: {', '.join(available)}.")
        result = case_slices(available[name], spec, cancel)
        images.append(result["images"])
        labels.append(result["labels"])
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def train_segmenter(recipe: SegmenterRecipe, out_path: str | Path, progress: ProgressCallback | None = None,
                    cancel: CancelToken | None = None, data: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Train the segmenter (Dice + cross-entropy, Adam, flips and noise) and save it atomically."""
    import torch
    from monai.losses import DiceCELoss

    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    images, labels = data if data is not None else training_slices(recipe, cancel)
    if len(images) == 0:
        raise InputError("No training slices: the cases hold no body slices.")
    network = build_network(recipe).train()
    optimiser = torch.optim.Adam(network.parameters(), lr=recipe.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(1, recipe.steps))
    loss_function = DiceCELoss(to_onehot_y=True, softmax=True)
    low, high = recipe.window
    losses = []
    started = time.perf_counter()
    for step in range(recipe.steps):
        check_cancel(cancel)
        pick = rng.integers(0, len(images), recipe.batch)
        batch = images[pick] + rng.normal(0, recipe.noise_hu, images[pick].shape) * rng.uniform(0, 1, (len(pick), 1, 1))
        target = labels[pick]
        shift = rng.integers(-8, 9, 2)
        batch = np.roll(batch, shift, axis=(1, 2))
        target = np.roll(target, shift, axis=(1, 2))
        x = torch.from_numpy((np.clip((batch - low) / (high - low), 0, 1) * 2 - 1).astype(np.float32))[:, None]
        y = torch.from_numpy(target)[:, None]
        optimiser.zero_grad()
        loss = loss_function(network(x), y)
        loss.backward()
        optimiser.step()
        scheduler.step()
        losses.append(loss.item())
        report(progress, (step + 1) / recipe.steps, f"step {step + 1}: loss {losses[-1]:.3f}")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "recipe": _recipe_dict(recipe),
               "state": network.state_dict()}
    out_path = Path(out_path)
    with atomic_output(out_path) as temp:
        torch.save(payload, temp)
    return {"losses": losses, "seconds": time.perf_counter() - started, "slices": int(len(images))}


def _recipe_dict(recipe: SegmenterRecipe) -> dict:
    from dataclasses import asdict

    values = asdict(recipe)
    values["window"] = list(values["window"])
    values["channels"] = list(values["channels"])
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medsynth.generative.segmenter train --out FILE [--steps N]``: the shipped recipe."""
    parser = argparse.ArgumentParser(prog="python -m medsynth.generative.segmenter")
    actions = parser.add_subparsers(dest="action", required=True)
    train = actions.add_parser("train", help="train the CT slice segmenter on the fetchable real scans")
    train.add_argument("--out", required=True, help="weights file to write (.pt)")
    train.add_argument("--steps", type=int, default=SegmenterRecipe.steps)
    train.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = parser.parse_args(argv)
    import torch

    from medsynth.jobs.progress_bar import progress_bar
    from medsynth.generative.checkpoint import sha256_of

    torch.set_num_threads(max(1, args.threads))
    recipe = SegmenterRecipe(steps=args.steps)
    with progress_bar("train segmenter") as progress:
        result = train_segmenter(recipe, args.out, progress)
    command = "python -m medsynth.generative.segmenter " + " ".join(argv if argv is not None else sys.argv[1:])
    record = {"file": Path(args.out).name, "sha256": sha256_of(args.out), "recipe": _recipe_dict(recipe),
              "command": command, "training_seconds": round(result["seconds"], 1), "slices": result["slices"],
              "final_loss": round(float(np.mean(result["losses"][-20:])), 4),
              "first_loss": round(float(np.mean(result["losses"][:20])), 4),
              "licence": "Apache-2.0 (weights trained by MedSynth on LIDC-IDRI CC BY 3.0 and TotalSegmentator test "
                         "scans Apache-2.0)"}
    with atomic_output(Path(args.out).with_suffix(".json")) as temp:
        temp.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "recipe"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
