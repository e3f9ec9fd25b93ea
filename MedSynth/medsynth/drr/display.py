"""Display scaling: an explicit, recorded step from calibrated images to 8-bit pictures.

Projections keep calibrated values (area densities, transmitted fraction, -log line integrals);
nothing is rescaled silently. ``to_uint8`` maps an image to 0-255 by a window (given or from
percentiles) and returns the window it used, so a picture can always be traced back.
"""

from __future__ import annotations

import numpy as np

from medsynth.display import display_range, to_grey
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
    low, high = display_range(values, percentiles) if window is None else (float(window[0]), float(window[1]))
    if not high > low:
        high = low + 1e-6
    return to_grey(values, low, high, invert), (low, high)
