"""Liver, pancreas and kidney tumor synthesis (Hu et al., CVPR 2023, rebuilt clean-room and extended).

``synthesize(ct, organ_mask, spec, rng, point_ras=None)`` paints tumors into a CT in HU, in a box
around each tumor on the scan's own grid, and returns the new CT, a label map and one
description (with realism statistics) per tumor.

The engine's kernels need numba, which Slicer does not bundle, so the names below are imported
on first use: ``import medsynth.tumor.parameters`` (what a module needs at load time) works with
Slicer's own packages alone.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LiverContext": "liver", "OrganContext": "organ",
    "RealismStats": "realism",
    "KINDS": "spec", "MIX_COUNTS": "spec", "TUMOR_TYPES": "spec", "Appearance": "spec",
    "TumorSpec": "spec", "TumorType": "spec",
    "TumorDescription": "engine", "TumorPatch": "engine", "TumorResult": "engine",
    "save_descriptions": "engine", "synthesize": "engine",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'medsynth.tumor' has no attribute {name!r}")
    return getattr(importlib.import_module(f"medsynth.tumor.{_WHERE[name]}"), name)
