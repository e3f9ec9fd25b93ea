"""The liver as a tumor's organ: ``LiverContext`` is an ``OrganContext`` for the liver (kept for liver callers)."""

from __future__ import annotations

import numpy as np

from medsynth.tumor.organ import OrganContext
from medsynth.volume import LabelMap, Volume


class LiverContext(OrganContext):
    """A CT in HU and its liver mask on the same grid (TotalSegmentator's label 5, a name or a binary mask)."""

    def __init__(self, ct: Volume, liver: LabelMap | Volume | np.ndarray | None, liver_label: int | str | None = None):
        super().__init__(ct, liver, liver_label, organ="liver")
