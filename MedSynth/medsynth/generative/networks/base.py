"""What every MedSynth model shares: its classes, input size, pixel spacing and intensity window.

Label-map models turn class indices ``[B, H, W]`` into images ``[B, 1, H, W]`` in [-1, 1];
image-to-image models turn images in [-1, 1] into images in [-1, 1]. The window maps [-1, 1]
back to physical units (``model.window.from_unit``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from medsynth.errors import InputError
from medsynth.generative.intensity import IntensityWindow


class MedSynthModel(nn.Module):
    """Base of every family: the metadata a checkpoint records, and input checks."""

    family: str = ""
    #: Height and width must be multiples of this (the network's total down-sampling).
    size_multiple: int = 1

    def __init__(self, image_size: int, window: IntensityWindow | dict, pixel_spacing_mm: float | None = None,
                 hparams: dict | None = None) -> None:
        super().__init__()
        self.image_size = int(image_size)
        self.window = window if isinstance(window, IntensityWindow) else IntensityWindow.from_dict(window)
        self.pixel_spacing_mm = None if pixel_spacing_mm is None else float(pixel_spacing_mm)
        self.hparams = dict(hparams or {})
        if self.image_size % self.size_multiple:
            raise InputError(
                f"{self.family}: image size {self.image_size} is not a multiple of {self.size_multiple}, "
                "which this network's down-sampling needs. Choose e.g. 64, 128 or 256."
            )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def meta(self) -> dict:
        """What a checkpoint must record to rebuild this model (besides its hyper-parameters)."""
        return {
            "image_size": self.image_size,
            "window": self.window.to_dict(),
            "pixel_spacing_mm": self.pixel_spacing_mm,
        }

    def check_pixel_spacing(self, spacing_mm: float | tuple[float, float], tolerance: float = 0.2) -> None:
        """Raise unless slices of ``spacing_mm`` pixels match the training spacing within ``tolerance`` (relative).

        A model paints anatomy at the scale it was trained on: a liver at 1 mm pixels looks nothing
        like one at 5.5 mm, so inputs must be resampled to the model's spacing first.
        """
        if self.pixel_spacing_mm is None:
            return
        values = [float(v) for v in np.atleast_1d(spacing_mm)]
        if any(not np.isfinite(v) or v <= 0 for v in values):
            raise InputError(f"Pixel spacing must be positive millimetres, got {spacing_mm!r}.")
        worst = max(values, key=lambda v: abs(v / self.pixel_spacing_mm - 1.0))
        if abs(worst / self.pixel_spacing_mm - 1.0) > tolerance:
            raise InputError(
                f"The slices have {worst:g} mm pixels, but this {self.family} model was trained on "
                f"{self.pixel_spacing_mm:g} mm pixels. Resample the label map to {self.pixel_spacing_mm:g} mm "
                f"(in-plane) before generating."
            )

    def check_spatial(self, height: int, width: int, what: str) -> None:
        if height % self.size_multiple or width % self.size_multiple or height < self.size_multiple:
            raise InputError(
                f"{what} of size {height}x{width} cannot go through this {self.family} model: height and width "
                f"must be multiples of {self.size_multiple} (it was trained at {self.image_size}x{self.image_size}). "
                f"Resample the slices to {self.image_size}x{self.image_size}."
            )


class LabelToImageModel(MedSynthModel):
    """A model generating images from label maps whose classes are named (channel order)."""

    def __init__(self, class_names: Sequence[str], image_size: int, window, pixel_spacing_mm=None,
                 hparams: dict | None = None) -> None:
        super().__init__(image_size, window, pixel_spacing_mm, hparams)
        names = [str(name) for name in class_names]
        if len(names) < 2 or len(set(n.lower() for n in names)) != len(names):
            raise InputError(f"A label-map model needs at least two distinct class names, got {names}.")
        self.class_names = names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def meta(self) -> dict:
        return {**super().meta(), "class_names": list(self.class_names)}

    @property
    def context_slices(self) -> int:
        """Neighbouring label slices on each side the model is conditioned on (2.5D; 0: one slice)."""
        return int(self.hparams.get("context_slices", 0) or 0)

    @property
    def label_slices(self) -> int:
        return 2 * self.context_slices + 1

    @property
    def cond_channels(self) -> int:
        """Channels of the one-hot conditioning: every class of every label slice."""
        return self.num_classes * self.label_slices

    def check_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Validate class indices and return them as a long tensor [B, S, H, W] on the model's device.

        ``labels`` is [B, H, W] (one slice each; a 2.5D model then sees it as its own neighbours)
        or [B, S, H, W] with S = 2 * context_slices + 1 slices, the slice to generate in the middle.
        """
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels)
        if labels.ndim == 3:
            labels = labels[:, None].expand(-1, self.label_slices, -1, -1)
        if labels.ndim != 4 or labels.shape[1] != self.label_slices:
            raise InputError(
                f"Label maps must be a batch of 2D class-index slices [B, H, W] or, with their neighbours, "
                f"[B, {self.label_slices}, H, W]; got shape {tuple(labels.shape)}."
            )
        if labels.is_floating_point():
            if not torch.equal(labels, labels.round()):
                raise InputError("Label maps must hold class indices (whole numbers); these have fractions.")
        labels = labels.long()
        self.check_spatial(labels.shape[-2], labels.shape[-1], "A label map")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.num_classes:
            raise InputError(
                f"The label map holds class index {high if high >= self.num_classes else low}, but this model knows "
                f"{self.num_classes} classes (0..{self.num_classes - 1}: {', '.join(self.class_names)}). "
                "Map the segmentation's labels to these classes by name first."
            )
        return labels.to(self.device)

    def centre_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """The slice being generated, [B, H, W], of [B, H, W] or [B, S, H, W] labels."""
        return labels if labels.ndim == 3 else labels[:, labels.shape[1] // 2]

    def one_hot(self, labels: torch.Tensor) -> torch.Tensor:
        """Class indices [B, H, W] or [B, S, H, W] -> one-hot float [B, S * C, H, W] (slice-major)."""
        if labels.ndim == 3:
            labels = labels[:, None]
        one_hot = nn.functional.one_hot(labels, self.num_classes).permute(0, 1, 4, 2, 3).float()
        return one_hot.reshape(labels.shape[0], -1, *labels.shape[-2:])

    def noise_shape(self, batch: int, height: int, width: int) -> tuple[int, ...]:
        raise NotImplementedError

    def generate(self, labels: torch.Tensor, generator: torch.Generator | None = None,
                 noise: torch.Tensor | None = None, steps: int | None = None,
                 guidance: float | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _noise(self, labels: torch.Tensor, generator: torch.Generator | None, noise: torch.Tensor | None) -> torch.Tensor:
        shape = self.noise_shape(labels.shape[0], labels.shape[-2], labels.shape[-1])
        if noise is None:
            device = generator.device if generator is not None else torch.device("cpu")
            noise = torch.randn(shape, generator=generator, device=device)
        elif tuple(noise.shape) != shape:
            raise InputError(
                f"The noise for this {self.family} model and {labels.shape[0]} label map(s) of "
                f"{labels.shape[-2]}x{labels.shape[-1]} must have shape {shape}, got {tuple(noise.shape)}. "
                "Use model.noise_shape(batch, height, width)."
            )
        return noise.to(self.device, torch.float32)


class ImageToImageModel(MedSynthModel):
    """A model translating images in [-1, 1] (pix2pix, CycleGAN)."""

    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] != 1:
            raise InputError(f"Images must be [B, 1, H, W]; got shape {tuple(images.shape)}.")
        self.check_spatial(images.shape[-2], images.shape[-1], "An image")
        if not torch.isfinite(images).all():
            raise InputError("The images hold NaN or infinite values.")
        return images.to(self.device, torch.float32).clamp(-1.0, 1.0)

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
