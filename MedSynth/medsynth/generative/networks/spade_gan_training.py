"""Training the SPADE/OASIS GAN: a segmentation (OASIS) or patch discriminator, adversarial and optional
L1 / boundary-weighted losses."""

from __future__ import annotations

import torch

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
        if self.train_cfg["feature_matching_weight"] and self.kind == "segmentation":
            raise InputError("spade_gan: feature_matching_weight needs a patch or multiscale discriminator "
                             "(discriminator: multiscale).")
        self.discriminator = build_discriminator(self.kind, model.num_classes, self.train_cfg["discriminator_channels"],
                                                 self.train_cfg["discriminator_scales"]).to(device)
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

    def _patch_outputs(self, image, centre_one_hot):
        """Per scale, the discriminator's [features..., logits] on image + the generated slice's one-hot labels."""
        outputs = self.discriminator(torch.cat([image, centre_one_hot], 1))
        return outputs if self.kind == "multiscale" else [outputs]

    def _adversarial(self, outputs, target_is_real: bool, for_discriminator: bool):
        return sum(self.adversarial(scale[-1], target_is_real, for_discriminator) for scale in outputs) / len(outputs)

    def train_step(self, batch, generator):
        from medsynth.generative.networks.spade_gan import boundary_map, class_balance_weights, feature_matching_loss

        labels, real = batch["labels"], batch["images"]
        centre = self.model.centre_labels(labels)
        one_hot = self.model.one_hot(labels)
        centre_one_hot = self.model.one_hot(centre)
        z = self._randn((labels.shape[0], self.model.z_dim), generator)
        fake = self.model(one_hot, z)
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]
        # discriminator
        opt_d.zero_grad(set_to_none=True)
        if self.kind == "segmentation":
            weights = class_balance_weights(centre, self.model.num_classes)
            loss_d = self._segmentation_loss(self.discriminator(real), centre + 1, weights) + \
                self._segmentation_loss(self.discriminator(fake.detach()), torch.zeros_like(centre), None)
        else:
            loss_d = 0.5 * (self._adversarial(self._patch_outputs(real, centre_one_hot), True, True)
                            + self._adversarial(self._patch_outputs(fake.detach(), centre_one_hot), False, True))
        loss_d.backward()
        opt_d.step()
        # generator
        opt_g.zero_grad(set_to_none=True)
        losses = {"loss_d": loss_d.item()}
        if self.kind == "segmentation":
            pixel_weights = None
            if self.train_cfg["mask_loss_weight"]:
                pixel_weights = 1.0 + self.train_cfg["mask_loss_weight"] * boundary_map(centre)
            loss_adv = self._segmentation_loss(self.discriminator(fake), centre + 1, weights, pixel_weights)
            loss_g = loss_adv
        else:
            fake_outputs = self._patch_outputs(fake, centre_one_hot)
            loss_adv = self._adversarial(fake_outputs, True, False)
            loss_g = loss_adv
            if self.train_cfg["feature_matching_weight"]:
                with torch.no_grad():
                    real_outputs = self._patch_outputs(real, centre_one_hot)
                loss_fm = feature_matching_loss(fake_outputs, real_outputs)
                loss_g = loss_g + self.train_cfg["feature_matching_weight"] * loss_fm
                losses["loss_g_fm"] = loss_fm.item()
        losses["loss_g_adv"] = loss_adv.item()
        if self.train_cfg["l1_weight"]:
            loss_l1 = (fake - real).abs().mean()
            loss_g = loss_g + self.train_cfg["l1_weight"] * loss_l1
            losses["loss_g_l1"] = loss_l1.item()
        loss_g.backward()
        opt_g.step()
        losses["loss_g"] = loss_g.item()
        return losses

    def generate_val(self, subset):
        generator = torch.Generator().manual_seed(int(self.train_cfg["seed"]) + 99)
        return self.export_model().generate(subset["labels"], generator)

    def validate(self, step, samples_dir):
        subset = self.val_subset()
        self.model.eval()
        fake = self.generate_val(subset)
        self.model.train()
        metrics = image_metrics(fake, subset["images"], self.window)
        centre = self.model.centre_labels(subset["labels"])
        metrics["class_mean_error"] = class_mean_error(fake, subset["images"], centre, self.window)
        if samples_dir is not None:
            rows = [[label_picture(centre[i].cpu().numpy()),
                     unit_to_uint8(fake[i, 0].cpu(), self.window), unit_to_uint8(subset["images"][i, 0].cpu(), self.window)]
                    for i in range(min(4, fake.shape[0]))]
            save_rows(rows, ["label map", "generated", "real"], samples_dir / f"step_{step:06d}.png")
        return metrics
