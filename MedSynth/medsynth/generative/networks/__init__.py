"""The four model families, built from MONAI's parts (imported lazily: torch is optional)."""

from __future__ import annotations

FAMILIES = ("spade_gan", "semantic_diffusion", "pix2pix", "cyclegan")
LABEL_FAMILIES = ("spade_gan", "semantic_diffusion")


def model_class(family: str):
    """The model class of ``family`` (raises InputError for an unknown family)."""
    from medsynth.errors import InputError

    if family == "spade_gan":
        from medsynth.generative.networks.spade_gan import SpadeGan

        return SpadeGan
    if family == "semantic_diffusion":
        from medsynth.generative.networks.diffusion import SemanticDiffusion

        return SemanticDiffusion
    if family == "pix2pix":
        from medsynth.generative.networks.translation import Pix2Pix

        return Pix2Pix
    if family == "cyclegan":
        from medsynth.generative.networks.translation import CycleGan

        return CycleGan
    raise InputError(f"Unknown model family {family!r}; MedSynth offers {', '.join(FAMILIES)}.")


def build_model(family: str, hparams: dict, meta: dict):
    """Build a model of ``family`` from its hyper-parameters and the data's metadata.

    ``meta`` holds image_size, window, pixel_spacing_mm and (label-map families) class_names.
    """
    from medsynth.errors import InputError

    cls = model_class(family)
    try:
        common = {"image_size": meta["image_size"], "window": meta["window"],
                  "pixel_spacing_mm": meta.get("pixel_spacing_mm")}
        if family in LABEL_FAMILIES:
            common["class_names"] = meta["class_names"]
    except KeyError as missing:
        raise InputError(f"{family}: the model's metadata lacks {missing}.") from None
    return cls(**common, **dict(hparams or {}))
