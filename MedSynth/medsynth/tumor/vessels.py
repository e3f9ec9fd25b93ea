"""Liver parenchyma level and vessels, found from the liver's own HU around a tumor.

Contrast phase differs between scans (a non-contrast liver sits near 55 HU, a portal-venous
one near 110 HU), so nothing here uses fixed HU levels: the parenchyma is the robust centre of
the liver's voxels, and vessels are liver voxels whose smoothed HU is clearly above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from scipy import ndimage

from medsynth.errors import InputError

#: Smoothed HU this far above the parenchyma (at least) marks a vessel.
VESSEL_MIN_EXCESS_HU = 30.0


@dataclass
class Parenchyma:
    """Robust statistics of the liver tissue around a tumor (HU)."""

    level_hu: float  # median of the liver voxels
    noise_hu: float  # robust standard deviation (scan noise plus texture)


def robust_centre_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based standard deviation (on at most ~5k values)."""
    step = max(1, values.size // 5_000)
    sample = values[::step].astype(np.float32, copy=False)
    centre = float(np.median(sample))
    spread = float(1.4826 * np.median(np.abs(sample - centre)))
    return centre, spread


def parenchyma_level(ct_box: np.ndarray, liver_box: np.ndarray, exclude: np.ndarray | None = None) -> Parenchyma:
    """The parenchyma's level and noise from the liver voxels of a box (other tumors excluded).

    Vessels are a few per cent of the liver's voxels: they do not move the median.
    """
    tissue = liver_box if exclude is None else liver_box & ~exclude
    values = ct_box[tissue]
    if values.size < 20:
        raise InputError("Too few liver voxels around this point to measure the liver's HU.")
    level, noise = robust_centre_spread(values)
    if not -100.0 <= level <= 300.0:
        raise InputError(
            f"The liver's median HU here is {level:.0f}, not liver tissue (-100..300 HU). Check that the mask "
            "is the liver's and lies on this CT."
        )
    return Parenchyma(level, max(noise, 1.0))


def smooth_box(ct_box: np.ndarray, spacing_ijk: np.ndarray, sigma_mm: float = 1.0) -> np.ndarray:
    sigma = [min(sigma_mm / spacing_ijk[2 - axis], 3.0) for axis in range(3)]
    sigma = [s if s >= 0.3 else 0.0 for s in sigma]
    return ndimage.gaussian_filter(ct_box.astype(np.float32, copy=False), sigma, truncate=2.0)


def vessel_threshold(parenchyma: Parenchyma, spacing_ijk: np.ndarray, sigma_mm: float = 1.0) -> float:
    """Smoothed-HU threshold: well above the parenchyma's noise after smoothing."""
    voxels_averaged = np.prod([max(1.0, 2.5 * sigma_mm / s) for s in spacing_ijk])
    smoothed_noise = parenchyma.noise_hu / np.sqrt(voxels_averaged)
    return parenchyma.level_hu + max(VESSEL_MIN_EXCESS_HU, 3.0 * smoothed_noise)


def find_vessels(ct_box: np.ndarray, liver_box: np.ndarray, parenchyma: Parenchyma,
                 spacing_ijk: np.ndarray) -> np.ndarray:
    """Liver voxels of the box whose smoothed HU is clearly above the parenchyma (with their walls)."""
    vessels = liver_box & (smooth_box(ct_box, spacing_ijk) > vessel_threshold(parenchyma, spacing_ijk))
    if vessels.any():
        vessels = _grow_within(np.ascontiguousarray(vessels), np.ascontiguousarray(liver_box))  # the walls
    return vessels


@numba.njit(cache=True, nogil=True)
def _grow_within(mask, limit):
    """``mask`` grown by its six face neighbours, kept inside ``limit``.

    The same as ``binary_dilation(mask) & limit`` without scipy's per-call set-up, which costs more
    than the work on a tumor's small box.
    """
    n_k, n_j, n_i = mask.shape
    out = np.zeros_like(mask)
    for k in range(n_k):
        for j in range(n_j):
            for i in range(n_i):
                if not mask[k, j, i]:
                    continue
                out[k, j, i] = True
                if k > 0:
                    out[k - 1, j, i] = True
                if k < n_k - 1:
                    out[k + 1, j, i] = True
                if j > 0:
                    out[k, j - 1, i] = True
                if j < n_j - 1:
                    out[k, j + 1, i] = True
                if i > 0:
                    out[k, j, i - 1] = True
                if i < n_i - 1:
                    out[k, j, i + 1] = True
    for k in range(n_k):
        for j in range(n_j):
            for i in range(n_i):
                out[k, j, i] = out[k, j, i] and limit[k, j, i]
    return out
