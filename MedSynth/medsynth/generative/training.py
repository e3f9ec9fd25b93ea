"""Training the four families from one config: seeds, checkpoints, exact resume, best model, logs, plots.

``train(config)`` runs the loop shared by all families; a small trainer per family holds its
discriminators, optimisers and losses. Every random draw comes from two seeded torch generators
(one for picking training slices, one for the model's noise) whose states are saved in each
checkpoint together with the optimisers and the metrics log, so ``resume=True`` continues
exactly where the last checkpoint left off: the same batches, noise and numbers as an
uninterrupted run.

Output folder: ``config.yaml`` (the exact config), ``last.pt`` (training state), ``best.pt`` (the
model with the best validation metric), ``final.pt``, ``checkpoints/step_*.pt``,
``metrics.jsonl``, ``curves.png``, ``samples/step_*.png`` (outputs next to their inputs) and
``summary.json``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from medsynth.errors import InputError
from medsynth.generative.config import METRIC_DIRECTIONS, comparable, normalize_config
from medsynth.generative.intensity import IntensityWindow
from medsynth.io.atomic import atomic_output
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report

#: Colours of classes 1.. in label pictures (class 0 is black).
PALETTE = np.array([[0, 0, 0], [170, 110, 90], [80, 160, 255], [150, 70, 40], [240, 240, 200], [220, 40, 60],
                    [90, 220, 90], [255, 210, 60], [200, 90, 255], [60, 230, 230]], np.uint8)


# ---------------------------------------------------------------------------------------------
# data
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
        splits = {}
        for role in ("train", "val"):
            arrays = load_split(folder, data[f"{role}_split"], DATASET_KIND)
            splits[role] = {"images": _tensor_images(window.to_unit(arrays["images"])),
                            "labels": torch.from_numpy(arrays["labels"].astype(np.int64))}
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


def _pick(split: dict, indices) -> dict:
    return {name: tensor[indices] for name, tensor in split.items()}


# ---------------------------------------------------------------------------------------------
# metrics used while training (the full evaluation suite lives in medsynth.generative.metrics)
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


# ---------------------------------------------------------------------------------------------
# pictures
def label_picture(labels: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(labels) % len(PALETTE)]


def unit_to_uint8(image, window: IntensityWindow) -> np.ndarray:
    """[-1, 1] -> uint8 for display: a soft-tissue window for HU, the full range otherwise."""
    from medsynth.pictures import window as display_window

    array = np.asarray(image, dtype=np.float32)
    if window.units == "HU":
        return display_window(window.from_unit(array), 40.0, 400.0)
    return ((array.clip(-1, 1) + 1) * 127.5 + 0.5).astype(np.uint8)


def save_rows(rows: list[list[np.ndarray]], titles: list[str], path: Path, scale: int = 2) -> Path:
    """Save a grid (rows of uint8/RGB arrays, one title per column) as a PNG."""
    from PIL import Image

    from medsynth.pictures import montage, save_picture

    tiles, names = [], []
    for row in rows:
        for column, array in enumerate(row):
            image = Image.fromarray(np.ascontiguousarray(array), "RGB" if array.ndim == 3 else "L")
            tiles.append(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
            names.append(titles[column])
    return save_picture(montage(tiles, names, columns=len(titles)), path)


def plot_curves(history: list[dict], path: Path, val_metric: str) -> Path | None:
    """curves.png: training losses and validation metrics against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train_rows = [row for row in history if row.get("kind") == "train"]
    val_rows = [row for row in history if row.get("kind") == "val"]
    if not train_rows:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    loss_names = sorted({k for row in train_rows for k in row if k.startswith("loss")})
    for name in loss_names:
        axes[0].plot([r["step"] for r in train_rows if name in r], [r[name] for r in train_rows if name in r], label=name)
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses")
    axes[0].legend(fontsize=8)
    metric_names = sorted({k for row in val_rows for k in row if k not in ("step", "kind", "time_s")})
    for name in metric_names:
        values = [(r["step"], r[name]) for r in val_rows if name in r and r[name] is not None and np.isfinite(r[name])]
        if values:
            axes[1].plot(*zip(*values), marker="o", label=name + (" (best by)" if name == val_metric else ""))
    axes[1].set_xlabel("step")
    axes[1].set_title("validation")
    axes[1].set_yscale("symlog")
    if metric_names:
        axes[1].legend(fontsize=8)
    figure.tight_layout()
    with atomic_output(path) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)
    return path


# ---------------------------------------------------------------------------------------------
# the family trainers
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
        return {name: tensor.to(self.device) for name, tensor in _pick(self.data.train, indices).items()}

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


class SpadeGanTrainer(FamilyTrainer):
    def __init__(self, model, config, data, device) -> None:
        super().__init__(model, config, data, device)
        from monai.losses import PatchAdversarialLoss

        from medsynth.generative.networks.spade_gan import build_discriminator

        self.kind = self.train_cfg["discriminator"]
        if self.train_cfg["mask_loss_weight"] and self.kind != "segmentation":
            raise InputError("spade_gan: mask_loss_weight needs the segmentation discriminator (discriminator: segmentation).")
        self.discriminator = build_discriminator(self.kind, model.num_classes, self.train_cfg["discriminator_channels"]).to(device)
        self.modules["discriminator"] = self.discriminator
        self.optimizers = {"generator": self.adam(model.parameters()),
                           "discriminator": self.adam(self.discriminator.parameters(), self.train_cfg["lr_discriminator"])}
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")

    def _segmentation_loss(self, logits, target, weights, pixel_weights=None):
        import torch.nn.functional as F

        loss = F.cross_entropy(logits, target, weight=weights, reduction="none")
        if pixel_weights is not None:
            loss = loss * pixel_weights
        return loss.mean()

    def train_step(self, batch, generator):
        import torch

        from medsynth.generative.networks.spade_gan import boundary_map, class_balance_weights

        labels, real = batch["labels"], batch["images"]
        one_hot = self.model.one_hot(labels)
        z = self._randn((labels.shape[0], self.model.z_dim), generator)
        fake = self.model(one_hot, z)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        # discriminator
        opt_d.zero_grad(set_to_none=True)
        if self.kind == "segmentation":
            weights = class_balance_weights(labels, self.model.num_classes)
            loss_d = self._segmentation_loss(self.discriminator(real), labels + 1, weights) + \
                self._segmentation_loss(self.discriminator(fake.detach()), torch.zeros_like(labels), None)
        else:
            loss_d = 0.5 * (self.adversarial(self.discriminator(torch.cat([real, one_hot], 1))[-1], True, True)
                            + self.adversarial(self.discriminator(torch.cat([fake.detach(), one_hot], 1))[-1], False, True))
        loss_d.backward()
        opt_d.step()
        # generator
        opt_g.zero_grad(set_to_none=True)
        if self.kind == "segmentation":
            pixel_weights = None
            if self.train_cfg["mask_loss_weight"]:
                pixel_weights = 1.0 + self.train_cfg["mask_loss_weight"] * boundary_map(labels)
            loss_adv = self._segmentation_loss(self.discriminator(fake), labels + 1, weights, pixel_weights)
        else:
            loss_adv = self.adversarial(self.discriminator(torch.cat([fake, one_hot], 1))[-1], True, False)
        loss_g = loss_adv
        losses = {"loss_d": loss_d.item(), "loss_g_adv": loss_adv.item()}
        if self.train_cfg["l1_weight"]:
            loss_l1 = (fake - real).abs().mean()
            loss_g = loss_g + self.train_cfg["l1_weight"] * loss_l1
            losses["loss_g_l1"] = loss_l1.item()
        loss_g.backward()
        opt_g.step()
        losses["loss_g"] = loss_g.item()
        return losses

    def generate_val(self, subset):
        import torch

        generator = torch.Generator().manual_seed(int(self.train_cfg["seed"]) + 99)
        return self.export_model().generate(subset["labels"], generator)

    def validate(self, step, samples_dir):
        subset = self.val_subset()
        self.model.eval()
        fake = self.generate_val(subset)
        self.model.train()
        metrics = image_metrics(fake, subset["images"], self.window)
        metrics["class_mean_error"] = class_mean_error(fake, subset["images"], subset["labels"], self.window)
        if samples_dir is not None:
            rows = [[label_picture(subset["labels"][i].cpu().numpy()),
                     unit_to_uint8(fake[i, 0].cpu(), self.window), unit_to_uint8(subset["images"][i, 0].cpu(), self.window)]
                    for i in range(min(4, fake.shape[0]))]
            save_rows(rows, ["label map", "generated", "real"], samples_dir / f"step_{step:06d}.png")
        return metrics


class SemanticDiffusionTrainer(FamilyTrainer):
    def __init__(self, model, config, data, device) -> None:
        super().__init__(model, config, data, device)
        self.optimizers = {"model": self.adam(model.parameters())}
        self.ema = None
        if self.train_cfg["ema_decay"]:
            self.ema = copy.deepcopy(model).eval()
            for parameter in self.ema.parameters():
                parameter.requires_grad_(False)
            self.modules["ema"] = self.ema

    def _loss(self, batch, generator):
        import torch

        real, one_hot = batch["images"], self.model.one_hot(batch["labels"])
        noise = self._randn(real.shape, generator)
        timesteps = torch.randint(0, self.model.train_timesteps, (real.shape[0],), generator=generator).to(self.device)
        noisy = self.model.scheduler.add_noise(real, noise, timesteps)
        keep = (torch.rand(real.shape[0], generator=generator) >= float(self.model.hparams["label_dropout"])).float()
        one_hot = one_hot * keep.to(self.device)[:, None, None, None]
        target = self.model.training_target(real, noise, timesteps)
        return torch.nn.functional.mse_loss(self.model(noisy, timesteps, one_hot), target)

    def train_step(self, batch, generator):
        import torch

        optimizer = self.optimizers["model"]
        optimizer.zero_grad(set_to_none=True)
        loss = self._loss(batch, generator)
        loss.backward()
        optimizer.step()
        if self.ema is not None:
            decay = float(self.train_cfg["ema_decay"])
            with torch.no_grad():
                for ema_p, p in zip(self.ema.parameters(), self.model.parameters()):
                    ema_p.mul_(decay).add_(p.detach(), alpha=1 - decay)
        return {"loss": loss.item()}

    def export_model(self):
        return self.ema if self.ema is not None else self.model

    def validate(self, step, samples_dir):
        import torch

        subset = self.val_subset()
        model = self.export_model()
        model.eval()
        with torch.no_grad():
            val_loss = float(self._loss(subset, torch.Generator().manual_seed(int(self.train_cfg["seed"]) + 98)))
        generator = torch.Generator().manual_seed(int(self.train_cfg["seed"]) + 99)
        fake = model.generate(subset["labels"], generator, steps=self.train_cfg["val_steps"])
        self.model.train()
        metrics = {"val_loss": val_loss, **image_metrics(fake, subset["images"], self.window)}
        metrics["class_mean_error"] = class_mean_error(fake, subset["images"], subset["labels"], self.window)
        if samples_dir is not None:
            rows = [[label_picture(subset["labels"][i].cpu().numpy()),
                     unit_to_uint8(fake[i, 0].cpu(), self.window), unit_to_uint8(subset["images"][i, 0].cpu(), self.window)]
                    for i in range(min(4, fake.shape[0]))]
            save_rows(rows, ["label map", f"DDIM {self.train_cfg['val_steps']} steps", "real"],
                      samples_dir / f"step_{step:06d}.png")
        return metrics


class Pix2PixTrainer(FamilyTrainer):
    def __init__(self, model, config, data, device) -> None:
        super().__init__(model, config, data, device)
        from monai.losses import PatchAdversarialLoss

        from medsynth.generative.networks.translation import build_patch_discriminator

        self.discriminator = build_patch_discriminator(2, self.train_cfg["discriminator_channels"], 3).to(device)
        self.modules["discriminator"] = self.discriminator
        self.optimizers = {"generator": self.adam(model.parameters()),
                           "discriminator": self.adam(self.discriminator.parameters(), self.train_cfg["lr_discriminator"])}
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")

    def train_step(self, batch, generator):
        import torch

        source, target = batch["source"], batch["target"]
        fake = self.model(source)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (self.adversarial(self.discriminator(torch.cat([source, target], 1))[-1], True, True)
                        + self.adversarial(self.discriminator(torch.cat([source, fake.detach()], 1))[-1], False, True))
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss_adv = self.adversarial(self.discriminator(torch.cat([source, fake], 1))[-1], True, False)
        loss_l1 = (fake - target).abs().mean()
        loss_g = loss_adv + self.train_cfg["l1_weight"] * loss_l1
        loss_g.backward()
        opt_g.step()
        return {"loss_d": loss_d.item(), "loss_g_adv": loss_adv.item(), "loss_g_l1": loss_l1.item(), "loss_g": loss_g.item()}

    def validate(self, step, samples_dir):
        subset = self.val_subset()
        self.model.eval()
        fake = self.model.translate(subset["source"])
        self.model.train()
        metrics = image_metrics(fake, subset["target"], self.window)
        if samples_dir is not None:
            rows = [[unit_to_uint8(subset["source"][i, 0].cpu(), IntensityWindow(-1, 1, "normalized")),
                     unit_to_uint8(fake[i, 0].cpu(), IntensityWindow(-1, 1, "normalized")),
                     unit_to_uint8(subset["target"][i, 0].cpu(), IntensityWindow(-1, 1, "normalized"))]
                    for i in range(min(4, fake.shape[0]))]
            save_rows(rows, ["input", "translated", "target"], samples_dir / f"step_{step:06d}.png")
        return metrics


class CycleGanTrainer(FamilyTrainer):
    def __init__(self, model, config, data, device) -> None:
        super().__init__(model, config, data, device)
        import itertools

        from monai.losses import PatchAdversarialLoss

        from medsynth.generative.networks.translation import build_patch_discriminator

        channels = self.train_cfg["discriminator_channels"]
        self.disc_a = build_patch_discriminator(1, channels, 3).to(device)
        self.disc_b = build_patch_discriminator(1, channels, 3).to(device)
        self.modules.update({"discriminator_a": self.disc_a, "discriminator_b": self.disc_b})
        self.optimizers = {
            "generators": self.adam(model.parameters()),
            "discriminators": self.adam(itertools.chain(self.disc_a.parameters(), self.disc_b.parameters()),
                                        self.train_cfg["lr_discriminator"]),
        }
        self.adversarial = PatchAdversarialLoss(criterion="least_squares")

    def sample_batch(self, generator):
        import torch

        batch = self.train_cfg["batch_size"]
        count_a, count_b = self.data.train["a"].shape[0], self.data.train["b"].shape[0]
        index_a = torch.randint(count_a, (batch,), generator=generator)
        index_b = torch.randint(count_b, (batch,), generator=generator)
        return {"a": self.data.train["a"][index_a].to(self.device), "b": self.data.train["b"][index_b].to(self.device)}

    def val_subset(self):
        count = self.train_cfg["val_samples"]
        out = {}
        for name in ("a", "b"):
            total = self.data.val[name].shape[0]
            indices = np.linspace(0, total - 1, min(count, total)).round().astype(int)
            out[name] = self.data.val[name][indices].to(self.device)
        return out

    def train_step(self, batch, generator):
        a, b = batch["a"], batch["b"]
        g_ab, g_ba = self.model.generator_ab, self.model.generator_ba
        opt_g, opt_d = self.optimizers["generators"], self.optimizers["discriminators"]
        fake_b, fake_a = g_ab(a), g_ba(b)
        opt_g.zero_grad(set_to_none=True)
        loss_adv = self.adversarial(self.disc_b(fake_b)[-1], True, False) + self.adversarial(self.disc_a(fake_a)[-1], True, False)
        loss_cycle = (g_ba(fake_b) - a).abs().mean() + (g_ab(fake_a) - b).abs().mean()
        loss_identity = (g_ab(b) - b).abs().mean() + (g_ba(a) - a).abs().mean()
        loss_g = loss_adv + self.train_cfg["cycle_weight"] * loss_cycle + self.train_cfg["identity_weight"] * loss_identity
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (self.adversarial(self.disc_a(a)[-1], True, True) + self.adversarial(self.disc_a(fake_a.detach())[-1], False, True)
                        + self.adversarial(self.disc_b(b)[-1], True, True) + self.adversarial(self.disc_b(fake_b.detach())[-1], False, True))
        loss_d.backward()
        opt_d.step()
        return {"loss_g": loss_g.item(), "loss_g_adv": loss_adv.item(), "loss_cycle": loss_cycle.item(),
                "loss_identity": loss_identity.item(), "loss_d": loss_d.item()}

    def validate(self, step, samples_dir):
        subset = self.val_subset()
        self.model.eval()
        fake_b = self.model.translate(subset["a"], "a2b")
        fake_a = self.model.translate(subset["b"], "b2a")
        cycle = float((self.model.translate(fake_b, "b2a") - subset["a"]).abs().mean()
                      + (self.model.translate(fake_a, "a2b") - subset["b"]).abs().mean())
        self.model.train()
        if samples_dir is not None:
            unit = IntensityWindow(-1, 1, "normalized")
            rows = [[unit_to_uint8(subset["a"][i, 0].cpu(), unit), unit_to_uint8(fake_b[i, 0].cpu(), unit),
                     unit_to_uint8(subset["b"][i % subset["b"].shape[0], 0].cpu(), unit),
                     unit_to_uint8(fake_a[i % fake_a.shape[0], 0].cpu(), unit)]
                    for i in range(min(4, fake_b.shape[0]))]
            save_rows(rows, ["simulated", "-> real", "real", "-> simulated"], samples_dir / f"step_{step:06d}.png")
        return {"cycle_l1": cycle}


TRAINERS = {"spade_gan": SpadeGanTrainer, "semantic_diffusion": SemanticDiffusionTrainer,
            "pix2pix": Pix2PixTrainer, "cyclegan": CycleGanTrainer}


# ---------------------------------------------------------------------------------------------
# the loop
@dataclass
class TrainingResult:
    output: Path
    steps: int
    best_path: Path | None
    final_path: Path
    best: dict | None
    history: list = field(default_factory=list)
    seconds: float = 0.0  # this run (a resumed run adds to earlier ones: total_seconds)
    total_seconds: float = 0.0
    steps_per_second: float = 0.0


def _seed_everything(seed: int, deterministic: bool) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _is_better(value: float, best: dict | None, metric: str) -> bool:
    if value is None or not np.isfinite(value):
        return False
    if best is None:
        return True
    return value < best["value"] if METRIC_DIRECTIONS[metric] == "min" else value > best["value"]


def _emissions_tracker(setting, output: Path):
    if setting is False:
        return None
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        if setting is True:
            raise InputError("train.track_emissions is true but codecarbon is not installed: "
                             "pip install codecarbon, or set track_emissions: auto.") from None
        return None
    return OfflineEmissionsTracker(output_dir=str(output), country_iso_code="USA", log_level="error", save_to_file=True)


def train(config: dict, resume: bool = False, progress: ProgressCallback | None = None,
          cancel: CancelToken | None = None, base_dir: str | Path | None = None) -> TrainingResult:
    """Train the family a config names; with ``resume`` continue from ``output/last.pt`` exactly."""
    import torch

    from medsynth.generative.checkpoint import read_checkpoint, save_checkpoint
    from medsynth.generative.device import resolve_device, set_threads
    from medsynth.generative.networks import build_model

    config = normalize_config(config, base_dir)
    family, train_cfg = config["family"], config["train"]
    output = Path(config["output"])
    last_path = output / "last.pt"
    if last_path.exists() and not resume:
        raise InputError(f"{output} already holds a training run (last.pt). Pass --resume to continue it, "
                         "or choose another output folder.")
    if resume and not last_path.exists():
        raise InputError(f"Nothing to resume in {output}: no last.pt. Start the run without --resume.")
    device = resolve_device(train_cfg["device"])
    set_threads(train_cfg["threads"])
    _seed_everything(int(train_cfg["seed"]), bool(train_cfg["deterministic"]))
    data = load_data(config)
    if data.train_size == 0:
        raise InputError(f"The training split of {config['data']['dataset']} is empty.")
    model = build_model(family, config["model"], data.meta)
    trainer = TRAINERS[family](model, config, data, device)
    data_generator = torch.Generator().manual_seed(int(train_cfg["seed"]) + 1)
    noise_generator = torch.Generator().manual_seed(int(train_cfg["seed"]) + 2)
    step, best, history, earlier_seconds = 0, None, [], 0.0
    if resume:
        payload = read_checkpoint(last_path, expected_family=family)
        if comparable(payload["config"]) != comparable(config):
            raise InputError(
                f"The config differs from the one {output} was trained with (only steps, checkpoint/validation "
                "intervals, device and threads may change on --resume). Use the saved config.yaml, or a new output folder."
            )
        model.load_state_dict(payload["state"]["model"])
        state = payload["state"]["training"]
        trainer.load_training_state(state)
        data_generator.set_state(state["rng"]["data"])
        noise_generator.set_state(state["rng"]["noise"])
        step, best, history = int(state["step"]), state["best"], list(state["history"])
        earlier_seconds = float(state.get("seconds", 0.0))
        if step >= train_cfg["steps"]:
            raise InputError(f"{output} already reached step {step} of {train_cfg['steps']}: raise train.steps to continue.")
    output.mkdir(parents=True, exist_ok=True)
    with atomic_output(output / "config.yaml") as temp:
        temp.write_text(yaml.safe_dump(config, sort_keys=False))
    samples_dir = output / "samples"
    samples_dir.mkdir(exist_ok=True)
    meta = {**data.meta, **model.meta(), "recipe": {"family": family, "train": train_cfg, "model": model.hparams}}

    def save_training(current_step: int) -> None:
        state = {"model": model.state_dict(), "training": {
            **trainer.training_state(), "step": current_step, "best": best, "history": history,
            "seconds": earlier_seconds + time.perf_counter() - started,
            "rng": {"data": data_generator.get_state(), "noise": noise_generator.get_state()}}}
        checkpoints = output / "checkpoints"
        checkpoints.mkdir(exist_ok=True)
        save_checkpoint(checkpoints / f"step_{current_step:06d}.pt", family, config, state, {**meta, "step": current_step})
        save_checkpoint(last_path, family, config, state, {**meta, "step": current_step})
        for old in sorted(checkpoints.glob("step_*.pt"))[:-train_cfg["keep_checkpoints"]]:
            old.unlink()
        _write_history(output, history, train_cfg["val_metric"])

    tracker = _emissions_tracker(train_cfg["track_emissions"], output)
    if tracker is not None:
        tracker.start()
    model.train()
    started, first_step = time.perf_counter(), step
    running: dict[str, list[float]] = {}
    try:
        while step < train_cfg["steps"]:
            check_cancel(cancel)
            batch = trainer.sample_batch(data_generator)
            losses = trainer.train_step(batch, noise_generator)
            step += 1
            for name, value in losses.items():
                if not np.isfinite(value):
                    raise InputError(f"Training diverged at step {step}: {name} = {value}. Lower train.lr or check the data.")
                running.setdefault(name, []).append(value)
            if step % train_cfg["log_every"] == 0 or step == train_cfg["steps"]:
                history.append({"kind": "train", "step": step, **{k: float(np.mean(v)) for k, v in running.items()}})
                running = {}
            if step % train_cfg["validate_every"] == 0 or step == train_cfg["steps"]:
                metrics = trainer.validate(step, samples_dir)
                history.append({"kind": "val", "step": step, **metrics})
                value = metrics.get(train_cfg["val_metric"])
                if _is_better(value, best, train_cfg["val_metric"]):
                    best = {"metric": train_cfg["val_metric"], "value": float(value), "step": step}
                    save_checkpoint(output / "best.pt", family, config, {"model": trainer.export_model().state_dict()},
                                    {**meta, "step": step, "best": best, "val_metrics": metrics})
            if step % train_cfg["checkpoint_every"] == 0 or step == train_cfg["steps"]:
                save_training(step)
            loss_text = " ".join(f"{k}={v:.3g}" for k, v in losses.items() if k in ("loss", "loss_g", "loss_d"))
            report(progress, step / train_cfg["steps"], f"step {step}/{train_cfg['steps']} {loss_text}")
    finally:
        if tracker is not None:
            tracker.stop()
    seconds = time.perf_counter() - started
    final_path = save_checkpoint(output / "final.pt", family, config, {"model": trainer.export_model().state_dict()},
                                 {**meta, "step": step, "best": best})
    summary = {"family": family, "steps": step, "best": best, "seconds_this_run": round(seconds, 2),
               "seconds_all_runs": round(earlier_seconds + seconds, 2),
               "steps_per_second": round((step - first_step) / max(seconds, 1e-9), 3),
               "device": str(device), "threads": torch.get_num_threads(),
               "parameters": int(sum(p.numel() for p in model.parameters()))}
    with atomic_output(output / "summary.json") as temp:
        temp.write_text(json.dumps(summary, indent=2) + "\n")
    return TrainingResult(output, step, output / "best.pt" if best else None, final_path, best, history, seconds,
                          earlier_seconds + seconds, summary["steps_per_second"])


def _write_history(output: Path, history: list[dict], val_metric: str) -> None:
    with atomic_output(output / "metrics.jsonl") as temp:
        temp.write_text("".join(json.dumps(row) + "\n" for row in history))
    plot_curves(history, output / "curves.png", val_metric)


def export_weights(checkpoint: str | Path, destination: str | Path, half: bool = True) -> Path:
    """A shippable copy of a checkpoint: the model's weights only (float16 when ``half``), same config and meta."""
    from medsynth.generative.checkpoint import read_checkpoint, save_checkpoint

    payload = read_checkpoint(checkpoint)
    weights = {name: (tensor.half() if half and tensor.is_floating_point() else tensor)
               for name, tensor in payload["state"]["model"].items()}
    meta = {**payload["meta"], "exported_from": Path(checkpoint).name, "stored_as": "float16" if half else "float32"}
    if "source_window" in meta:  # pix2pix: inputs and outputs have their own windows
        meta.setdefault("input_window", meta["source_window"])
        meta.setdefault("output_window", meta["window"])
    return save_checkpoint(destination, payload["family"], payload["config"], {"model": weights}, meta)
