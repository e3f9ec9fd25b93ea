"""Display windows: the one place that maps calibrated values to screen grey levels (numpy only).

Pictures, DRR previews, Slicer display nodes and the web app all take their windows from here,
so the same image looks the same everywhere. Data are never rescaled: only what is shown.
"""

from __future__ import annotations

import numpy as np

#: CT windows as (level, width) in HU.
CT_WINDOWS = {"soft_tissue": (40, 400), "lung": (-600, 1500), "bone": (400, 1800), "liver": (60, 180)}


def display_range(array: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> tuple[float, float]:
    """(low, high) display window of an image from its percentiles, ignoring NaN/inf; never empty."""
    values = np.asarray(array)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, percentiles)
    return float(low), float(max(high, low + 1e-6))


def level_width_range(level: float, width: float) -> tuple[float, float]:
    """A (level, width) window as (low, high)."""
    return float(level) - float(width) / 2.0, float(level) + float(width) / 2.0


def to_grey(array: np.ndarray, low: float, high: float, invert: bool = False) -> np.ndarray:
    """uint8 grey levels of ``array`` through the window [low, high] (NaN shown as ``low``)."""
    low, high = float(low), float(high)
    if not high > low:
        high = low + 1e-6
    scaled = np.clip((np.nan_to_num(np.asarray(array, dtype=np.float64), nan=low) - low) / (high - low), 0.0, 1.0)
    if invert:
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8)
