"""Detector effects applied after the ray march: photon noise and detector blur.

Photon noise: the unattenuated beam delivers ``photons`` per pixel; the detector counts
Poisson(expected photons) and integrates energy, so the noisy energy signal is the noise-free one
scaled by counts / expected counts (exact for the photon count, an approximation of the
compound-Poisson energy signal). Detector blur: a Gaussian of ``sigma`` pixels, applied after the
noise (so it correlates it, as a scintillator does).
"""

from __future__ import annotations

import numpy as np

from medsynth.errors import InputError


def poisson_noise(
    energy_fraction: np.ndarray,
    photon_fraction: np.ndarray,
    photons: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Noisy transmitted energy fraction for ``photons`` incident photons per pixel."""
    if not np.isfinite(photons) or photons <= 0:
        raise InputError(f"The photon count must be a positive number per pixel (e.g. 10000), got {photons!r}.")
    expected = np.maximum(photons * photon_fraction.astype(np.float64), 0.0)
    counts = rng.poisson(expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        energy_per_photon = np.where(photon_fraction > 0, energy_fraction / np.maximum(photon_fraction, 1e-30), 1.0)
    return (counts * energy_per_photon / photons).astype(np.float32)


def detector_blur(image: np.ndarray, sigma_pixels: float) -> np.ndarray:
    """Gaussian detector blur (sigma in pixels); 0 returns the image unchanged."""
    if sigma_pixels < 0:
        raise InputError(f"Detector blur must be zero or a positive number of pixels, got {sigma_pixels}.")
    if sigma_pixels == 0:
        return image
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image.astype(np.float32), sigma_pixels, mode="nearest")
