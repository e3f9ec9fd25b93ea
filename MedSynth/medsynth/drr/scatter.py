"""An approximate scatter model: a broad kernel applied to the primary image.

DeepDRR's Monte-Carlo scatter is disabled in its current release; this is the kernel model used
by scatter-correction methods (Ohnesorge et al., Med. Phys. 1999): each pixel emits scatter in
proportion to the primary it transmits times the attenuation it saw, ``I_p ln(I0 / I_p)``, spread
on the detector by a Gaussian of ``sigma_mm``. ``amplitude`` sets the strength: the default 0.25
gives a scatter-to-primary ratio near 1 behind 20 cm of water, about what a fluoroscope with an
anti-scatter grid sees. It is smooth, positive, zero without an object, grows with thickness and
lowers contrast; it is not a Monte-Carlo simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsynth.errors import InputError


@dataclass(frozen=True)
class ScatterModel:
    amplitude: float = 0.25
    sigma_mm: float = 40.0

    def __post_init__(self) -> None:
        if not (self.amplitude >= 0 and self.sigma_mm > 0):
            raise InputError("Scatter amplitude must be >= 0 and its kernel width sigma_mm > 0.")

    def scatter(self, primary: np.ndarray, pixel_spacing_mm: tuple[float, float]) -> np.ndarray:
        """Scatter (same units as ``primary``, the transmitted fraction) for one image."""
        from scipy.ndimage import gaussian_filter, zoom

        primary = np.clip(primary.astype(np.float32), 1e-12, 1.0)
        source = primary * -np.log(primary)
        rows, cols = primary.shape
        # the kernel is smooth: work on a grid of about 4 mm pixels, then interpolate back
        factor = max(1, int(min(4.0 / pixel_spacing_mm[0], 4.0 / pixel_spacing_mm[1], rows / 8, cols / 8)))
        small = source[: rows // factor * factor, : cols // factor * factor]
        small = small.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
        sigma = (self.sigma_mm / (pixel_spacing_mm[0] * factor), self.sigma_mm / (pixel_spacing_mm[1] * factor))
        blurred = gaussian_filter(small, sigma, mode="constant")
        if factor > 1:
            blurred = zoom(blurred, (rows / blurred.shape[0], cols / blurred.shape[1]), order=1, mode="nearest")
        return (self.amplitude * blurred).astype(np.float32)
