"""Where a tumor goes: boxes on the CT grid, the fit check (inside the liver, off its surface,
inside the scan), collisions with other tumors, and the vessel share at a candidate location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from medsynth.tumor.organ import OrganContext
from medsynth.tumor.realism import SHELL_MM
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


def region_box(region: tuple[slice, slice, slice]) -> Box:
    """The box of a [k, j, i] region of the volume (wholly inside it)."""
    shape = tuple(r.stop - r.start for r in region)
    return Box(np.array([r.start for r in region[::-1]]), shape, tuple(region),
               tuple(slice(0, n) for n in shape))


def box_half_size(context: OrganContext, radius_mm: float) -> np.ndarray:
    """Half-size in voxels (i, j, k) of a box holding a sphere of ``radius_mm`` (oblique grids too)."""
    return np.ceil(radius_mm * context.voxels_per_mm).astype(int) + 1


def liver_in_box(context: OrganContext, box: Box) -> np.ndarray:
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
    """Box radius: the tumor, its surface margin, its soft edge and the shell used for statistics.

    The statistics' shell ends where the shape field reaches 6 (``realism.SHELL_MM``), at most
    ``6 * ratio`` mm out along the longest axis: a larger box only costs time.
    """
    ratio = float(shape.semi_axes_mm.max() / shape.mean_radius_mm)
    return shape.extent_mm * reach + max(fit_threshold_mm(shape, margin_mm), SHELL_MM[1]) * ratio


def fits(field: ShapeField, liver: np.ndarray, threshold_mm: float) -> bool:
    """True when every voxel within ``threshold_mm`` of the outline (and inside) is liver."""
    return not bool(np.any((field.signed_mm <= threshold_mm) & ~liver))


def evaluate_at(context: OrganContext, shape: TumorShape, centre_ijk: np.ndarray, radius_mm: float) -> tuple[Box, ShapeField]:
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


@numba.njit(cache=True, nogil=True)
def _screen_voxels(signed, level, grid, grid_start, centre, stride, want):
    """True when every coarse voxel with ``signed <= level`` lands on a ``grid`` voxel equal to ``want``.

    ``grid`` is a mask cropped at ``grid_start`` (False outside it); coarse voxel (k, j, i) of the box
    lies at ``centre + ((k, j, i) - half) * stride``. Stops at the first voxel that breaks the rule.
    """
    n_k, n_j, n_i = signed.shape
    for k in range(n_k):
        gk = centre[0] + (k - n_k // 2) * stride[0] - grid_start[0]
        k_in = 0 <= gk < grid.shape[0]
        for j in range(n_j):
            gj = centre[1] + (j - n_j // 2) * stride[1] - grid_start[1]
            j_in = k_in and 0 <= gj < grid.shape[1]
            for i in range(n_i):
                if signed[k, j, i] > level:
                    continue
                gi = centre[2] + (i - n_i // 2) * stride[2] - grid_start[2]
                value = j_in and 0 <= gi < grid.shape[2] and grid[gk, gj, gi]
                if value != want:
                    return False
    return True


@numba.njit(cache=True, nogil=True)
def _vessel_share(signed, liver, grid_start, ct, centre, stride, vessel_excess_hu):
    """Share of the tumor's liver voxels (``signed <= 0``) on vessels: HU well above the box's parenchyma."""
    n_k, n_j, n_i = signed.shape
    values = np.empty(signed.size, np.float32)
    tumor = np.empty(signed.size, np.float32)
    count = in_tumor = 0
    for k in range(n_k):
        ck = centre[0] + (k - n_k // 2) * stride[0]
        gk = ck - grid_start[0]
        for j in range(n_j):
            cj = centre[1] + (j - n_j // 2) * stride[1]
            gj = cj - grid_start[1]
            for i in range(n_i):
                ci = centre[2] + (i - n_i // 2) * stride[2]
                gi = ci - grid_start[2]
                if (0 <= gk < liver.shape[0] and 0 <= gj < liver.shape[1] and 0 <= gi < liver.shape[2]
                        and liver[gk, gj, gi]):
                    values[count] = ct[ck, cj, ci]
                    count += 1
                    if signed[k, j, i] <= 0:
                        tumor[in_tumor] = ct[ck, cj, ci]
                        in_tumor += 1
    if count < 20 or in_tumor == 0:
        return 0.0
    sample = values[:count:max(1, count // 5000)]
    level = np.median(sample)
    spread = 1.4826 * np.median(np.abs(sample - level))
    threshold = level + max(vessel_excess_hu, 2.5 * spread)
    return np.count_nonzero(tumor[:in_tumor] > threshold) / in_tumor


@numba.njit(cache=True, nogil=True)
def screen_candidate(signed, fit_level, liver, occupied, grid_start, ct, centre, stride, vessel_excess_hu):
    """Coarse checks of one candidate location; returns (fits and free, vessel share).

    ``signed`` is the tumor's field on a coarse box (every ``stride``-th voxel, [k, j, i]) centred on the
    candidate. ``liver`` and ``occupied`` (tumors already there) cover the liver's bounding box from
    ``grid_start``. Checks, cheapest first: the tumor and its surface margin (``signed <= fit_level``) in
    the liver; the tumor plus 1 mm off other tumors; then the share of vessels in the tumor. The same as
    slicing every stride-th voxel of the box, without building box arrays. A box reaching out of the
    scan gets vessel share 1 (taken last).
    """
    if not _screen_voxels(signed, fit_level, liver, grid_start, centre, stride, True):
        return False, 1.0
    if occupied.size and not _screen_voxels(signed, np.float32(1.0), occupied, grid_start, centre, stride, False):
        return False, 1.0
    for axis in range(3):
        reach = (signed.shape[axis] // 2) * stride[axis]
        if centre[axis] - reach < 0 or centre[axis] + reach >= ct.shape[axis]:
            return True, 1.0
    return True, _vessel_share(signed, liver, grid_start, ct, centre, stride, vessel_excess_hu)
