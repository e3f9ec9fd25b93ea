"""Realism statistics of one synthetic tumor, measured on the CT after synthesis.

They let a dataset's tumors be checked and compared with the published method's known
behaviour (a fixed 33-73 HU darkening, nearly flat texture, fragments, flat cuts at the surface).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np


#: The parenchyma shell around a tumor (shape-field levels, about mm outside its outline).
SHELL_MM = (2.0, 6.0)


@dataclass
class RealismStats:
    contrast_hu: float  # tumor core mean minus surrounding parenchyma mean (negative: hypodense)
    tumor_std_hu: float  # HU standard deviation inside the tumor core (texture + scan noise)
    parenchyma_std_hu: float  # the same around the tumor, for reference
    edge_hu_per_mm: float  # mean HU gradient magnitude on the tumor's boundary voxels
    components: int  # 6-connected pieces of the tumor label (must be 1)
    surface_share: float  # share of boundary voxels touching the liver's surface
    vessel_overlap: float  # share of tumor voxels that were vessel voxels before
    sphericity: float = float("nan")  # 1 for a ball, lower for elongated or irregular tumors
    core_mean_hu: float = float("nan")  # HU mean of the core (the label eroded by one voxel): a reader's ROI

    def to_dict(self) -> dict:
        """Rounded values; None where a statistic is undefined (valid JSON, unlike NaN)."""
        return {key: ((round(value, 4) if np.isfinite(value) else None) if isinstance(value, float) else value)
                for key, value in asdict(self).items()}


@numba.njit(cache=True, nogil=True)
def _shell_mean_std(new, liver, vessels, signed, others, low_mm, high_mm):
    """Mean, SD and voxel count of the parenchyma shell over flat arrays (two passes, no temporaries).

    Shell voxels: liver, no vessel, no other tumor, ``low < signed <= high``; ``others`` of a single
    voxel means no other tumor is near.
    """
    total = 0.0
    count = 0
    any_others = others.size > 1
    for index in range(new.size):
        if (liver[index] and not vessels[index] and signed[index] > low_mm and signed[index] <= high_mm
                and not (any_others and others[index])):
            total += new[index]
            count += 1
    if count == 0:
        return np.nan, np.nan, 0
    mean = total / count
    squares = 0.0
    for index in range(new.size):
        if (liver[index] and not vessels[index] and signed[index] > low_mm and signed[index] <= high_mm
                and not (any_others and others[index])):
            squares += (new[index] - mean) ** 2
    return mean, np.sqrt(squares / count), count


@numba.njit(cache=True, nogil=True)
def mask_bounds(mask):
    """First and one-past-last index of ``mask``'s voxels along each axis (k, j, i); empty: all zero."""
    low = np.array([mask.shape[0], mask.shape[1], mask.shape[2]])
    high = np.zeros(3, np.int64)
    for k in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            for i in range(mask.shape[2]):
                if mask[k, j, i]:
                    low[0], high[0] = min(low[0], k), max(high[0], k + 1)
                    low[1], high[1] = min(low[1], j), max(high[1], j + 1)
                    low[2], high[2] = min(low[2], i), max(high[2], i + 1)
    if high[0] == 0:
        low[:] = 0
    return low, high


@numba.njit(cache=True, nogil=True)
def _fill_from(mask, seen, start, stack):
    """Mark in ``seen`` the 6-connected piece of ``mask`` holding flat index ``start``; returns its size."""
    n_k, n_j, n_i = mask.shape
    plane = n_j * n_i
    flat_mask, flat_seen = mask.reshape(mask.size), seen.reshape(seen.size)
    flat_seen[start] = True
    stack[0] = start
    top, size = 1, 0
    while top:
        top -= 1
        index = stack[top]
        size += 1
        k, rest = divmod(index, plane)
        j, i = divmod(rest, n_i)
        for neighbour, inside in ((index - plane, k > 0), (index + plane, k < n_k - 1), (index - n_i, j > 0),
                                  (index + n_i, j < n_j - 1), (index - 1, i > 0), (index + 1, i < n_i - 1)):
            if inside and flat_mask[neighbour] and not flat_seen[neighbour]:
                flat_seen[neighbour] = True
                stack[top] = neighbour
                top += 1
    return size


@numba.njit(cache=True, nogil=True)
def piece_at(mask, k, j, i):
    """The 6-connected piece of a C-contiguous ``mask`` holding voxel (k, j, i), and its voxel count."""
    seen = np.zeros_like(mask)
    if not mask[k, j, i]:
        return seen, 0
    stack = np.empty(mask.size, np.int64)
    size = _fill_from(mask, seen, (k * mask.shape[1] + j) * mask.shape[2] + i, stack)
    return seen, size


@numba.njit(cache=True, nogil=True)
def count_pieces(mask):
    """Number of 6-connected pieces of a C-contiguous ``mask`` (``ndimage.label``'s count, no label array)."""
    seen = np.zeros_like(mask)
    stack = np.empty(mask.size, np.int64)
    flat_mask, flat_seen = mask.reshape(mask.size), seen.reshape(seen.size)
    pieces = 0
    for index in range(mask.size):
        if flat_mask[index] and not flat_seen[index]:
            _fill_from(mask, seen, index, stack)
            pieces += 1
    return pieces


@numba.njit(cache=True, nogil=True)
def _eroded(mask, k, j, i):
    """True when voxel (k, j, i) and its six face neighbours are in ``mask`` (outside the box: not)."""
    n_k, n_j, n_i = mask.shape
    if k == 0 or j == 0 or i == 0 or k == n_k - 1 or j == n_j - 1 or i == n_i - 1:
        return False
    return (mask[k - 1, j, i] and mask[k + 1, j, i] and mask[k, j - 1, i] and mask[k, j + 1, i]
            and mask[k, j, i - 1] and mask[k, j, i + 1])


@numba.njit(cache=True, nogil=True)
def _near_outside(liver, k, j, i):
    """True when voxel (k, j, i) or a face neighbour inside the box is not liver."""
    if not liver[k, j, i]:
        return True
    n_k, n_j, n_i = liver.shape
    return ((k > 0 and not liver[k - 1, j, i]) or (k < n_k - 1 and not liver[k + 1, j, i])
            or (j > 0 and not liver[k, j - 1, i]) or (j < n_j - 1 and not liver[k, j + 1, i])
            or (i > 0 and not liver[k, j, i - 1]) or (i < n_i - 1 and not liver[k, j, i + 1]))


@numba.njit(cache=True, nogil=True)
def _difference(new, k0, j0, i0, k1, j1, i1, steps, spacing_mm):
    """(new[1] - new[0]) / distance in mm between two voxels ``steps`` apart (at least one)."""
    return (np.float64(new[k1, j1, i1]) - np.float64(new[k0, j0, i0])) / (max(steps, 1) * spacing_mm)


@numba.njit(cache=True, nogil=True)
def _gradient(new, k, j, i, spacing_kji):
    """HU gradient magnitude (HU/mm) at one voxel, by central differences (one-sided at the box's edge)."""
    n_k, n_j, n_i = new.shape
    k0, k1 = max(k - 1, 0), min(k + 1, n_k - 1)
    j0, j1 = max(j - 1, 0), min(j + 1, n_j - 1)
    i0, i1 = max(i - 1, 0), min(i + 1, n_i - 1)
    g_k = _difference(new, k0, j, i, k1, j, i, k1 - k0, spacing_kji[0])
    g_j = _difference(new, k, j0, i, k, j1, i, j1 - j0, spacing_kji[1])
    g_i = _difference(new, k, j, i0, k, j, i1, i1 - i0, spacing_kji[2])
    return np.sqrt(g_k * g_k + g_j * g_j + g_i * g_i)


@numba.njit(cache=True, nogil=True)
def _tumor_stats(new, label, liver, vessels, spacing_kji):
    """Core mean/SD, edge gradient, surface share and vessel overlap of a tumor over its tight box.

    The core is the label eroded by one voxel (the whole label when that leaves fewer than 8 voxels),
    the edge the label's voxels that erosion removes; one pass replaces a handful of box-sized arrays.
    """
    n_k, n_j, n_i = label.shape
    core_count = 0
    for k in range(n_k):
        for j in range(n_j):
            for i in range(n_i):
                if label[k, j, i] and _eroded(label, k, j, i):
                    core_count += 1
    whole_core = core_count < 8
    core_sum = 0.0
    core_n = edge_n = surface_n = voxels = on_vessels = 0
    gradient_sum = 0.0
    for k in range(n_k):
        for j in range(n_j):
            for i in range(n_i):
                if not label[k, j, i]:
                    continue
                voxels += 1
                on_vessels += vessels[k, j, i]
                eroded = _eroded(label, k, j, i)
                if eroded or whole_core:
                    core_sum += new[k, j, i]
                    core_n += 1
                if not eroded:
                    edge_n += 1
                    gradient_sum += _gradient(new, k, j, i, spacing_kji)
                    surface_n += _near_outside(liver, k, j, i)
    core_mean = core_sum / core_n
    squares = 0.0
    for k in range(n_k):
        for j in range(n_j):
            for i in range(n_i):
                if label[k, j, i] and (whole_core or _eroded(label, k, j, i)):
                    squares += (new[k, j, i] - core_mean) ** 2
    core_std = np.sqrt(squares / core_n) if core_n > 1 else np.nan
    edge_gradient = gradient_sum / edge_n if edge_n else np.nan
    return core_mean, core_std, edge_gradient, surface_n / max(edge_n, 1), on_vessels / max(voxels, 1)


def realism_stats(new: np.ndarray, label: np.ndarray, liver: np.ndarray, vessels: np.ndarray,
                  signed_mm: np.ndarray, spacing_ijk: np.ndarray, others: np.ndarray | None = None) -> RealismStats:
    """Statistics over one tumor's box: ``new`` HU, its ``label``, the liver and the original vessels.

    ``signed_mm`` (distance to the tumor's outline, negative inside) picks the parenchyma shell
    2-6 mm outside the tumor for the contrast. Computed by compiled kernels: scipy's morphology and
    labelling cost more in set-up than the work on one tumor's small box.
    """
    label = label.astype(bool, copy=False)
    if not label.any():
        nan = float("nan")
        return RealismStats(nan, nan, nan, nan, 0, nan, nan, nan, nan)
    others = np.zeros(1, bool) if others is None else others.ravel()
    shell_mean, shell_std, shell_count = _shell_mean_std(new.ravel(), liver.ravel(), vessels.ravel(),
                                                         signed_mm.ravel(), others, *SHELL_MM)
    # everything else only on the tumor's own bounding box (plus one voxel)
    low, high = mask_bounds(label)
    box = tuple(slice(max(int(lo) - 1, 0), min(int(hi) + 1, n)) for lo, hi, n in zip(low, high, label.shape))
    tight = np.ascontiguousarray(label[box])
    core_mean, core_std, edge_gradient, surface_share, vessel_overlap = _tumor_stats(
        np.ascontiguousarray(new[box]), tight, np.ascontiguousarray(liver[box]), np.ascontiguousarray(vessels[box]),
        np.asarray(spacing_ijk[::-1], np.float64))
    components = count_pieces(tight)
    spacing = np.asarray(spacing_ijk, np.float64)
    return RealismStats(
        sphericity=sphericity(tight, spacing),
        core_mean_hu=float(core_mean),
        contrast_hu=float(core_mean - shell_mean),
        tumor_std_hu=float(core_std),
        parenchyma_std_hu=float(shell_std) if shell_count > 1 else float("nan"),
        edge_hu_per_mm=float(edge_gradient),
        components=int(components),
        surface_share=float(surface_share),
        vessel_overlap=float(vessel_overlap),
    )


#: Voxel faces overestimate a smooth surface's area by 3/2 on average (each axis sees the surface's
#: projection, and the mean |cosine| of isotropic normals is 1/2): Cauchy's projection formula.
FACE_AREA_BIAS = 1.5


def sphericity(label: np.ndarray, spacing_ijk: np.ndarray) -> float:
    """pi^(1/3) (6 V)^(2/3) / A of a voxel mask: area from its exposed faces, corrected for their bias."""
    label = np.pad(label.astype(bool, copy=False), 1)
    si, sj, sk = (float(v) for v in spacing_ijk)
    faces = (np.count_nonzero(label[1:] != label[:-1]) * si * sj
             + np.count_nonzero(label[:, 1:] != label[:, :-1]) * si * sk
             + np.count_nonzero(label[:, :, 1:] != label[:, :, :-1]) * sj * sk)
    if faces == 0:
        return float("nan")
    volume = np.count_nonzero(label) * si * sj * sk
    return float(np.pi ** (1 / 3) * (6.0 * volume) ** (2 / 3) / (faces / FACE_AREA_BIAS))
