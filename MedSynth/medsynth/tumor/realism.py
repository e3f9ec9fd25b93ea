"""Realism statistics of one synthetic tumor, measured on the CT after synthesis.

They let a dataset's tumors be checked and compared with the published method's known
behaviour (a fixed 33-73 HU darkening, nearly flat texture, fragments, flat cuts at the surface).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage


@dataclass
class RealismStats:
    contrast_hu: float  # tumor core mean minus surrounding parenchyma mean (negative: hypodense)
    tumor_std_hu: float  # HU standard deviation inside the tumor core (texture + scan noise)
    parenchyma_std_hu: float  # the same around the tumor, for reference
    edge_hu_per_mm: float  # mean HU gradient magnitude on the tumor's boundary voxels
    components: int  # 6-connected pieces of the tumor label (must be 1)
    surface_share: float  # share of boundary voxels touching the liver's surface
    vessel_overlap: float  # share of tumor voxels that were vessel voxels before

    def to_dict(self) -> dict:
        """Rounded values; None where a statistic is undefined (valid JSON, unlike NaN)."""
        return {key: ((round(value, 4) if np.isfinite(value) else None) if isinstance(value, float) else value)
                for key, value in asdict(self).items()}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _std(values: np.ndarray) -> float:
    return float(values.std()) if values.size > 1 else float("nan")


def gradient_at(array: np.ndarray, index: tuple[np.ndarray, ...], spacing_ijk: np.ndarray) -> np.ndarray:
    """HU gradient magnitude (HU/mm) by central differences at the given [k, j, i] voxels only."""
    squared = np.zeros(index[0].shape, np.float64)
    for axis in range(3):
        up = list(index)
        down = list(index)
        up[axis] = np.minimum(index[axis] + 1, array.shape[axis] - 1)
        down[axis] = np.maximum(index[axis] - 1, 0)
        step = (up[axis] - down[axis]).clip(min=1) * spacing_ijk[2 - axis]
        squared += ((array[tuple(up)].astype(np.float64) - array[tuple(down)]) / step) ** 2
    return np.sqrt(squared)


def realism_stats(new: np.ndarray, label: np.ndarray, liver: np.ndarray, vessels: np.ndarray,
                  signed_mm: np.ndarray, spacing_ijk: np.ndarray, others: np.ndarray | None = None) -> RealismStats:
    """Statistics over one tumor's box: ``new`` HU, its ``label``, the liver and the original vessels.

    ``signed_mm`` (distance to the tumor's outline, negative inside) picks the parenchyma shell
    2-6 mm outside the tumor for the contrast.
    """
    label = label.astype(bool)
    if not label.any():
        nan = float("nan")
        return RealismStats(nan, nan, nan, nan, 0, nan, nan)
    shell = liver & ~vessels & (signed_mm > 2.0) & (signed_mm <= 6.0)
    if others is not None:
        shell &= ~others
    shell_values = new[shell]
    # morphology only on the tumor's own bounding box (plus one voxel)
    box = []
    for axis in range(3):
        hits = np.flatnonzero(label.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(hits[0]) - 1, 0), min(int(hits[-1]) + 2, label.shape[axis])))
    box = tuple(box)
    tight, liver_t, new_t = label[box], liver[box], new[box]
    core = ndimage.binary_erosion(tight)
    if core.sum() < 8:
        core = tight
    inner_edge = tight & ~core if core is not tight else tight & ~ndimage.binary_erosion(tight)
    outside = ~liver_t
    near_outside = ndimage.binary_dilation(outside) if outside.any() else np.zeros_like(liver_t)
    boundary_count = max(int(inner_edge.sum()), 1)
    _, components = ndimage.label(tight)
    core_values = new_t[core]
    return RealismStats(
        contrast_hu=_mean(core_values) - _mean(shell_values),
        tumor_std_hu=_std(core_values),
        parenchyma_std_hu=_std(shell_values),
        edge_hu_per_mm=_mean(gradient_at(new_t, np.nonzero(inner_edge), spacing_ijk)),
        components=int(components),
        surface_share=float((inner_edge & near_outside).sum() / boundary_count),
        vessel_overlap=float((label & vessels).sum() / max(int(label.sum()), 1)),
    )
