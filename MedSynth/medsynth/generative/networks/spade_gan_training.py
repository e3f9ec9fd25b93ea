"""Training the SPADE/OASIS GAN: a segmentation (OASIS) or patch discriminator, adversarial and optional
L1 / boundary-weighted losses."""

from __future__ import annotations

from medsynth.errors import InputError
from medsynth.generative.pictures import label_picture, save_rows, unit_to_uint8
from medsynth.generative.trainer import FamilyTrainer, class_mean_error, image_metrics


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
