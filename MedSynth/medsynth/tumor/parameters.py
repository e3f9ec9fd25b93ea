"""The tumor job's parameters, defined once for the module, CLI, batch script, recipes and web app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from medsynth.parameters import OneOf, Range
from medsynth.tumor.spec import CONTRAST_PHASES, DENSITIES, LESIONS, ORGANS, Appearance, TumorSpec

#: Tumor types offered to users; "custom" means a free diameter (``diameter_mm``).
TUMOR_TYPE_CHOICES = ("medium", "tiny", "small", "large", "mix", "custom")
#: Lesion types of all organs; "default" is the organ's own default (LESIONS).
LESION_CHOICES = ("default",) + tuple(sorted({name for names in LESIONS.values() for name in names}))
SEED_RANGE = Range(0, 2**31 - 1)


@dataclass
class TumorParameters:
    """What to paint: organ, tumor type or free size, count, appearance and the seed."""

    organ: Annotated[str, OneOf(ORGANS), "organ the tumors grow in"] = "liver"
    tumor_type: Annotated[str, OneOf(TUMOR_TYPE_CHOICES), "published size class, or custom"] = "medium"
    diameter_mm: Annotated[float, Range(2.0, 150.0), "diameter of a custom tumor, mm"] = 30.0
    count: Annotated[int, Range(0, 100), "tumors per case (0: the type's published range)"] = 0
    density: Annotated[str, OneOf(DENSITIES), "relative to the parenchyma"] = "hypo"
    contrast_phase: Annotated[str, OneOf(CONTRAST_PHASES), "contrast phase of the scan"] = "portal_venous"
    capsule: Annotated[bool, "brighter rim"] = False
    mass_effect: Annotated[bool, "push the parenchyma outward"] = False
    necrosis: Annotated[bool, "fluid-like core in larger tumors"] = False
    keep_vessels: Annotated[bool, "vessels stay visible through the tumor"] = False
    lesion: Annotated[str, OneOf(LESION_CHOICES), "lesion type (default: the organ's usual one)"] = "default"
    duct_dilation: Annotated[bool, "pancreas: dilated duct upstream of the tumor"] = False
    allow_overlap: Annotated[bool, "tumors may touch each other"] = False
    seed: Annotated[int, SEED_RANGE, "random seed"] = 0

    def to_spec(self) -> TumorSpec:
        """The engine's TumorSpec (checked)."""
        appearance = Appearance(density=self.density, capsule=self.capsule, mass_effect=self.mass_effect,
                                necrosis=self.necrosis, keep_vessels=self.keep_vessels,
                                lesion=None if self.lesion == "default" else self.lesion,
                                duct_dilation=self.duct_dilation and self.organ == "pancreas")
        custom = self.tumor_type == "custom"
        spec = TumorSpec(kind="mix" if custom else self.tumor_type,
                         diameter_mm=float(self.diameter_mm) if custom else None,
                         count=int(self.count) or None, appearance=appearance, allow_overlap=self.allow_overlap,
                         organ=self.organ, contrast_phase=self.contrast_phase)
        spec.validate()
        return spec
