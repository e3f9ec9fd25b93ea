"""Tumor texture: scaled-up Gaussian noise drawn for each tumor's box, no texture bank.

White Gaussian noise on a coarse grid (one sample per correlation length) is interpolated
to the scan's grid with normalised Gaussian weights, one axis at a time (three small matrix
products). Every output voxel then has unit variance and a smooth, blob-like structure.
"""

from __future__ import annotations

import numpy as np

from medsynth.tumor.shape import apply_separable


def gaussian_upsampler(n_fine: int, spacing_mm: float, correlation_mm: float) -> tuple[np.ndarray, int]:
    """(n_fine, n_coarse) matrix with unit-norm rows; coarse samples every ``correlation_mm``."""
    step = correlation_mm / spacing_mm  # coarse step in fine voxels
    n_coarse = int(np.ceil((n_fine - 1) / step)) + 3
    coarse = (np.arange(n_coarse) - 1) * step
    fine = np.arange(n_fine, dtype=np.float64)[:, None]
    weights = np.exp(-0.5 * ((fine - coarse[None, :]) / (0.6 * step)) ** 2)
    weights /= np.sqrt((weights ** 2).sum(axis=1, keepdims=True))
    return weights.astype(np.float32), n_coarse


def smooth_noise(rng: np.random.Generator, box_shape: tuple[int, int, int], spacing_ijk: np.ndarray,
                 correlation_mm: float) -> np.ndarray:
    """Unit-variance smooth random field of ``box_shape`` [k, j, i] with the given correlation length."""
    n_k, n_j, n_i = box_shape
    w_i, c_i = gaussian_upsampler(n_i, spacing_ijk[0], correlation_mm)
    w_j, c_j = gaussian_upsampler(n_j, spacing_ijk[1], correlation_mm)
    w_k, c_k = gaussian_upsampler(n_k, spacing_ijk[2], correlation_mm)
    coarse = rng.standard_normal((c_k, c_j, c_i), dtype=np.float32)
    return apply_separable(coarse, w_k, w_j, w_i)


def tumor_texture(rng: np.random.Generator, box_shape: tuple[int, int, int], spacing_ijk: np.ndarray,
                  coarse_mm: float, fine_mm: float, fine_share: float) -> np.ndarray:
    """Unit-variance heterogeneity: large blotches plus a finer grain (two octaves)."""
    coarse = smooth_noise(rng, box_shape, spacing_ijk, coarse_mm)
    fine = smooth_noise(rng, box_shape, spacing_ijk, fine_mm)
    a, b = np.float32(np.sqrt(1.0 - fine_share)), np.float32(np.sqrt(fine_share))
    coarse *= a
    coarse += b * fine
    return coarse
