"""Semantic diffusion: a SPADE-conditioned diffusion U-Net (MONAI) trained as a DDPM with label
dropout, sampled by MONAI's DDIM scheduler with classifier-free guidance (MONAI's inferer cannot
combine guidance with a label map, so the few lines that mix the two predictions are ours; each
step is the scheduler's). v-prediction keeps few-step sampling sharp: the velocity target stays
well scaled at every noise level, where an epsilon model's clean-image estimate is poor at high noise.

The noisy image enters the U-Net; the label map conditions it through SPADE layers. Dropping the
label map (an all-zero one-hot) for a fraction of training samples teaches the same network the
unconditional noise prediction that guidance needs.
"""

from __future__ import annotations

import numpy as np
import torch

from medsynth.errors import InputError
from medsynth.generative.networks.base import LabelToImageModel


class SemanticDiffusion(LabelToImageModel):
    """Label map -> image by DDIM sampling (any number of steps) with classifier-free guidance."""

    family = "semantic_diffusion"
    DEFAULTS = {
        "channels": [32, 64, 64],
        "attention_levels": [False, False, True],
        "num_res_blocks": 1,
        "norm_num_groups": 16,
        "num_head_channels": 32,
        "spade_hidden": 32,
        "train_timesteps": 1000,
        "beta_schedule": "linear_beta",
        "label_dropout": 0.2,
        "prediction": "epsilon",  # what the U-Net predicts: epsilon (noise, as SDM), v (velocity) or sample (x0)
        "default_steps": 50,
        "default_guidance": 1.5,
        "context_slices": 0,  # 2.5D: neighbouring label slices per side the U-Net is also conditioned on
    }

    def __init__(self, class_names, image_size, window, pixel_spacing_mm=None, **hparams) -> None:
        params = {**self.DEFAULTS, **hparams}
        unknown = set(params) - set(self.DEFAULTS)
        if unknown:
            raise InputError(
                f"semantic_diffusion: unknown model settings {sorted(unknown)}; known: {sorted(self.DEFAULTS)}."
            )
        if params["prediction"] not in ("epsilon", "v", "sample"):
            raise InputError(f"semantic_diffusion: prediction must be epsilon, v or sample, got {params['prediction']!r}.")
        if len(params["attention_levels"]) != len(params["channels"]):
            raise InputError("semantic_diffusion: 'attention_levels' needs one entry per entry of 'channels'.")
        self.size_multiple = 2 ** (len(params["channels"]) - 1)
        super().__init__(class_names, image_size, window, pixel_spacing_mm, params)
        from monai.networks.nets import SPADEDiffusionModelUNet
        from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

        # MONAI reverses 'channels' in place: hand it copies so our settings stay as given.
        self.unet = SPADEDiffusionModelUNet(
            spatial_dims=2, in_channels=1, out_channels=1, label_nc=self.cond_channels,
            channels=list(params["channels"]), attention_levels=list(params["attention_levels"]),
            num_res_blocks=int(params["num_res_blocks"]), norm_num_groups=int(params["norm_num_groups"]),
            num_head_channels=int(params["num_head_channels"]),
            spade_intermediate_channels=int(params["spade_hidden"]),
        )
        self.scheduler = DDPMScheduler(num_train_timesteps=int(params["train_timesteps"]),
                                       schedule=str(params["beta_schedule"]))
        self.sampler = DDIMScheduler(num_train_timesteps=int(params["train_timesteps"]),
                                     schedule=str(params["beta_schedule"]), clip_sample=True,
                                     prediction_type={"epsilon": "epsilon", "v": "v_prediction",
                                                      "sample": "sample"}[params["prediction"]])
        self.register_buffer("alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False)

    @property
    def train_timesteps(self) -> int:
        return int(self.hparams["train_timesteps"])

    def noise_shape(self, batch: int, height: int, width: int) -> tuple[int, ...]:
        """The starting noise image x_T: keep it fixed between slices for consistent neighbours."""
        return (batch, 1, height, width)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        """The U-Net's raw prediction (noise, velocity or clean image: ``prediction``) for noisy ``x``."""
        return self.unet(x, timesteps, seg=one_hot)

    def training_target(self, clean: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What the U-Net learns to output for ``clean`` images noised with ``noise`` at ``timesteps``."""
        kind = self.hparams["prediction"]
        if kind == "epsilon":
            return noise
        if kind == "sample":
            return clean
        alpha = self.alphas_cumprod.to(clean.device)[timesteps].view(-1, 1, 1, 1)
        return alpha.sqrt() * noise - (1 - alpha).sqrt() * clean

    def guided_output(self, x: torch.Tensor, t: int, one_hot: torch.Tensor, guidance: float) -> torch.Tensor:
        """The U-Net output with classifier-free guidance (linear in the output, whatever it predicts)."""
        timesteps = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        if guidance == 1.0:
            return self(x, timesteps, one_hot)
        both = self(torch.cat([x, x]), torch.cat([timesteps, timesteps]),
                    torch.cat([one_hot, torch.zeros_like(one_hot)]))
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance * (conditional - unconditional)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """The ``steps`` time steps DDIM visits, noisiest first: every (T / steps)-th, ending at the cleanest.

        MONAI's DDIM step goes from t to t - T // steps, so the visited steps are spaced exactly
        that far apart ("trailing" spacing: the first is T - 1, pure noise).
        """
        if int(steps) < 1 or int(steps) > self.train_timesteps:
            raise InputError(f"DDIM steps must be between 1 and {self.train_timesteps}, got {steps}.")
        stride = self.train_timesteps // int(steps)
        return [self.train_timesteps - 1 - i * stride for i in range(int(steps))]

    @torch.no_grad()
    def generate(self, labels, generator=None, noise=None, steps=None, guidance=None, progress=None) -> torch.Tensor:
        """Class indices [B, H, W] (or [B, S, H, W] with neighbours) -> images [B, 1, H, W] in [-1, 1]
        by deterministic DDIM (eta = 0, MONAI's scheduler).

        ``guidance`` w mixes the predictions as out_uncond + w (out_cond - out_uncond): 1 is purely
        conditional, larger values follow the label map more strongly.
        """
        labels = self.check_labels(labels)
        steps = int(self.hparams["default_steps"] if steps is None else steps)
        guidance = float(self.hparams["default_guidance"] if guidance is None else guidance)
        if not np.isfinite(guidance) or guidance < 0:
            raise InputError(f"Guidance must be a finite number >= 0, got {guidance}.")
        x = self._noise(labels, generator, noise)
        one_hot = self.one_hot(labels)
        schedule = self.ddim_timesteps(steps)
        self.sampler.num_inference_steps = steps  # sets the stride of each step (t -> t - T // steps)
        self.sampler.alphas_cumprod = self.sampler.alphas_cumprod.to(x.device)
        self.sampler.final_alpha_cumprod = self.sampler.final_alpha_cumprod.to(x.device)
        for index, t in enumerate(schedule):
            output = self.guided_output(x, t, one_hot, guidance)
            x, _ = self.sampler.step(output, t, x)
            if progress is not None:
                progress((index + 1) / len(schedule), f"DDIM step {index + 1}/{len(schedule)}")
        return x.clamp(-1.0, 1.0)
