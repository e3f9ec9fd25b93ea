"""How each organ's lesions look in each contrast phase: the ranges the engine draws from.

The values are MedSynth's choices guided by the imaging literature listed in docs/tumors.md
(keys in ``source``): pancreatic adenocarcinoma is hypoattenuating and ill-defined, most
conspicuous in the pancreatic (late arterial) phase and often near-isoattenuating without
contrast; clear-cell renal cell carcinoma enhances strongly but heterogeneously, below the
cortex in the corticomedullary phase and clearly below the parenchyma in the nephrographic
(portal venous) phase; a simple renal cyst is near water (Bosniak 2019: -9..20 HU) with a thin,
sharp wall in every phase. The liver keeps its own rules (``appearance.draw_liver_contrast``),
scaled per phase.
"""

from __future__ import annotations

from dataclasses import dataclass

from medsynth.errors import InputError


@dataclass(frozen=True)
class LesionProfile:
    """Ranges (low, high) one lesion type is drawn from in one organ and phase."""

    contrast_hu: tuple[float, float] | None  # tumor minus parenchyma (None: use absolute_hu)
    texture_std_hu: tuple[float, float]
    edge_mm: tuple[float, float]
    absolute_hu: tuple[float, float] | None = None  # fluid lesions: their HU whatever the parenchyma
    irregularity: float = 1.0  # multiplies the outline's wander (>1: irregular, <1: round)
    necrosis_chance: float = 0.0  # chance of a fluid core in tumors of 8 mm radius or more
    source: str = ""


_PDAC = "prokesch2002, lu1996, alhawary2014"
_RCC = "kim2002, young2013"
_CYST = "silverman2019"

PROFILES: dict[tuple[str, str, str], LesionProfile] = {
    ("pancreas", "adenocarcinoma", "arterial"): LesionProfile((-75.0, -35.0), (6.0, 14.0), (1.2, 2.5), irregularity=1.8,
                                                              source=_PDAC),
    ("pancreas", "adenocarcinoma", "portal_venous"): LesionProfile((-55.0, -20.0), (6.0, 12.0), (1.2, 2.5),
                                                                   irregularity=1.8, source=_PDAC),
    ("pancreas", "adenocarcinoma", "non_contrast"): LesionProfile((-18.0, -5.0), (4.0, 9.0), (1.5, 3.0),
                                                                  irregularity=1.8, source=_PDAC),
    ("kidney", "rcc", "arterial"): LesionProfile((-70.0, -10.0), (18.0, 40.0), (0.8, 1.6), necrosis_chance=0.5,
                                                 source=_RCC),
    ("kidney", "rcc", "portal_venous"): LesionProfile((-100.0, -40.0), (14.0, 30.0), (0.8, 1.6), necrosis_chance=0.5,
                                                      source=_RCC),
    ("kidney", "rcc", "non_contrast"): LesionProfile((-12.0, 5.0), (5.0, 12.0), (0.8, 1.6), necrosis_chance=0.5,
                                                     source=_RCC),
    **{("kidney", "cyst", phase): LesionProfile(None, (0.5, 2.5), (0.25, 0.5), absolute_hu=(0.0, 15.0),
                                                irregularity=0.25, source=_CYST)
       for phase in ("arterial", "portal_venous", "non_contrast")},
}

#: Liver contrast per phase, as a factor on the portal-venous magnitude (hypo, hyper): hypovascular
#: lesions are most conspicuous in the portal venous phase and faint without contrast; hypervascular
#: ones (HCC) stand out in the arterial phase (LI-RADS 2018: arterial phase hyperenhancement).
LIVER_PHASE_FACTORS: dict[str, tuple[float, float]] = {
    "portal_venous": (1.0, 1.0), "arterial": (0.7, 1.4), "non_contrast": (0.35, 0.3)}

def lesion_name(organ: str, lesion: str | None) -> str:
    """The lesion type, the organ's default when None."""
    from medsynth.tumor.spec import LESIONS

    if organ not in LESIONS:
        raise InputError(f"Unknown organ {organ!r}: choose one of {', '.join(LESIONS)}.")
    return lesion or LESIONS[organ][0]


def profile(organ: str, lesion: str | None, phase: str) -> LesionProfile | None:
    """The profile of a lesion; None for the liver (its rules scale with its own HU)."""
    if organ == "liver":
        return None
    key = (organ, lesion_name(organ, lesion), phase)
    if key not in PROFILES:
        raise InputError(f"No appearance profile for a {key[1]} in the {organ} in the {phase} phase.")
    return PROFILES[key]
