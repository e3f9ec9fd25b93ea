"""Hounsfield units -> mass density, as in DeepDRR's physics model.

``density = max(min(0.001029 HU + 1.030, 0.0005886 HU + 1.03), 0)`` g/cm^3: two linear pieces
(soft tissue below water, bone above) and zero for the scanner's padding (-2048 and similar).
"""

from __future__ import annotations

import numpy as np


def hu_to_density(hu: np.ndarray) -> np.ndarray:
    """Mass density in g/cm^3 of voxels in HU (float32 array of the same shape)."""
    hu = np.asarray(hu, dtype=np.float32)
    density = np.minimum(np.float32(0.001029) * hu + np.float32(1.030), np.float32(0.0005886) * hu + np.float32(1.03))
    return np.maximum(density, np.float32(0.0))


def plastimatch_mu(hu: np.ndarray) -> np.ndarray:
    """plastimatch's monochromatic model: mu = 0.022 (1 + HU/1000) per mm, 0 for HU <= -800."""
    hu = np.asarray(hu, dtype=np.float32)
    return np.where(hu > -800.0, np.float32(0.022) * (1.0 + hu / np.float32(1000.0)), np.float32(0.0)).astype(np.float32)
