"""Image-to-image translation: pix2pix (paired) and CycleGAN (unpaired), from MONAI's U-Net and
PatchDiscriminator.

pix2pix turns a single-energy radiograph into its bone-only (or soft-tissue-only) image; CycleGAN
moves simulated radiographs toward real ones. Only the generators belong to the model; the
discriminators live in the trainer.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medsynth.errors import InputError
from medsynth.generative.networks.base import ImageToImageModel


def build_unet_generator(channels: Sequence[int], num_res_units: int) -> nn.Module:
    """A MONAI U-Net with instance norm and a linear output (clamped to [-1, 1] only when translating).

    No tanh: the U-Net's transposed convolutions start with periodic peaks that a tanh saturates,
    and saturated pixels get no gradient, so they would stay as a dot grid in the output.
    """
    from monai.networks.nets import UNet

    channels = list(channels)
    unet = UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=channels, strides=[2] * (len(channels) - 1),
                num_res_units=int(num_res_units), norm="INSTANCE")
    return nn.Sequential(unet)


def build_patch_discriminator(in_channels: int, channels: int, layers: int) -> nn.Module:
    """MONAI's PatchGAN (70x70 receptive field at 3 layers) with instance norm."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(spatial_dims=2, channels=int(channels), in_channels=in_channels,
                              num_layers_d=int(layers), norm="INSTANCE")


class _Translator(ImageToImageModel):
    DEFAULTS: dict = {}

    def _params(self, hparams: dict) -> dict:
        params = {**self.DEFAULTS, **hparams}
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"{self.family}: unknown model settings {sorted(unknown)}; known: {sorted(self.DEFAULTS)}.")
        self.size_multiple = 2 ** (len(params["channels"]) - 1)
        return params


class Pix2Pix(_Translator):
    """Paired translation (single-energy radiograph -> bone or soft-tissue image)."""

    family = "pix2pix"
    DEFAULTS = {"channels": [16, 32, 64, 128], "num_res_units": 1, "source": "single_energy", "target": "bone"}

    def __init__(self, image_size, window, pixel_spacing_mm=None, **hparams) -> None:
        params = self._params(hparams)
        super().__init__(image_size, window, pixel_spacing_mm, params)
        self.generator = build_unet_generator(params["channels"], params["num_res_units"])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images)

    @torch.no_grad()
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 1, H, W] in [-1, 1] (source domain) -> target domain, same shape."""
        return self.generator(self.check_images(images)).clamp(-1.0, 1.0)


class CycleGan(_Translator):
    """Unpaired translation between domain A (simulated) and B (real), both directions kept."""

    family = "cyclegan"
    DEFAULTS = {"channels": [16, 32, 64, 128], "num_res_units": 1, "domain_a": "simulated", "domain_b": "real"}

    def __init__(self, image_size, window, pixel_spacing_mm=None, **hparams) -> None:
        params = self._params(hparams)
        super().__init__(image_size, window, pixel_spacing_mm, params)
        self.generator_ab = build_unet_generator(params["channels"], params["num_res_units"])
        self.generator_ba = build_unet_generator(params["channels"], params["num_res_units"])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator_ab(images)

    @torch.no_grad()
    def translate(self, images: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """Images [B, 1, H, W] in [-1, 1]: "a2b" (simulated -> real, the default) or "b2a"."""
        images = self.check_images(images)
        if direction == "a2b":
            return self.generator_ab(images).clamp(-1.0, 1.0)
        if direction == "b2a":
            return self.generator_ba(images).clamp(-1.0, 1.0)
        raise InputError(f"CycleGAN direction must be 'a2b' or 'b2a', got {direction!r}.")
