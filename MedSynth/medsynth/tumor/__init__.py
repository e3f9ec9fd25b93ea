"""Liver tumor synthesis (Hu et al., CVPR 2023, rebuilt clean-room and extended).

``synthesize(ct, liver, spec, rng, point_ras=None)`` paints tumors into a CT in HU, in a box
around each tumor on the scan's own grid, and returns the new CT, a label map and one
description (with realism statistics) per tumor.
"""

from medsynth.tumor.liver import LiverContext
from medsynth.tumor.realism import RealismStats
from medsynth.tumor.spec import KINDS, MIX_COUNTS, TUMOR_TYPES, Appearance, TumorSpec, TumorType
from medsynth.tumor.synthesize import TumorDescription, TumorPatch, TumorResult, save_descriptions, synthesize

__all__ = [
    "KINDS",
    "MIX_COUNTS",
    "TUMOR_TYPES",
    "Appearance",
    "LiverContext",
    "RealismStats",
    "TumorDescription",
    "TumorPatch",
    "TumorResult",
    "TumorSpec",
    "TumorType",
    "save_descriptions",
    "synthesize",
]
