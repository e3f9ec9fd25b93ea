"""Upstream duct dilation of a pancreatic tumor: a fluid-filled tube from the tumor towards the tail.

A tumor in the pancreas blocks the main duct; the duct upstream (towards the tail, the patient's
left) widens beyond its normal 3 mm (Al-Hawary et al. 2014). The tube follows the gland's centre
line: the pancreas is cut into slabs across its long axis and each slab's centroid is one point of
the path. Only pancreas voxels outside the tumor change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

#: Spacing (mm) of the slabs along the gland's long axis, and of the path's samples.
SLAB_MM = 3.0
SAMPLE_MM = 0.5


@dataclass
class Duct:
    """A drawn duct: the path (RAS mm), its radius and its fluid HU."""

    path_ras: np.ndarray  # (N, 3)
    radius_mm: float
    fluid_hu: float

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.diff(self.path_ras, axis=0), axis=1).sum()) if len(self.path_ras) > 1 else 0.0


def centre_line(organ_bbox_mask: np.ndarray, box_start_kji: np.ndarray, ijk_to_ras: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Slab centroids along the gland's long axis (RAS mm, ordered from the head to the tail), and the axis."""
    voxels = np.argwhere(organ_bbox_mask)
    if len(voxels) > 40_000:
        voxels = voxels[rng.choice(len(voxels), 40_000, replace=False)]
    ijk = (voxels + box_start_kji)[:, ::-1].astype(float)
    points = ijk @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    centre = points.mean(axis=0)
    axis = np.linalg.svd(points - centre, full_matrices=False)[2][0]
    if axis[0] > 0:  # point to the tail: the patient's left, decreasing R
        axis = -axis
    along = (points - centre) @ axis
    edges = np.arange(along.min(), along.max() + SLAB_MM, SLAB_MM)
    which = np.digitize(along, edges)
    centroids = [points[which == slab].mean(axis=0) for slab in np.unique(which)
                 if np.count_nonzero(which == slab) >= 5]
    path = np.array(centroids)
    if len(path) >= 3:  # a gentle smoothing of the slab centroids
        path[1:-1] = 0.25 * path[:-2] + 0.5 * path[1:-1] + 0.25 * path[2:]
    return path, axis


def draw_duct(rng: np.random.Generator, line: np.ndarray, axis: np.ndarray,
              tumor_centre_ras: np.ndarray) -> Duct | None:
    """The duct from the tumor to the tail along the centre line: radius 1.5-3 mm, fluid 0-15 HU."""
    start = float((tumor_centre_ras - line.mean(axis=0)) @ axis)
    upstream = line[(line - line.mean(axis=0)) @ axis > start]
    if len(upstream) < 2:
        return None  # the tumor sits in the tail: nothing upstream
    path = np.vstack([tumor_centre_ras[None], upstream])
    # sample the polyline every SAMPLE_MM for distance queries
    samples = [path[0]]
    for a, b in zip(path[:-1], path[1:]):
        steps = max(1, int(np.ceil(np.linalg.norm(b - a) / SAMPLE_MM)))
        samples += [a + (b - a) * t for t in np.linspace(0, 1, steps + 1)[1:]]
    return Duct(np.array(samples), float(rng.uniform(1.5, 3.0)), float(rng.uniform(0.0, 15.0)))


def duct_box(duct: Duct, ras_to_ijk: np.ndarray, shape_kji: tuple[int, int, int], pad_mm: float = 2.0,
             voxels_per_mm: np.ndarray | None = None) -> tuple[slice, slice, slice]:
    """The [k, j, i] box of the volume holding the duct and its edge."""
    ijk = duct.path_ras @ ras_to_ijk[:3, :3].T + ras_to_ijk[:3, 3]
    reach = np.ceil((duct.radius_mm + pad_mm) * (voxels_per_mm if voxels_per_mm is not None else 1.0)) + 1
    low = np.maximum(np.floor(ijk.min(axis=0) - reach), 0).astype(int)
    high = np.minimum(np.ceil(ijk.max(axis=0) + reach) + 1, np.array(shape_kji[::-1])).astype(int)
    return tuple(slice(int(low[a]), int(high[a])) for a in (2, 1, 0))


def render_duct(old: np.ndarray, pancreas: np.ndarray, keep_out: np.ndarray, duct: Duct,
                box: tuple[slice, slice, slice], ijk_to_ras: np.ndarray,
                spacing_ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """New HU over the box and the duct's voxels: fluid inside the tube, the scan's grain kept."""
    k, j, i = np.nonzero(pancreas & ~keep_out)
    new = old.astype(np.float32, copy=True)
    lumen = np.zeros(old.shape, bool)
    if k.size == 0:
        return new, lumen
    ijk = np.stack([i + box[2].start, j + box[1].start, k + box[0].start], axis=1).astype(float)
    ras = ijk @ ijk_to_ras[:3, :3].T + ijk_to_ras[:3, 3]
    distance, _ = cKDTree(duct.path_ras).query(ras, distance_upper_bound=duct.radius_mm + 1.0)
    edge = 0.5
    weight = np.clip((duct.radius_mm + edge - distance) / (2 * edge), 0.0, 1.0)
    weight = weight * weight * (3 - 2 * weight)
    sigma = [min(1.0 / s, 3.0) for s in spacing_ijk[::-1]]
    grain = old - ndimage.gaussian_filter(old.astype(np.float32), sigma, truncate=2.0)
    values = old[k, j, i].astype(np.float32)
    new[k, j, i] = values + weight * (duct.fluid_hu + grain[k, j, i] - values)
    lumen[k, j, i] = distance <= duct.radius_mm
    return new, lumen
