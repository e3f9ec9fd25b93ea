"""Tumor shape: a rotated ellipsoid whose outline is smoothly deformed, evaluated in a box.

The deformation is a smooth function of direction only (the outline's radius along each ray
from the centre is ``1 + delta(direction)`` in ellipsoid units), so the shape is star-shaped
around its centre: always one connected piece, never fragments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from medsynth.tumor.spec import TUMOR_TYPES

#: Largest outward/inward wander of the outline, as a share of the local radius.
MAX_DEFORMATION = 0.3
#: Spacing of the coarse grid the outline's wander is evaluated on, as a share of the mean radius
#: (between 2 and 6 mm): the wander is smooth on that scale.
COARSE_SHARE, COARSE_MIN_MM, COARSE_MAX_MM = 0.22, 2.0, 6.0


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation (columns: the tumor's axes in RAS)."""
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


@dataclass
class TumorShape:
    """Semi-axes (mm), orientation, and the lobes that deform the outline."""

    semi_axes_mm: np.ndarray
    rotation: np.ndarray
    lobe_directions: np.ndarray  # (L, 3) wave vectors acting on the unit direction
    lobe_amplitudes: np.ndarray  # (L,) in ellipsoid units; their sum is the largest wander
    lobe_phases: np.ndarray  # (L,)

    @classmethod
    def draw(cls, rng: np.random.Generator, kind: str, diameter_mm: float | None = None) -> "TumorShape":
        """A random shape of a tumor type, or of a free diameter (then semi-axes vary by +-15 %)."""
        if diameter_mm is not None:
            radius = diameter_mm / 2.0
            axes = radius * rng.uniform(0.85, 1.15, 3)
            axes *= radius / np.prod(axes) ** (1 / 3)  # keep the requested equivalent diameter
            strength = rng.uniform(0.06, 0.12) * radius
        else:
            tumor_type = TUMOR_TYPES[kind]
            axes = rng.uniform(*tumor_type.semi_axes_mm, size=3)
            strength = rng.uniform(*tumor_type.deformation_mm)
        relative = float(np.clip(1.2 * strength / np.mean(axes), 0.06, MAX_DEFORMATION))
        n_lobes = 6
        directions = rng.normal(size=(n_lobes, 3))
        directions *= (rng.uniform(1.0, 4.0, n_lobes) / np.linalg.norm(directions, axis=1))[:, None]
        weights = rng.uniform(0.3, 1.0, n_lobes)
        amplitudes = relative * weights / weights.sum()
        phases = rng.uniform(0, 2 * np.pi, n_lobes)
        return cls(np.asarray(axes, float), random_rotation(rng), directions, amplitudes, phases)

    def scaled(self, factor: float) -> "TumorShape":
        return TumorShape(self.semi_axes_mm * factor, self.rotation, self.lobe_directions,
                          self.lobe_amplitudes, self.lobe_phases)

    def roughened(self, factor: float) -> "TumorShape":
        """The same shape with its outline's wander scaled by ``factor`` (kept within MAX_DEFORMATION)."""
        amplitudes = self.lobe_amplitudes * factor
        total = float(np.abs(amplitudes).sum())
        if total > MAX_DEFORMATION:
            amplitudes *= MAX_DEFORMATION / total
        return TumorShape(self.semi_axes_mm, self.rotation, self.lobe_directions, amplitudes, self.lobe_phases)

    @property
    def max_wander(self) -> float:
        return float(np.abs(self.lobe_amplitudes).sum())

    @property
    def extent_mm(self) -> float:
        """Radius of a sphere that surely contains the tumor."""
        return float(self.semi_axes_mm.max() * (1.0 + self.max_wander))

    @property
    def mean_radius_mm(self) -> float:
        return float(np.prod(self.semi_axes_mm) ** (1 / 3))

    def delta(self, unit: np.ndarray) -> np.ndarray:
        """Outline wander along (N, 3) unit directions in the ellipsoid frame: a sum of smooth lobes."""
        phases = unit @ self.lobe_directions.T.astype(unit.dtype)
        phases += self.lobe_phases.astype(unit.dtype)
        return np.cos(phases, out=phases) @ self.lobe_amplitudes.astype(unit.dtype)


@dataclass
class ShapeField:
    """A shape evaluated on a box of the CT grid (all arrays [k, j, i] over the box)."""

    signed_mm: np.ndarray  # approximate signed distance to the outline, negative inside (float32)
    radial: np.ndarray  # normalised radius: 0 at the centre, 1 on the outline (float32; may be empty)


def apply_separable(coarse: np.ndarray, w_k: np.ndarray, w_j: np.ndarray, w_i: np.ndarray) -> np.ndarray:
    """Apply per-axis (fine x coarse) matrices to a coarse [k, j, i] array: three small BLAS products."""
    out = coarse.astype(np.float32, copy=False) @ w_i.T  # (ck, cj, ni)
    out = np.matmul(w_j, out)  # (ck, nj, ni)
    ck, nj, ni = out.shape
    return (w_k @ out.reshape(ck, nj * ni)).reshape(w_k.shape[0], nj, ni)


@numba.njit(cache=True, nogil=True)
def _coarse_axis(n, stride, start, centre):
    """Coarse samples of one axis: every ``stride``-th voxel and the last one.

    Returns their offsets from the centre (voxels), and for each fine voxel the coarse sample to its
    left and its linear-interpolation weight towards the next one.
    """
    n_coarse = (n - 1) // stride + 1
    positions = np.empty(n_coarse + (1 if (n - 1) % stride else 0))
    for c in range(n_coarse):
        positions[c] = c * stride
    positions[-1] = n - 1
    index = np.zeros(n, np.int64)
    weight = np.zeros(n, np.float32)
    if positions.size > 1:
        for fine in range(n):
            left = min(fine // stride, positions.size - 2)
            index[fine] = left
            weight[fine] = min(max((fine - positions[left]) / (positions[left + 1] - positions[left]), 0.0), 1.0)
    return positions + start - centre, index, weight


#: Taylor coefficients of cos(x) in x^2, highest first (|error| < 1e-9 on [-pi, pi]).
_COS_TERMS = np.array([(-1) ** n / math.factorial(2 * n) for n in range(11)][::-1])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _cos(x):
    """cos(x) from a polynomial after reduction to [-pi, pi]: branch-free, so loops over it vectorise
    (the library cos, called per lobe and sample, was most of a tumor's shape cost)."""
    y = x - 2.0 * np.pi * np.floor(x / (2.0 * np.pi) + 0.5)
    y2 = y * y
    total = _COS_TERMS[0]
    for term in _COS_TERMS[1:]:
        total = total * y2 + term
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _wander_kernel(linear, offsets_i, offsets_j, offsets_k, lobe_directions, lobe_phases, lobe_amplitudes):
    """The outline's wander ``delta`` at each coarse sample [k, j, i] (direction from the centre only).

    Row by row, one lobe at a time, so the inner loop over a row is plain arithmetic.
    """
    n_i = offsets_i.size
    out = np.empty((offsets_k.size, offsets_j.size, n_i), np.float32)
    unit = np.empty((3, n_i))
    total = np.empty(n_i)
    for k in range(offsets_k.size):
        for j in range(offsets_j.size):
            d1, d2 = offsets_j[j], offsets_k[k]
            for i in range(n_i):
                d0 = offsets_i[i]
                s0 = linear[0, 0] * d0 + linear[0, 1] * d1 + linear[0, 2] * d2
                s1 = linear[1, 0] * d0 + linear[1, 1] * d1 + linear[1, 2] * d2
                s2 = linear[2, 0] * d0 + linear[2, 1] * d1 + linear[2, 2] * d2
                norm = np.sqrt(s0 * s0 + s1 * s1 + s2 * s2) + 1e-9
                unit[0, i], unit[1, i], unit[2, i] = s0 / norm, s1 / norm, s2 / norm
                total[i] = 0.0
            for lobe in range(lobe_amplitudes.size):
                w0, w1, w2 = lobe_directions[lobe, 0], lobe_directions[lobe, 1], lobe_directions[lobe, 2]
                phase, amplitude = lobe_phases[lobe], lobe_amplitudes[lobe]
                for i in range(n_i):
                    total[i] += _cos(w0 * unit[0, i] + w1 * unit[1, i] + w2 * unit[2, i] + phase) * amplitude
            for i in range(n_i):
                out[k, j, i] = total[i]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _field_kernel(q, d_i, d_j, d_k, wander, index_i, t_i, index_j, t_j, index_k, t_k, radius_mm, with_radial):
    """Signed distance (mm) and normalised radius of every voxel, in one pass over the box.

    The ellipsoid radius is the quadratic form ``sqrt(d^T Q d)``; the outline ``1 + delta`` is the coarse
    wander interpolated linearly along k and j once per row, then along i per voxel. Fusing both avoids a
    dozen box-sized temporaries per tumor. Without ``with_radial`` the radius is not stored (screening).
    """
    n_k, n_j, n_i = d_k.size, d_j.size, d_i.size
    c_k, c_j, c_i = wander.shape
    signed = np.empty((n_k, n_j, n_i), np.float32)
    radial = np.empty((n_k, n_j, n_i) if with_radial else (0, 0, 0), np.float32)
    row = np.empty(c_i + 1, np.float32)
    outline = np.empty(n_i, np.float32)
    for k in range(n_k):
        dk = d_k[k]
        k0, tk = index_k[k], t_k[k]
        k1 = min(k0 + 1, c_k - 1)
        for j in range(n_j):
            dj = d_j[j]
            j0, tj = index_j[j], t_j[j]
            j1 = min(j0 + 1, c_j - 1)
            for c in range(c_i):  # the wander along this row's coarse samples
                w0 = wander[k0, j0, c] + tj * (wander[k0, j1, c] - wander[k0, j0, c])
                w1 = wander[k1, j0, c] + tj * (wander[k1, j1, c] - wander[k1, j0, c])
                row[c] = np.float32(1.0) + w0 + tk * (w1 - w0)
            row[c_i] = row[c_i - 1]
            for i in range(n_i):  # the outline along the row (a gather: kept out of the loop below)
                i0 = index_i[i]
                outline[i] = row[i0] + t_i[i] * (row[i0 + 1] - row[i0])
            base = q[1, 1] * dj * dj + q[2, 2] * dk * dk + 2.0 * q[1, 2] * dj * dk
            linear_i = 2.0 * (q[0, 1] * dj + q[0, 2] * dk)
            signed_row = signed[k, j]
            for i in range(n_i):  # branch-free arithmetic: vectorised by the compiler
                di = d_i[i]
                r = np.float32(np.sqrt(max(base + di * (q[0, 0] * di + linear_i), 0.0)))
                signed_row[i] = (r - outline[i]) * radius_mm
                outline[i] = r / outline[i]  # now the normalised radius
            if with_radial:
                radial[k, j] = outline[:n_i]
    return signed, radial


def evaluate_shape(shape: TumorShape, ijk_to_ras: np.ndarray, box_start: np.ndarray, box_shape: tuple[int, int, int],
                   centre_ijk: np.ndarray, with_radial: bool = True) -> ShapeField:
    """Evaluate ``shape`` centred at ``centre_ijk`` on the box starting at ``box_start`` (i, j, k).

    Works on the scan's own (possibly anisotropic, oblique) grid: no resampling of the CT. The outline's
    wander is smooth, so it is computed on a coarse grid (2-6 mm) and interpolated inside the kernel.
    ``with_radial=False`` leaves ``radial`` empty, for checks that only need the signed distance.
    """
    box_start = np.asarray(box_start, np.float64)
    centre_ijk = np.asarray(centre_ijk, np.float64)
    # ellipsoid-frame normalised coordinates s = diag(1/a) R^T M (ijk - c); r^2 = d^T Q d with Q = L^T L
    linear = (shape.rotation.T @ ijk_to_ras[:3, :3]) / shape.semi_axes_mm[:, None]
    offsets = [np.arange(n, dtype=np.float64) + box_start[axis] - centre_ijk[axis]
               for axis, n in zip(range(3), box_shape[::-1])]
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    coarse_mm = float(np.clip(COARSE_SHARE * shape.mean_radius_mm, COARSE_MIN_MM, COARSE_MAX_MM))
    axes = [_coarse_axis(n, max(1, int(round(coarse_mm / spacing[axis]))), box_start[axis], centre_ijk[axis])
            for axis, n in zip(range(3), box_shape[::-1])]
    wander = _wander_kernel(np.ascontiguousarray(linear), axes[0][0], axes[1][0], axes[2][0],
                            np.ascontiguousarray(shape.lobe_directions, np.float64),
                            np.ascontiguousarray(shape.lobe_phases, np.float64),
                            np.ascontiguousarray(shape.lobe_amplitudes, np.float64))
    signed, radial = _field_kernel(linear.T @ linear, offsets[0], offsets[1], offsets[2], wander,
                                   axes[0][1], axes[0][2], axes[1][1], axes[1][2], axes[2][1], axes[2][2],
                                   np.float32(shape.mean_radius_mm), with_radial)
    return ShapeField(signed, radial)
