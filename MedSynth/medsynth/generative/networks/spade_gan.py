"""SPADE/OASIS-style GAN: label map + noise -> image, from MONAI's SPADE normalisation blocks.

The generator concatenates a noise code to the one-hot label map (as OASIS does) and feeds that to
every SPADE layer, so resampling the noise gives many images per label map; a 2.5D model also
sees the neighbouring label slices (``context_slices``), so slices generated one by one agree in
coronal and sagittal views. Three discriminators: OASIS's segmentation discriminator (a MONAI
U-Net predicting N+1 classes, "fake" being class 0), a patch discriminator (MONAI's
PatchDiscriminator on image + label map), or pix2pixHD's multi-scale one (patch discriminators on
the image at full, 1/2, 1/4 ... resolution) whose intermediate features drive a feature-matching loss.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from medsynth.errors import InputError
from medsynth.generative.networks.base import LabelToImageModel


class SpadeResBlock(nn.Module):
    """Residual block whose two normalisations are SPADE layers driven by the label map (+ noise)."""

    def __init__(self, in_channels: int, out_channels: int, cond_channels: int, hidden: int) -> None:
        super().__init__()
        from monai.networks.blocks import Convolution
        from monai.networks.blocks.spade_norm import SPADE

        middle = min(in_channels, out_channels)
        self.norm_0 = SPADE(cond_channels, in_channels, hidden_channels=hidden, spatial_dims=2, norm="INSTANCE")
        self.conv_0 = Convolution(2, in_channels, middle, kernel_size=3, conv_only=True)
        self.norm_1 = SPADE(cond_channels, middle, hidden_channels=hidden, spatial_dims=2, norm="INSTANCE")
        self.conv_1 = Convolution(2, middle, out_channels, kernel_size=3, conv_only=True)
        self.shortcut_norm = None
        if in_channels != out_channels:
            self.shortcut_norm = SPADE(cond_channels, in_channels, hidden_channels=hidden, spatial_dims=2,
                                       norm="INSTANCE")
            self.shortcut_conv = Convolution(2, in_channels, out_channels, kernel_size=1, conv_only=True, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut_norm is None else self.shortcut_conv(self.shortcut_norm(x, cond))
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, cond), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, cond), 0.2))
        return shortcut + dx


class SpadeGenerator(nn.Module):
    """Starts from the down-sampled label map + noise and up-samples through SPADE residual blocks."""

    def __init__(self, cond_channels: int, z_dim: int, channels: Sequence[int], spade_hidden: int) -> None:
        super().__init__()
        from monai.networks.blocks import Convolution

        channels = list(channels)
        if len(channels) < 2:
            raise InputError("spade_gan: 'channels' needs at least two entries (e.g. [64, 64, 32, 16]).")
        self.upsamplings = len(channels) - 2
        cond = cond_channels + z_dim
        self.head = Convolution(2, cond, channels[0], kernel_size=3, conv_only=True)
        self.blocks = nn.ModuleList(
            SpadeResBlock(channels[i], channels[i + 1], cond, spade_hidden) for i in range(len(channels) - 1)
        )
        self.tail = Convolution(2, channels[-1], 1, kernel_size=3, conv_only=True)

    def forward(self, one_hot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        height, width = one_hot.shape[-2:]
        if z.ndim == 2:
            z = z[:, :, None, None].expand(-1, -1, height, width)
        cond = torch.cat([one_hot, z], dim=1)
        factor = 2 ** self.upsamplings
        x = self.head(F.interpolate(cond, size=(height // factor, width // factor), mode="nearest"))
        for index, block in enumerate(self.blocks):
            x = block(x, cond)
            if index < self.upsamplings:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.tail(F.leaky_relu(x, 0.2)))


class SpadeGan(LabelToImageModel):
    """Label map -> CT slice. ``generate`` draws a noise code per image unless ``noise`` is given."""

    family = "spade_gan"
    DEFAULTS = {"z_dim": 16, "channels": [64, 64, 32, 16], "spade_hidden": 32, "context_slices": 0}

    def __init__(self, class_names, image_size, window, pixel_spacing_mm=None, **hparams) -> None:
        params = {**self.DEFAULTS, **hparams}
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise InputError(f"spade_gan: unknown model settings {sorted(unknown)}; known: {sorted(self.DEFAULTS)}.")
        self.size_multiple = 2 ** (len(params["channels"]) - 2)
        super().__init__(class_names, image_size, window, pixel_spacing_mm, params)
        self.z_dim = int(params["z_dim"])
        self.generator = SpadeGenerator(self.cond_channels, self.z_dim, params["channels"], int(params["spade_hidden"]))

    def noise_shape(self, batch: int, height: int, width: int) -> tuple[int, ...]:
        """One noise code per image (spatially constant): keep it fixed to keep neighbouring slices alike."""
        return (batch, self.z_dim)

    def forward(self, one_hot: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.generator(one_hot, z)

    @torch.no_grad()
    def generate(self, labels, generator=None, noise=None, steps=None, guidance=None) -> torch.Tensor:
        """Class indices [B, H, W] (or [B, S, H, W] with neighbours) -> images [B, 1, H, W] in [-1, 1].

        ``steps``/``guidance`` do not apply.
        """
        labels = self.check_labels(labels)
        z = self._noise(labels, generator, noise)
        return self.generator(self.one_hot(labels), z)


class MultiScaleDiscriminator(nn.Module):
    """pix2pixHD's discriminator: one MONAI PatchDiscriminator per scale, each on a 2x smaller input.

    Returns, per scale, the list of its intermediate feature maps and its patch logits last (MONAI's
    convention), so the generator can match features of real and generated images at every scale.
    """

    def __init__(self, in_channels: int, channels: int, scales: int = 2, layers: int = 3) -> None:
        super().__init__()
        from monai.networks.nets import PatchDiscriminator

        self.scales = nn.ModuleList(
            PatchDiscriminator(spatial_dims=2, channels=channels, in_channels=in_channels, num_layers_d=layers,
                               norm="INSTANCE") for _ in range(int(scales)))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for index, discriminator in enumerate(self.scales):
            if index:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 distance of the discriminators' intermediate features (logits excluded), over scales and layers."""
    terms = [(f - r.detach()).abs().mean() for fake_scale, real_scale in zip(fake, real)
             for f, r in zip(fake_scale[:-1], real_scale[:-1])]
    return torch.stack(terms).mean()


def build_discriminator(kind: str, num_classes: int, channels: Sequence[int] | int, scales: int = 2) -> nn.Module:
    """OASIS's segmentation discriminator ("segmentation", N+1 outputs), a patch discriminator ("patch")
    or a multi-scale patch discriminator ("multiscale", ``scales`` of them) on image + label map."""
    if kind == "segmentation":
        from monai.networks.nets import UNet

        channels = list(channels) if not isinstance(channels, int) else [channels * 2 ** i for i in range(4)]
        return UNet(spatial_dims=2, in_channels=1, out_channels=num_classes + 1, channels=channels,
                    strides=[2] * (len(channels) - 1), num_res_units=1, norm="INSTANCE", act=("LEAKYRELU", {"negative_slope": 0.2}))
    if kind == "patch":
        from monai.networks.nets import PatchDiscriminator

        base = channels if isinstance(channels, int) else int(list(channels)[0])
        return PatchDiscriminator(spatial_dims=2, channels=base, in_channels=1 + num_classes, num_layers_d=3,
                                  norm="INSTANCE")
    if kind == "multiscale":
        base = channels if isinstance(channels, int) else int(list(channels)[0])
        return MultiScaleDiscriminator(1 + num_classes, base, scales)
    raise InputError("spade_gan: discriminator must be 'segmentation' (OASIS, N+1 classes), 'patch' or 'multiscale', "
                     f"got {kind!r}.")


def class_balance_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """OASIS's class balancing: each present class weighs inversely to its pixel count (+ the fake class)."""
    counts = torch.bincount(labels.flatten(), minlength=num_classes).float()
    weights = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return torch.cat([torch.ones(1, device=labels.device), weights])


def boundary_map(labels: torch.Tensor) -> torch.Tensor:
    """1 on pixels whose 3x3 neighbourhood holds another class (organ boundaries), else 0."""
    x = labels[:, None].float()
    high = F.max_pool2d(x, 3, stride=1, padding=1)
    low = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return (high != low).float()[:, 0]
