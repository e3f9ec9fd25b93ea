"""The liver a tumor goes into: validation, boxes of its mask, and a coarse depth map for placement.

Everything per tumor reads only a box of the mask; the whole-liver work (its bounding box and a
coarse depth map, needed only to draw random locations) is done once, lazily, and cached.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsynth.errors import InputError
from medsynth.volume import LabelMap, Volume

#: In-plane stride (mm) of the coarse depth map used to draw random tumor locations.
DEPTH_MAP_MM = 5.0


class LiverContext:
    """A CT in HU and its liver mask on the same grid; reuse it for many tumors or variants."""

    def __init__(self, ct: Volume, liver: LabelMap | Volume | np.ndarray | None, liver_label: int | str | None = None):
        if ct is None:
            raise InputError("No CT given. Load a CT scan in Hounsfield units.")
        _require_hu(ct)
        if liver is None:
            raise InputError(
                "No liver mask given. Pass a liver segmentation (for example TotalSegmentator's, "
                "label 5) or a binary liver mask on the CT's grid."
            )
        if isinstance(liver, np.ndarray):
            if liver.shape != ct.array.shape:
                raise InputError(
                    f"The liver mask array has shape {liver.shape} but the CT has {ct.array.shape} ([k, j, i]). "
                    "Pass a mask on the CT's grid or a LabelMap with its geometry."
                )
            liver = Volume(liver, ct.ijk_to_ras)
        ct.require_same_grid(liver, what="liver mask")
        self.ct = ct
        self.spacing = ct.spacing
        # voxels per mm of a sphere's reach along i, j and k (oblique grids too): sizes each tumor's box
        self.voxels_per_mm = np.linalg.norm(ct.ras_to_ijk[:3, :3], axis=1)
        self._labels = liver.array
        self.liver_value = self._resolve_label(liver, liver_label)
        self._bbox: tuple[slice, slice, slice] | None = None
        self._bbox_mask: np.ndarray | None = None  # the liver mask over its bounding box, once known
        self._depth: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._max_depth: float | None = None

    def _resolve_label(self, liver: Volume, liver_label: int | str | None) -> int | None:
        """The label value meaning liver (None: any non-zero voxel of a binary mask)."""
        if isinstance(liver_label, str):
            if not isinstance(liver, LabelMap) or liver_label not in liver.table:
                raise InputError(f"The label map has no label named {liver_label!r}. Pass the liver's label value.")
            return liver.table.value(liver_label)
        if liver_label is not None:
            return int(liver_label)
        if self._labels.dtype == bool:
            return None
        if isinstance(liver, LabelMap) and "liver" in liver.table:
            return liver.table.value("liver")
        return None if liver.array.dtype == bool else 1

    # --- masks -------------------------------------------------------------------------------
    def mask(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """The liver mask over a box [k, j, i] (a fresh array).

        Once the bounding box is known, boxes inside it are copied from the cached mask: cheaper than
        comparing labels again, above all for strided boxes.
        """
        if self._bbox_mask is not None and all(
                b.start is not None and b.stop is not None and b.start >= o.start and b.stop <= o.stop
                for b, o in zip(box, self._bbox)):
            return self._bbox_mask[tuple(slice(b.start - o.start, b.stop - o.start, b.step)
                                         for b, o in zip(box, self._bbox))].copy()
        block = self._labels[box]
        return block.astype(bool) if self.liver_value is None else block == self.liver_value

    def bbox_mask(self) -> tuple[np.ndarray, np.ndarray]:
        """The liver mask over its bounding box and the box's first voxel [k, j, i] (computed once)."""
        box = self.bounding_box()
        return self._bbox_mask, np.array([b.start for b in box], np.int64)

    def contains_ijk(self, ijk: np.ndarray) -> bool:
        index = np.rint(ijk).astype(int)
        if np.any(index < 0) or np.any(index >= np.array(self.ct.shape_ijk)):
            return False
        return bool(self.mask((slice(index[2], index[2] + 1), slice(index[1], index[1] + 1),
                               slice(index[0], index[0] + 1))).any())

    def require_not_empty(self) -> None:
        self.bounding_box()

    def bounding_box(self) -> tuple[slice, slice, slice]:
        """Bounding box [k, j, i] of the liver (one pass over the label map, cached)."""
        if self._bbox is None:
            full = self.mask((slice(None),) * 3)
            if not full.any():
                what = "non-zero voxels" if self.liver_value is None else f"voxels of label {self.liver_value}"
                present = np.unique(self._labels[:: 4, :: 4, :: 4])
                raise InputError(
                    f"The liver mask is empty: it has no {what} (labels present: "
                    f"{present[present != 0][:12].tolist()}). Choose the liver's label (TotalSegmentator: 5) "
                    "or segment the liver first (TotalSegmentator extension, Segment Editor)."
                )
            bounds = []
            for axis in range(3):
                hits = np.flatnonzero(full.any(axis=tuple(a for a in range(3) if a != axis)))
                bounds.append(slice(int(hits[0]), int(hits[-1]) + 1))
            self._bbox = tuple(bounds)
            self._bbox_mask = np.ascontiguousarray(full[self._bbox])
        return self._bbox

    def depth_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coarse depth below the liver surface (mm) with the [k, j, i] voxel index of each coarse cell."""
        if self._depth is None:
            box = self.bounding_box()
            strides = [max(1, int(round(DEPTH_MAP_MM / self.spacing[2 - axis]))) for axis in range(3)]
            coarse_box = tuple(slice(b.start + s // 2, b.stop, s) for b, s in zip(box, strides))
            coarse = np.pad(self.mask(coarse_box), 1)
            sampling = [self.spacing[2 - axis] * strides[axis] for axis in range(3)]
            depth = ndimage.distance_transform_edt(coarse, sampling=sampling)[1:-1, 1:-1, 1:-1].astype(np.float32)
            starts = np.array([b.start for b in coarse_box])
            self._depth = (depth, starts, np.array(strides))
        return self._depth

    def max_depth_mm(self) -> float:
        """Depth (mm) of the liver's deepest point (cached: asked once per placement attempt)."""
        if self._max_depth is None:
            self._max_depth = float(self.depth_map()[0].max())
        return self._max_depth

    def sample_centres(self, rng: np.random.Generator, min_depth_mm: float, n: int) -> np.ndarray:
        """Up to ``n`` random voxel indices [k, j, i] at least ``min_depth_mm`` below the surface."""
        depth, starts, strides = self.depth_map()
        cells = np.flatnonzero(depth.ravel() >= min_depth_mm)
        if cells.size == 0:
            return np.zeros((0, 3), int)
        chosen = rng.choice(cells, size=min(n, cells.size), replace=False)
        index = np.stack(np.unravel_index(chosen, depth.shape), axis=1)
        jitter = rng.integers(-(strides // 2), strides // 2 + 1, size=index.shape)
        voxels = starts + index * strides + jitter
        return np.clip(voxels, 0, np.array(self.ct.array.shape) - 1)


def _require_hu(ct: Volume) -> None:
    """NotHUError unless ``ct`` is a CT in HU (checked on a sample: cheap on big scans)."""
    step = max(1, int(round((ct.array.size / 300_000) ** (1 / 3))))
    sample = Volume(np.ascontiguousarray(ct.array[::step, ::step, ::step]), ct.ijk_to_ras, ct.metadata)
    sample.require_hu()
