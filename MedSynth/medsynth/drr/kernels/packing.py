"""Packing a CT for the kernels: each voxel's float32 density carries its material index.

The three lowest mantissa bits hold the material (a relative change of the density below 1e-6)
and the fourth flags a 2 x 2 x 2 cube of one material, so one memory read gives both.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MATERIAL_BITS = np.uint32(7)
CLEAR_BITS = np.uint32(0xFFFFFFF8)
#: Set on a voxel when the 2 x 2 x 2 cube it starts (i..i+1, j..j+1, k..k+1) holds one material,
#: so the scalar loop tests one bit instead of comparing four materials.
UNIFORM_BIT = np.uint32(8)
CLEAR_ALL = np.uint32(0xFFFFFFF0)


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def pack_hu(hu, uppers, indices, labels, lut, use_labels, mode, out_f, out_m):
    """Fill the packed volume: density (mode 0: DeepDRR HU->density; 1: plastimatch mu per cm) + material bits."""
    nk, nj, ni = hu.shape
    n_bounds = uppers.shape[0]
    n_lut = lut.shape[0]
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                h = np.float32(hu[k, j, i])
                if mode == 0:
                    d = min(np.float32(0.001029) * h + np.float32(1.030), np.float32(0.0005886) * h + np.float32(1.03))
                    if d < 0.0:
                        d = np.float32(0.0)
                else:
                    d = np.float32(0.22) * (np.float32(1.0) + h / np.float32(1000.0)) if h > -800.0 else np.float32(0.0)
                m = -1
                if use_labels:
                    lab = labels[k, j, i]
                    if lab >= 0 and lab < n_lut:
                        m = lut[lab]
                if m < 0:
                    m = indices[n_bounds - 1]
                    for b in range(n_bounds):
                        if h <= uppers[b]:
                            m = indices[b]
                            break
                out_f[k, j, i] = d
                out_m[k, j, i] = m


@njit(parallel=True, cache=True, nogil=True)
def merge_bits(bits, materials):
    """Store each voxel's material index in the 3 lowest bits of its float32 density, and the
    uniform-cube flag in the 4th (a relative change of the density below 2e-6). Voxels of zero
    density keep all bits 0, so rays through nothing integrate to exactly 0."""
    nk, nj, ni = bits.shape
    for k in prange(nk):
        for j in range(nj):
            for i in range(ni):
                m = materials[k, j, i]
                uniform = k + 1 < nk and j + 1 < nj and i + 1 < ni
                if uniform:
                    for dk in range(2):
                        for dj in range(2):
                            for di in range(2):
                                if materials[k + dk, j + dj, i + di] != m:
                                    uniform = False
                flag = UNIFORM_BIT if uniform else np.uint32(0)
                value = bits[k, j, i] & CLEAR_ALL
                if value != 0:  # a zero density stays exactly 0.0 (it adds nothing to any material)
                    bits[k, j, i] = value | np.uint32(m) | flag
                else:
                    bits[k, j, i] = np.uint32(0)
