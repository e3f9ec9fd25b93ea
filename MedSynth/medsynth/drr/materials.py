"""Materials: elemental compositions, NIST mass attenuation, and how voxels are assigned to them.

Voxels get a material either from HU thresholds (DeepDRR's default: air <= -800 < soft tissue <= 350
< bone) or from a label map whose label names the user maps to materials (unmapped voxels fall back
to the thresholds). Mass attenuation mu/rho(E) comes from the NIST/Elam tables shipped with the
package (``medsynth.drr.attenuation``; total, coherent scattering included), mixed by mass fraction.

Compositions (mass fractions) are ICRU Report 44's for tissues. "contrast" is soft tissue holding
1.5 % iodine by mass (about 16 mg I/mL, an arterial phase); "metal" is titanium (implants).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

import numpy as np

from medsynth.errors import InputError

#: At most 8 materials per projection: the voxel's material travels in 3 spare bits of its density.
MAX_MATERIALS = 8


@dataclass(frozen=True)
class Material:
    name: str
    composition: tuple[tuple[str, float], ...]  # (element, mass fraction)
    density: float  # nominal g/cm^3 (the projector uses each voxel's own density from HU)
    description: str = ""

    def mass_attenuation(self, energies_keV: np.ndarray) -> np.ndarray:
        """mu/rho in cm^2/g at the given energies (keV)."""
        return _mixture_attenuation(self.composition, tuple(np.asarray(energies_keV, dtype=float).ravel()))


def _frac(**fractions_percent: float) -> tuple[tuple[str, float], ...]:
    total = sum(fractions_percent.values())
    return tuple((element, value / total) for element, value in fractions_percent.items())


_SOFT = dict(H=10.2, C=14.3, N=3.4, O=70.8, Na=0.2, P=0.3, S=0.3, Cl=0.2, K=0.3)

MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("air", _frac(C=0.0124, N=75.5268, O=23.1781, Ar=1.2827), 0.001205, "dry air, near sea level"),
        Material("soft_tissue", _frac(**_SOFT), 1.06, "ICRU-44 soft tissue"),
        Material("bone", _frac(H=3.4, C=15.5, N=4.2, O=43.5, Na=0.1, Mg=0.2, P=10.3, S=0.3, Ca=22.5), 1.92,
                 "ICRU-44 cortical bone"),
        Material("lung", _frac(H=10.3, C=10.5, N=3.1, O=74.9, Na=0.2, P=0.2, S=0.3, Cl=0.3, K=0.2), 1.05,
                 "ICRU-44 lung tissue (the density comes from HU)"),
        Material("fat", _frac(H=11.4, C=59.8, N=0.7, O=27.8, Na=0.1, S=0.1, Cl=0.1), 0.95, "ICRU-44 adipose tissue"),
        Material("water", _frac(H=11.19, O=88.81), 1.0, "liquid water"),
        Material("contrast", _frac(**{k: v * 0.985 for k, v in _SOFT.items()}, I=1.5), 1.07,
                 "iodinated contrast in blood: soft tissue with 1.5 % iodine by mass"),
        Material("metal", (("Ti", 1.0),), 4.51, "titanium (implants)"),
    )
}


@lru_cache(maxsize=256)
def _mixture_attenuation(composition: tuple[tuple[str, float], ...], energies_keV: tuple[float, ...]) -> np.ndarray:
    energies = np.asarray(energies_keV, dtype=float)
    total = np.zeros_like(energies)
    for element, fraction in composition:
        total += fraction * element_mass_attenuation(element, energies)
    total.setflags(write=False)
    return total


def element_mass_attenuation(element: str, energies_keV: np.ndarray) -> np.ndarray:
    """mu/rho (cm^2/g) of one element from the shipped Elam tables."""
    from medsynth.drr import attenuation

    return attenuation.element_mass_attenuation(element, energies_keV)


def material(name: str) -> Material:
    key = str(name).strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {"soft": "soft_tissue", "tissue": "soft_tissue", "adipose": "fat", "iodine": "contrast",
               "titanium": "metal", "cortical_bone": "bone"}
    key = aliases.get(key, key)
    if key not in MATERIALS:
        raise InputError(f"Unknown material {name!r}. Known materials: {', '.join(MATERIALS)}.")
    return MATERIALS[key]


@dataclass(frozen=True)
class HUThresholds:
    """Materials by HU intervals: ``bounds`` are (upper HU bound, material) in increasing order."""

    bounds: tuple[tuple[float, str], ...] = ((-800.0, "air"), (350.0, "soft_tissue"), (math.inf, "bone"))

    def __post_init__(self) -> None:
        uppers = [float(b[0]) for b in self.bounds]
        if not self.bounds or uppers != sorted(uppers) or uppers[-1] != math.inf:
            raise InputError(
                "HU thresholds must be (upper HU, material) pairs in increasing order, the last one with "
                "upper bound inf, e.g. ((-800, 'air'), (350, 'soft_tissue'), (inf, 'bone'))."
            )
        for _, name in self.bounds:
            material(name)

    @property
    def material_names(self) -> list[str]:
        return list(dict.fromkeys(material(name).name for _, name in self.bounds))


@dataclass
class LabelMaterials:
    """Materials from a label map: ``mapping`` maps label names (glob patterns like "rib_*", or
    label values) to material names; voxels of unmapped labels (and background) use ``fallback``."""

    labels: "object"  # medsynth LabelMap
    mapping: Mapping[str | int, str]
    fallback: HUThresholds = field(default_factory=HUThresholds)

    def label_lut(self) -> tuple[np.ndarray, list[str]]:
        """A table label value -> material index (-1: fallback), and the material names in index order."""
        names = list(self.fallback.material_names)
        table = getattr(self.labels, "table", None)
        present = self.labels.present_labels()
        lut = np.full(max(present + [0]) + 1, -1, dtype=np.int16)
        if not self.mapping:
            raise InputError("The label-to-material mapping is empty. Map at least one label, e.g. {'vertebrae_*': 'bone'}.")
        for key, material_name in self.mapping.items():
            mat = material(material_name).name
            if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.isdigit()):
                values = [int(key)]
            else:
                known = {} if table is None else {v: n for v, n in table.names.items()}
                values = [v for v, n in known.items() if fnmatch.fnmatch(n.lower(), str(key).lower())]
                if not values:
                    sample = ", ".join(sorted(known.values())[:12])
                    raise InputError(
                        f"No label matches {key!r} in the label map's table. Use label names (glob patterns "
                        f"allowed) or values; known labels include: {sample}."
                    )
            if mat not in names:
                names.append(mat)
            for value in values:
                if 0 <= value < len(lut):
                    lut[value] = names.index(mat)
        if len(names) > MAX_MATERIALS:
            raise InputError(f"At most {MAX_MATERIALS} materials per projection; this mapping uses {len(names)}.")
        return lut, names


def parse_mapping(text: str) -> dict[str, str]:
    """Parse "vertebrae_*=bone,lung_*=lung" (or a JSON/YAML file's dict) into a mapping."""
    pairs = [p for p in text.replace(";", ",").split(",") if p.strip()]
    mapping: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"Material mapping entry {pair!r} needs the form label=material, e.g. 'rib_*=bone'.")
        key, value = pair.split("=", 1)
        mapping[key.strip()] = material(value.strip()).name
    return mapping
