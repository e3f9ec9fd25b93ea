"""What every family's trainer shares: its networks, optimisers, batches, validation subset, and the
quick metrics shown while training (the full evaluation suite lives in medsynth.generative.metrics)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from medsynth.generative.augment import Augmentation
from medsynth.generative.intensity import IntensityWindow
from medsynth.generative.training_data import TrainingData, pick


def image_metrics(fake, real, window: IntensityWindow) -> dict[str, float]:
    """MAE/RMSE in the window's units, PSNR and SSIM (MONAI) of images in [-1, 1]."""
    import torch
    from monai.metrics import PSNRMetric, SSIMMetric

    fake_units, real_units = window.from_unit(fake), window.from_unit(real)
    win = min(7, fake.shape[-1])
    return {
        "mae": float((fake_units - real_units).abs().mean()),
        "rmse": float(((fake_units - real_units) ** 2).mean().sqrt()),
        "psnr": float(PSNRMetric(max_val=2.0)(fake, real).mean()),
        "ssim": float(SSIMMetric(spatial_dims=2, data_range=2.0, win_size=win)(fake, real).mean()),
    }


def class_mean_error(fake, real, labels, window: IntensityWindow) -> float:
    """Mean over classes of |mean generated - mean real| intensity (window units): does each organ look right?"""
    errors = []
    fake_units, real_units = window.from_unit(fake)[:, 0], window.from_unit(real)[:, 0]
    for value in labels.unique().tolist():
        mask = labels == value
        errors.append(abs(float(fake_units[mask].mean()) - float(real_units[mask].mean())))
    return float(np.mean(errors)) if errors else math.nan



class FamilyTrainer:
    """Holds one family's extra networks, optimisers and losses around the model."""

    def __init__(self, model, config: dict, data: TrainingData, device) -> None:
        self.model = model.to(device)
        self.config = config
        self.train_cfg = config["train"]
        self.data = data
        self.device = device
        self.window = IntensityWindow.from_dict(data.meta["window"])
        self.modules: dict = {"model": self.model}
        self.optimizers: dict = {}

    def adam(self, parameters, lr=None):
        import torch

        return torch.optim.Adam(parameters, lr=float(lr or self.train_cfg["lr"]), betas=tuple(self.train_cfg["betas"]))

    def sample_batch(self, generator) -> dict:
        import torch

        indices = torch.randint(self.data.train_size, (self.train_cfg["batch_size"],), generator=generator)
        batch = {name: tensor.to(self.device) for name, tensor in pick(self.data.train, indices).items()}
        augmentation = Augmentation.from_dict(self.train_cfg.get("augment"))
        if augmentation.active and "labels" in batch:
            batch["images"], batch["labels"] = augmentation(batch["images"], batch["labels"], generator)
        return batch

    def val_subset(self) -> dict:
        count = min(self.train_cfg["val_samples"], int(next(iter(self.data.val.values())).shape[0]))
        # evenly spread over the validation slices, always the same ones
        indices = np.linspace(0, int(next(iter(self.data.val.values())).shape[0]) - 1, count).round().astype(int)
        return {name: tensor[indices].to(self.device) for name, tensor in self.data.val.items()}

    def train_step(self, batch: dict, generator) -> dict[str, float]:
        raise NotImplementedError

    def validate(self, step: int, samples_dir: Path | None) -> dict[str, float]:
        raise NotImplementedError

    def export_model(self):
        """The model whose weights are saved as best/final (an EMA copy for diffusion when enabled)."""
        return self.model

    def training_state(self) -> dict:
        return {"modules": {n: m.state_dict() for n, m in self.modules.items() if n != "model"},
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()}}

    def load_training_state(self, state: dict) -> None:
        for name, module in self.modules.items():
            if name != "model":
                module.load_state_dict(state["modules"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])

    def _randn(self, shape, generator):
        import torch

        return torch.randn(shape, generator=generator).to(self.device)
