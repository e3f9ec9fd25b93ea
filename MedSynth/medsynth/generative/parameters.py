"""The label-map -> CT job's parameters, defined once for the module, CLI, batch script and web app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from medsynth.parameters import OneOf, Range

DEFAULT_MODEL = "spade-ct"


@dataclass
class SemanticParameters:
    """Which model, how segment names map to its classes, and how to sample."""

    model_id: Annotated[str, "registered model (medsynth models list)"] = DEFAULT_MODEL
    class_mapping: Annotated[str, "segment name=model class, ... (overrides name matching)"] = ""
    unknown_classes: Annotated[str, "'error', or the model class unknown segments are painted as"] = "error"
    steps: Annotated[int, Range(1, 1000), "diffusion sampling steps"] = 20
    guidance: Annotated[float, Range(0.0, 10.0), "classifier-free guidance scale (diffusion)"] = 1.5
    seed: Annotated[int, Range(0, 2**31 - 1), "random seed"] = 0
    maisi_bundle: Annotated[str, "MAISI only: your downloaded maisi_ct_generative bundle folder"] = ""
    maisi_preset: Annotated[str, OneOf(("16g_256x256x128", "16g_512x512x128", "24g_512x512x512", "80g_512x512x512")),
                            "MAISI only: output size / spacing preset for your GPU's memory"] = "16g_256x256x128"

    def mapping(self) -> dict[str, str]:
        """``class_mapping`` as a dict (checked)."""
        from medsynth.generative.class_mapping import parse_mapping

        return parse_mapping(self.class_mapping)
