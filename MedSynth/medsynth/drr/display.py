"""Display scaling: an explicit, recorded step from calibrated images to 8-bit pictures.

Projections keep calibrated values (area densities, transmitted fraction, -log line integrals);
nothing is rescaled silently. ``to_uint8`` maps an image to 0-255 by a window (given or from
percentiles) and returns the window it used, so a picture can always be traced back.
"""

from __future__ import annotations

import numpy as np

from medsynth.errors import InputError


def to_uint8(
    image: np.ndarray,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    invert: bool = False,
) -> tuple[np.ndarray, tuple[float, float]]:
    """8-bit picture of ``image`` and the (low, high) window used (percentiles when not given)."""
    values = np.asarray(image, dtype=np.float64)
    if values.ndim != 2:
        raise InputError(f"Display scaling takes a 2D image, got shape {values.shape}.")
    finite = values[np.isfinite(values)]
    if window is None:
        low, high = (np.percentile(finite, percentiles) if finite.size else (0.0, 1.0))
    else:
        low, high = window
    low, high = float(low), float(high)
    if not high > low:
        high = low + 1e-6
    scaled = np.clip((np.nan_to_num(values, nan=low) - low) / (high - low), 0.0, 1.0)
    if invert:
        scaled = 1.0 - scaled
    return np.round(scaled * 255.0).astype(np.uint8), (low, high)
