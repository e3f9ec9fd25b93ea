"""What to synthesize: tumor types with their published size and count ranges, and appearance options.

Sizes are semi-axes in millimetres (Hu et al., CVPR 2023). "mix" places every type in one case.
A free size (``diameter_mm``) overrides the type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from medsynth.errors import InputError


@dataclass(frozen=True)
class TumorType:
    """Published ranges of one tumor type (inclusive)."""

    name: str
    count: tuple[int, int]  # tumors per case
    semi_axes_mm: tuple[float, float]  # each semi-axis drawn independently
    deformation_mm: tuple[float, float]  # how far the outline wanders from the ellipsoid


TUMOR_TYPES: dict[str, TumorType] = {
    "tiny": TumorType("tiny", (3, 10), (3.0, 5.0), (0.5, 1.0)),
    "small": TumorType("small", (3, 10), (6.0, 10.0), (1.0, 2.0)),
    "medium": TumorType("medium", (2, 5), (12.0, 20.0), (3.0, 6.0)),
    "large": TumorType("large", (1, 3), (24.0, 40.0), (5.0, 10.0)),
}

#: Counts of each type in a "mix" case.
MIX_COUNTS: dict[str, tuple[int, int]] = {"tiny": (3, 10), "small": (5, 10), "medium": (2, 5), "large": (1, 3)}

KINDS = tuple(TUMOR_TYPES) + ("mix",)
DENSITIES = ("hypo", "iso", "hyper")
#: Organs tumors are synthesised in (TotalSegmentator names: liver, pancreas, kidney_left/right).
ORGANS = ("liver", "pancreas", "kidney")
#: Contrast phases: they change how tumor and parenchyma relate (docs/tumors.md).
CONTRAST_PHASES = ("portal_venous", "arterial", "non_contrast")
#: Lesions of each organ (the first is the organ's default); docs/tumors.md gives their sources.
LESIONS = {"liver": ("lesion",), "pancreas": ("adenocarcinoma",), "kidney": ("rcc", "cyst")}


@dataclass
class Appearance:
    """How a tumor looks, relative to the organ's parenchyma around it.

    ``None`` values are drawn per tumor from realistic ranges with the caller's generator.
    """

    density: str = "hypo"  # hypo-, iso- or hyperdense to the parenchyma
    contrast_hu: float | None = None  # |tumor - parenchyma| in HU; default scales with the liver's HU
    texture_std_hu: float | None = None  # heterogeneity added on top of the scan's own noise
    edge_mm: float | None = None  # half-width of the soft edge
    capsule: bool = False  # brighter rim (typical of hepatocellular carcinoma)
    mass_effect: bool = False  # push surrounding parenchyma and vessels outward
    necrosis: bool = False  # fluid-like core in medium and large tumors
    keep_vessels: bool = False  # leave vessels visible through the tumor
    lesion: str | None = None  # the organ's lesion type (LESIONS); None: the organ's default
    duct_dilation: bool = False  # pancreas: dilated main duct upstream of the tumor (towards the tail)

    def validate(self) -> None:
        if self.density not in DENSITIES:
            raise InputError(f"Unknown tumor density {self.density!r}: choose one of {', '.join(DENSITIES)}.")
        if self.contrast_hu is not None and not 0 <= self.contrast_hu <= 300:
            raise InputError(f"contrast_hu {self.contrast_hu} is outside 0..300 HU.")
        if self.texture_std_hu is not None and not 0 <= self.texture_std_hu <= 100:
            raise InputError(f"texture_std_hu {self.texture_std_hu} is outside 0..100 HU.")
        if self.edge_mm is not None and not 0.1 <= self.edge_mm <= 10:
            raise InputError(f"edge_mm {self.edge_mm} is outside 0.1..10 mm.")


@dataclass
class TumorSpec:
    """One synthesis request: the tumor type or a free diameter, how many, and how they look."""

    kind: str = "mix"  # tiny, small, medium, large or mix
    diameter_mm: float | None = None  # free size: overrides kind's size range
    count: int | None = None  # default: drawn from the type's published range (1 for a free size)
    appearance: Appearance = field(default_factory=Appearance)
    allow_overlap: bool = False  # tumors may touch or overlap each other
    surface_margin_mm: float = 2.0  # minimal distance kept from the liver surface
    max_vessel_fraction: float = 0.03  # random placement re-draws above this share of vessel voxels
    organ: str = "liver"  # liver, pancreas or kidney
    contrast_phase: str = "portal_venous"  # portal_venous, arterial or non_contrast

    def validate(self) -> None:
        if self.organ not in ORGANS:
            raise InputError(f"Unknown organ {self.organ!r}: choose one of {', '.join(ORGANS)}.")
        if self.contrast_phase not in CONTRAST_PHASES:
            raise InputError(f"Unknown contrast phase {self.contrast_phase!r}: choose one of "
                             f"{', '.join(CONTRAST_PHASES)}.")
        lesion = self.appearance.lesion
        if lesion is not None and lesion not in LESIONS[self.organ]:
            raise InputError(f"A {self.organ} has no lesion type {lesion!r}: choose one of "
                             f"{', '.join(LESIONS[self.organ])}.")
        if self.appearance.duct_dilation and self.organ != "pancreas":
            raise InputError("Duct dilation is a pancreas feature: choose --organ pancreas or drop it.")
        if self.kind not in KINDS:
            raise InputError(f"Unknown tumor type {self.kind!r}: choose one of {', '.join(KINDS)}.")
        if self.diameter_mm is not None and not 2.0 <= self.diameter_mm <= 150.0:
            raise InputError(f"Tumor diameter {self.diameter_mm} mm is outside 2..150 mm.")
        if self.count is not None and not 1 <= self.count <= 100:
            raise InputError(f"Tumor count {self.count} is outside 1..100.")
        if not 0 <= self.surface_margin_mm <= 20:
            raise InputError(f"surface_margin_mm {self.surface_margin_mm} is outside 0..20 mm.")
        self.appearance.validate()

    def to_dict(self) -> dict:
        return asdict(self)


def planned_types(spec: TumorSpec, rng, clicked: bool) -> list[str]:
    """The type name of each tumor to make, drawn with ``rng`` ("custom" for a free diameter)."""
    if spec.diameter_mm is not None:
        return ["custom"] * (1 if clicked else (spec.count or 1))
    if clicked:
        if spec.kind == "mix":
            return [str(rng.choice(list(TUMOR_TYPES)))]
        return [spec.kind]
    if spec.kind == "mix":
        if spec.count is not None:
            return [str(name) for name in rng.choice(list(TUMOR_TYPES), size=spec.count)]
        plan: list[str] = []
        for name, (low, high) in MIX_COUNTS.items():
            plan += [name] * int(rng.integers(low, high + 1))
        return plan
    low, high = TUMOR_TYPES[spec.kind].count
    return [spec.kind] * (spec.count or int(rng.integers(low, high + 1)))
