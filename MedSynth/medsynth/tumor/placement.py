"""Where a tumor goes: boxes on the CT grid, the fit check (inside the liver, off its surface,
inside the scan), collisions with other tumors, and the vessel share at a candidate location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medsynth.tumor.liver import LiverContext
from medsynth.tumor.shape import ShapeField, TumorShape, evaluate_shape


@dataclass
class Box:
    """A box of voxels around a tumor; may reach outside the volume (``inner`` is the part inside)."""

    start: np.ndarray  # (i, j, k) of the box's first voxel, possibly negative
    shape: tuple[int, int, int]  # [k, j, i]
    inner_global: tuple[slice, slice, slice]  # [k, j, i] slices into the volume
    inner_local: tuple[slice, slice, slice]  # the same voxels, as slices into the box

    @property
    def clipped(self) -> bool:
        return any((s.stop - s.start) != n for s, n in zip(self.inner_local, self.shape))

    def ijk_min_max(self) -> list[list[int]]:
        g = self.inner_global
        return [[g[2].start, g[1].start, g[0].start], [g[2].stop - 1, g[1].stop - 1, g[0].stop - 1]]


def make_box(centre_voxel: np.ndarray, half: np.ndarray, volume_shape_kji: tuple[int, int, int]) -> Box:
    """Box of ``2*half+1`` voxels per axis (i, j, k) around an integer voxel (i, j, k)."""
    start = np.asarray(centre_voxel, int) - half
    stop = np.asarray(centre_voxel, int) + half + 1
    limits = np.array(volume_shape_kji[::-1])
    lo = np.clip(start, 0, limits)
    hi = np.clip(stop, 0, limits)
    inner_global = tuple(slice(int(lo[a]), int(hi[a])) for a in (2, 1, 0))
    inner_local = tuple(slice(int(lo[a] - start[a]), int(hi[a] - start[a])) for a in (2, 1, 0))
    shape = tuple(int(stop[a] - start[a]) for a in (2, 1, 0))
    return Box(start, shape, inner_global, inner_local)


def box_half_size(context: LiverContext, radius_mm: float) -> np.ndarray:
    """Half-size in voxels (i, j, k) of a box holding a sphere of ``radius_mm`` (oblique grids too)."""
    per_mm = np.linalg.norm(context.ct.ras_to_ijk[:3, :3], axis=1)
    return np.ceil(radius_mm * per_mm).astype(int) + 1


def liver_in_box(context: LiverContext, box: Box) -> np.ndarray:
    """The liver mask over the whole box; voxels outside the volume count as not liver."""
    if not box.clipped:
        return context.mask(box.inner_global)
    mask = np.zeros(box.shape, bool)
    if all(s.stop > s.start for s in box.inner_local):
        mask[box.inner_local] = context.mask(box.inner_global)
    return mask


def fit_threshold_mm(shape: TumorShape, margin_mm: float) -> float:
    """Shape-field level that keeps at least ``margin_mm`` to the liver surface along the shortest axis."""
    return margin_mm * shape.mean_radius_mm / float(shape.semi_axes_mm.min())


def pad_mm(shape: TumorShape, margin_mm: float, reach: float = 1.0) -> float:
    """Box radius: the tumor, its surface margin, its soft edge and the shell used for statistics."""
    ratio = float(shape.semi_axes_mm.max() / shape.mean_radius_mm)
    return shape.extent_mm * reach + max(fit_threshold_mm(shape, margin_mm), 7.0) * ratio


def fits(field: ShapeField, liver: np.ndarray, threshold_mm: float) -> bool:
    """True when every voxel within ``threshold_mm`` of the outline (and inside) is liver."""
    return not bool(np.any((field.signed_mm <= threshold_mm) & ~liver))


def evaluate_at(context: LiverContext, shape: TumorShape, centre_ijk: np.ndarray, radius_mm: float) -> tuple[Box, ShapeField]:
    """Box around the (continuous) centre and the shape evaluated over it."""
    centre_voxel = np.rint(centre_ijk).astype(int)
    box = make_box(centre_voxel, box_half_size(context, radius_mm), context.ct.array.shape)
    return box, evaluate_shape(shape, context.ct.ijk_to_ras, box.start, box.shape, np.asarray(centre_ijk, float))


def intersect(box: Box, other: tuple[slice, slice, slice]):
    """Slices into ``box`` (local, whole box) and into ``other`` (a global box) of their common voxels."""
    mine, theirs = [], []
    for axis in range(3):
        start_box = int(box.start[2 - axis])
        lo = max(start_box, other[axis].start)
        hi = min(start_box + box.shape[axis], other[axis].stop)
        if hi <= lo:
            return None
        mine.append(slice(lo - start_box, hi - start_box))
        theirs.append(slice(lo - other[axis].start, hi - other[axis].start))
    return tuple(mine), tuple(theirs)
