"""Training the image-to-image families: pix2pix (patch discriminator + L1) and CycleGAN (two generators,
two patch discriminators, cycle and identity losses)."""

from __future__ import annotations

import numpy as np

from medsynth.generative.intensity import IntensityWindow
from medsynth.generative.pictures import save_rows, unit_to_uint8
from medsynth.generative.trainer import FamilyTrainer, image_metrics


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
