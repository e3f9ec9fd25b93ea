"""Training the semantic diffusion model: noise-level regression (epsilon, v or x0) with label dropout
for classifier-free guidance, an optional EMA copy, DDIM samples for validation."""

from __future__ import annotations

import copy

from medsynth.generative.pictures import label_picture, save_rows, unit_to_uint8
from medsynth.generative.trainer import FamilyTrainer, class_mean_error, image_metrics


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
        centre = model.centre_labels(subset["labels"])
        metrics["class_mean_error"] = class_mean_error(fake, subset["images"], centre, self.window)
        if samples_dir is not None:
            rows = [[label_picture(centre[i].cpu().numpy()),
                     unit_to_uint8(fake[i, 0].cpu(), self.window), unit_to_uint8(subset["images"][i, 0].cpu(), self.window)]
                    for i in range(min(4, fake.shape[0]))]
            save_rows(rows, ["label map", f"DDIM {self.train_cfg['val_steps']} steps", "real"],
                      samples_dir / f"step_{step:06d}.png")
        return metrics
