"""Tumor shape: a rotated ellipsoid whose outline is smoothly deformed, evaluated in a box.

The deformation is a smooth function of direction only (the outline's radius along each ray
from the centre is ``1 + delta(direction)`` in ellipsoid units), so the shape is star-shaped
around its centre: always one connected piece, never fragments.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    radial: np.ndarray  # normalised radius: 0 at the centre, 1 on the outline (float32)


def linear_upsampler(n_fine: int, coarse_positions: np.ndarray) -> np.ndarray:
    """(n_fine, n_coarse) matrix interpolating linearly from coarse sample positions (in fine indices)."""
    fine = np.arange(n_fine, dtype=np.float64)
    if len(coarse_positions) == 1:
        return np.ones((n_fine, 1), np.float32)
    index = np.clip(np.searchsorted(coarse_positions, fine, side="right") - 1, 0, len(coarse_positions) - 2)
    left, right = coarse_positions[index], coarse_positions[index + 1]
    t = np.clip((fine - left) / (right - left), 0.0, 1.0)
    matrix = np.zeros((n_fine, len(coarse_positions)), np.float32)
    matrix[np.arange(n_fine), index] = 1.0 - t
    matrix[np.arange(n_fine), index + 1] = t
    return matrix


def apply_separable(coarse: np.ndarray, w_k: np.ndarray, w_j: np.ndarray, w_i: np.ndarray) -> np.ndarray:
    """Apply per-axis (fine x coarse) matrices to a coarse [k, j, i] array: three small BLAS products."""
    out = coarse.astype(np.float32, copy=False) @ w_i.T  # (ck, cj, ni)
    out = np.matmul(w_j, out)  # (ck, nj, ni)
    ck, nj, ni = out.shape
    return (w_k @ out.reshape(ck, nj * ni)).reshape(w_k.shape[0], nj, ni)


def evaluate_shape(shape: TumorShape, ijk_to_ras: np.ndarray, box_start: np.ndarray, box_shape: tuple[int, int, int],
                   centre_ijk: np.ndarray) -> ShapeField:
    """Evaluate ``shape`` centred at ``centre_ijk`` on the box starting at ``box_start`` (i, j, k).

    Works on the scan's own (possibly anisotropic, oblique) grid: no resampling of the CT.
    """
    n_k, n_j, n_i = box_shape
    # ellipsoid-frame normalised coordinates s = diag(1/a) R^T M (ijk - c)
    linear = (shape.rotation.T @ ijk_to_ras[:3, :3]) / shape.semi_axes_mm[:, None]
    offsets = [np.arange(n, dtype=np.float64) + box_start[axis] - centre_ijk[axis]
               for axis, n in zip(range(3), (n_i, n_j, n_k))]
    # r^2 = d^T Q d with Q = L^T L: three 1D and three 2D terms, broadcast into one 3D sum
    q = linear.T @ linear
    di, dj, dk = offsets
    plane_ji = (2 * q[0, 1] * dj[:, None] * di[None, :] + q[0, 0] * di[None, :] ** 2 + q[1, 1] * dj[:, None] ** 2)
    plane_ki = (2 * q[0, 2] * dk[:, None] * di[None, :] + q[2, 2] * dk[:, None] ** 2)
    line_kj = 2 * q[1, 2] * dk[:, None] * dj[None, :]
    radial = plane_ji.astype(np.float32)[None, :, :] + plane_ki.astype(np.float32)[:, None, :]
    radial += line_kj.astype(np.float32)[:, :, None]
    np.maximum(radial, 0.0, out=radial)
    np.sqrt(radial, out=radial)

    # the outline's wander, on a coarse grid (smooth away from the centre), then interpolated
    spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
    coarse_mm = float(np.clip(COARSE_SHARE * shape.mean_radius_mm, COARSE_MIN_MM, COARSE_MAX_MM))
    positions = []
    for axis, n in zip(range(3), (n_i, n_j, n_k)):
        stride = max(1, int(round(coarse_mm / spacing[axis])))
        pos = np.arange(0, n, stride, dtype=np.float64)
        if pos[-1] != n - 1:
            pos = np.append(pos, n - 1)
        positions.append(pos)
    grid = np.meshgrid(positions[2] + box_start[2] - centre_ijk[2], positions[1] + box_start[1] - centre_ijk[1],
                       positions[0] + box_start[0] - centre_ijk[0], indexing="ij")
    offsets_kji = np.stack([g.ravel() for g in grid[::-1]], axis=1).astype(np.float32)  # (N, 3) as (i, j, k)
    directions = offsets_kji @ linear.T.astype(np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True) + np.float32(1e-9)
    delta_coarse = shape.delta(directions).reshape(grid[0].shape)
    delta = apply_separable(delta_coarse, linear_upsampler(n_k, positions[2]), linear_upsampler(n_j, positions[1]),
                            linear_upsampler(n_i, positions[0]))
    outline = delta + np.float32(1.0)
    signed_mm = (radial - outline) * np.float32(shape.mean_radius_mm)
    radial /= outline
    return ShapeField(signed_mm, radial)
