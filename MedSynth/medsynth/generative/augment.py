"""Training-time augmentation of (CT slice, label slices) pairs: flips, small rotations, intensity jitter, crops.

A few hundred slices from a handful of patients are all the project can fetch; mirrored and
slightly rotated copies (the same transform for the image and every label slice) and small
global intensity changes (scanner calibration) keep a 256 x 256 model from memorising them. Random
crops train the fully convolutional networks on part of each slice (4x less work per step at half
the side) and they still generate whole slices.
Every draw comes from the caller's generator, so a resumed run augments exactly as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from medsynth.errors import InputError


@dataclass(frozen=True)
class Augmentation:
    flip: float = 0.0  # probability of a left-right mirror
    rotate_deg: float = 0.0  # rotation drawn uniformly in +-rotate_deg
    intensity_jitter: float = 0.0  # image * (1 + a) + b, a in +-jitter, b in +-jitter / 2 (units of [-1, 1])
    crop: int = 0  # > 0: a random crop x crop window of each slice (0: the whole slice)

    @classmethod
    def from_dict(cls, values: dict | None) -> "Augmentation":
        values = dict(values or {})
        unknown = set(values) - {"flip", "rotate_deg", "intensity_jitter", "crop"}
        if unknown:
            raise InputError(f"Unknown augmentation setting(s) {sorted(unknown)}; "
                             "known: flip, rotate_deg, intensity_jitter, crop.")
        augmentation = cls(**{k: int(v) if k == "crop" else float(v) for k, v in values.items()})
        if not 0.0 <= augmentation.flip <= 1.0:
            raise InputError(f"augment.flip is a probability in [0, 1], got {augmentation.flip}.")
        if not 0.0 <= augmentation.rotate_deg <= 45.0:
            raise InputError(f"augment.rotate_deg must be between 0 and 45 degrees, got {augmentation.rotate_deg}.")
        if not 0.0 <= augmentation.intensity_jitter <= 0.5:
            raise InputError(f"augment.intensity_jitter must be between 0 and 0.5, got {augmentation.intensity_jitter}.")
        if augmentation.crop < 0 or (augmentation.crop and augmentation.crop % 16):
            raise InputError(f"augment.crop must be 0 (off) or a multiple of 16 pixels, got {augmentation.crop}.")
        return augmentation

    @property
    def active(self) -> bool:
        return bool(self.flip or self.rotate_deg or self.intensity_jitter or self.crop)

    def __call__(self, images, labels, generator):
        """Augment images [B, 1, H, W] in [-1, 1] and class indices [B, H, W] or [B, S, H, W] alike."""
        import torch
        import torch.nn.functional as F

        if not self.active:
            return images, labels
        batch = images.shape[0]
        uniform = lambda: torch.rand(batch, generator=generator).to(images.device) * 2 - 1  # noqa: E731
        flip = (torch.rand(batch, generator=generator) < self.flip).to(images.device)
        angle = uniform() * math.radians(self.rotate_deg)
        scale, shift = uniform() * self.intensity_jitter, uniform() * self.intensity_jitter / 2
        sign = torch.where(flip, -1.0, 1.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        # output (x, y) -> input: rotation, then the mirror along x
        theta = torch.stack([torch.stack([cos * sign, -sin * sign, torch.zeros_like(cos)], 1),
                             torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        moved = F.grid_sample(images + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
        stacked = labels if labels.ndim == 4 else labels[:, None]
        moved_labels = F.grid_sample(stacked.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
        moved_labels = moved_labels.round().long()
        moved = (moved * (1 + scale.view(-1, 1, 1, 1)) + shift.view(-1, 1, 1, 1)).clamp(-1.0, 1.0)
        if self.crop and self.crop < min(images.shape[-2:]):
            rows = torch.randint(images.shape[-2] - self.crop + 1, (batch,), generator=generator).tolist()
            cols = torch.randint(images.shape[-1] - self.crop + 1, (batch,), generator=generator).tolist()
            moved = torch.stack([moved[i, :, r:r + self.crop, c:c + self.crop] for i, (r, c) in enumerate(zip(rows, cols))])
            moved_labels = torch.stack([moved_labels[i, :, r:r + self.crop, c:c + self.crop]
                                        for i, (r, c) in enumerate(zip(rows, cols))])
        if labels.ndim == 3:
            moved_labels = moved_labels[:, 0]
        return moved, moved_labels
