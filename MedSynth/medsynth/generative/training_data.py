"""The tensors a training run learns from: each family's dataset folder read into train/val splits in [-1, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsynth.errors import InputError
from medsynth.generative.intensity import IntensityWindow


@dataclass
class TrainingData:
    train: dict  # name -> tensor (all on CPU)
    val: dict
    meta: dict  # image_size, window, pixel_spacing_mm, class_names (label families), ...

    @property
    def train_size(self) -> int:
        return int(next(iter(self.train.values())).shape[0])


def _tensor_images(array: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[:, None]


def load_data(config: dict) -> TrainingData:
    """The train and validation tensors of the config's dataset, scaled to [-1, 1]."""
    import torch

    from medsynth.generative.datasets.slices import DATASET_KIND, load_split, read_manifest

    family, data = config["family"], config["data"]
    folder = data["dataset"]
    if family in ("spade_gan", "semantic_diffusion"):
        manifest = read_manifest(folder, DATASET_KIND)
        window = IntensityWindow.from_dict(data["window"] or {"low": -1000.0, "high": 1000.0, "units": "HU"})
        context = int((config["model"] or {}).get("context_slices", 0) or 0)
        have = int(manifest.get("context_slices", 0) or 0)
        if context > have:
            raise InputError(f"The model is conditioned on {context} neighbouring label slices per side, but the dataset "
                             f"{folder} stores {have}. Rebuild it with context_slices: {context} (or more).")
        splits = {}
        for role in ("train", "val"):
            arrays = load_split(folder, data[f"{role}_split"], DATASET_KIND)
            labels = arrays["labels"]
            if context:  # the middle 2 * context + 1 of the stored neighbours
                labels = arrays["context_labels"][:, have - context:have + context + 1]
            splits[role] = {"images": _tensor_images(window.to_unit(arrays["images"])),
                            "labels": torch.from_numpy(labels.astype(np.int64))}
            spacing = float(np.median(arrays["pixel_spacing_mm"]))
            if role == "train":
                pixel_spacing = spacing
        meta = {"class_names": list(manifest["classes"]), "image_size": int(manifest["image_size"]),
                "window": window.to_dict(), "pixel_spacing_mm": manifest.get("pixel_spacing_mm") or pixel_spacing,
                "axis": manifest.get("axis"), "dataset": str(folder)}
        return TrainingData(splits["train"], splits["val"], meta)
    if family == "pix2pix":
        from medsynth.generative.datasets.dual_energy import PAIRS_KIND

        manifest = read_manifest(folder, PAIRS_KIND)
        source = IntensityWindow.from_dict(manifest["source_window"])
        target_name = config["model"].get("target", "bone")
        if target_name not in manifest["targets"]:
            raise InputError(f"The pairs dataset {folder} has targets {manifest['targets']}, not {target_name!r}.")
        target = IntensityWindow.from_dict(manifest["target_windows"][target_name])
        splits = {}
        for role in ("train", "val"):
            arrays = load_split(folder, data[f"{role}_split"], PAIRS_KIND)
            splits[role] = {"source": _tensor_images(source.to_unit(arrays["source"])),
                            "target": _tensor_images(target.to_unit(arrays[target_name]))}
        meta = {"image_size": int(manifest["image_size"]), "window": target.to_dict(),
                "source_window": source.to_dict(), "input_window": source.to_dict(), "output_window": target.to_dict(),
                "pixel_spacing_mm": manifest.get("pixel_spacing_mm"), "dataset": str(folder)}
        return TrainingData(splits["train"], splits["val"], meta)
    from medsynth.generative.datasets.unpaired import UNPAIRED_KIND

    manifest = read_manifest(folder, UNPAIRED_KIND)
    splits = {}
    for role in ("train", "val"):
        arrays = load_split(folder, data[f"{role}_split"], UNPAIRED_KIND)
        splits[role] = {"a": _tensor_images(arrays["a"]), "b": _tensor_images(arrays["b"])}
    meta = {"image_size": int(manifest["image_size"]),
            "window": {"low": -1.0, "high": 1.0, "units": "normalized"},
            "pixel_spacing_mm": None, "dataset": str(folder)}
    return TrainingData(splits["train"], splits["val"], meta)


def pick(split: dict, indices) -> dict:
    return {name: tensor[indices] for name, tensor in split.items()}
