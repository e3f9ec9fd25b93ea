"""The organ a tumor goes into (liver, pancreas, kidneys or any mask): validation, boxes of its mask,
and a coarse depth map for placement.

Everything per tumor reads only a box of the mask; the whole-organ work (its bounding box and a
coarse depth map, needed only to draw random locations) is done once, lazily, and cached.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from typing import Sequence

from medsynth.errors import InputError
from medsynth.volume import LabelMap, Volume

#: Neighbour differences understate correlated CT noise: their MAD / sqrt(2) times this is the noise SD.
NEIGHBOUR_NOISE_SCALE = 1.45
#: In-plane stride (mm) of the coarse depth map used to draw random tumor locations.
DEPTH_MAP_MM = 5.0


#: TotalSegmentator label names of each organ (an organ may have several: the two kidneys).
ORGAN_LABEL_NAMES: dict[str, tuple[str, ...]] = {
    "liver": ("liver",),
    "pancreas": ("pancreas",),
    "kidney": ("kidney_left", "kidney_right", "kidney"),
}
#: TotalSegmentator (v2) label values, used when a label map comes without its label table.
TOTALSEGMENTATOR_VALUES: dict[str, tuple[int, ...]] = {"liver": (5,), "pancreas": (7,), "kidney": (2, 3)}


def organ_label_values(labels: Volume, organ: str,
                       label: int | str | Sequence[int] | None = None) -> tuple[int, ...] | None:
    """The label values meaning ``organ`` in ``labels`` (None: any non-zero voxel of a binary mask).

    An explicit ``label`` (value, values or name) wins; then the label table's names; a binary mask
    is the organ itself; a multi-label map without names gets TotalSegmentator's values.
    """
    table = labels.table if isinstance(labels, LabelMap) else None
    if isinstance(label, str):
        if table is None or label not in table:
            raise InputError(f"The label map has no label named {label!r}. Pass the {organ}'s label value.")
        return (table.value(label),)
    if label is not None:
        return tuple(int(v) for v in np.atleast_1d(label))
    if labels.array.dtype == bool:
        return None
    if table is not None and table.names:
        found = tuple(table.value(name) for name in ORGAN_LABEL_NAMES.get(organ, (organ,)) if name in table)
        if found:
            return found
        if len(table.names) > 1:
            raise InputError(
                f"The label map has no {organ} label (its labels: {', '.join(list(table.names.values())[:8])}...). "
                f"Segment the {organ} first (TotalSegmentator), or pass the {organ}'s label value."
            )
    if organ == "liver" or labels.array.max() <= 1:
        return (1,)  # a one-organ mask without names (0 background, 1 organ)
    return TOTALSEGMENTATOR_VALUES.get(organ, (1,))


class OrganContext:
    """A CT in HU and an organ mask on the same grid; reuse it for many tumors or variants."""

    def __init__(self, ct: Volume, mask: LabelMap | Volume | np.ndarray | None, label: int | str | None = None,
                 organ: str = "liver"):
        if ct is None:
            raise InputError("No CT given. Load a CT scan in Hounsfield units.")
        _require_hu(ct)
        self.organ = organ
        if mask is None:
            example = {"liver": "label 5", "pancreas": "label 7", "kidney": "labels 2 and 3"}.get(organ, "")
            raise InputError(
                f"No {organ} mask given. Pass a {organ} segmentation (for example TotalSegmentator's, "
                f"{example}) or a binary {organ} mask on the CT's grid."
            )
        if isinstance(mask, np.ndarray):
            if mask.shape != ct.array.shape:
                raise InputError(
                    f"The {organ} mask array has shape {mask.shape} but the CT has {ct.array.shape} ([k, j, i]). "
                    "Pass a mask on the CT's grid or a LabelMap with its geometry."
                )
            mask = Volume(mask, ct.ijk_to_ras)
        ct.require_same_grid(mask, what=f"{organ} mask")
        self.ct = ct
        self.spacing = ct.spacing
        # voxels per mm of a sphere's reach along i, j and k (oblique grids too): sizes each tumor's box
        self.voxels_per_mm = np.linalg.norm(ct.ras_to_ijk[:3, :3], axis=1)
        self._labels = mask.array
        self.values = organ_label_values(mask, organ, label)
        self._bbox: tuple[slice, slice, slice] | None = None
        self._bbox_mask: np.ndarray | None = None  # the organ mask over its bounding box, once known
        self._depth: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._max_depth: float | None = None
        self._noise: float | None = None
        self._by_depth: tuple[np.ndarray, np.ndarray] | None = None

    def scan_noise_hu(self) -> float:
        """The scan's noise SD (HU) around the organ, from differences of in-plane neighbours (cached).

        Outside the liver a tumor carries synthetic noise this strong instead of the organ's own
        structure (renal cortex, medulla and hilum, pancreatic lobules). The median absolute difference
        over the soft tissue of the organ's box ignores the few edges; neighbours share part of their
        noise, so the value is scaled by 1.45 (measured on LIDC-IDRI-0001's liver and spleen against a
        1.5 mm high-pass residual).
        """
        if self._noise is None:
            box = self.bounding_box()
            block = np.asarray(self.ct.array[box], np.float32)
            difference = block[:, :, 1:] - block[:, :, :-1]
            soft = ((block[:, :, 1:] > -200) & (block[:, :, 1:] < 300) & (block[:, :, :-1] > -200)
                    & (block[:, :, :-1] < 300))
            values = difference[soft][:: max(1, int(soft.sum()) // 200_000)]
            mad = 1.4826 * float(np.median(np.abs(values - np.median(values)))) if values.size > 20 else 10.0
            self._noise = max(1.0, NEIGHBOUR_NOISE_SCALE * mad / np.sqrt(2.0))
        return self._noise

    @property
    def liver_value(self) -> int | None:
        """The organ's label value when it has one (kept for liver callers)."""
        return None if self.values is None else self.values[0]

    # --- masks -------------------------------------------------------------------------------
    def mask(self, box: tuple[slice, slice, slice]) -> np.ndarray:
        """The organ mask over a box [k, j, i] (a fresh array).

        Once the bounding box is known, boxes inside it are copied from the cached mask: cheaper than
        comparing labels again, above all for strided boxes.
        """
        if self._bbox_mask is not None and all(
                b.start is not None and b.stop is not None and b.start >= o.start and b.stop <= o.stop
                for b, o in zip(box, self._bbox)):
            return self._bbox_mask[tuple(slice(b.start - o.start, b.stop - o.start, b.step)
                                         for b, o in zip(box, self._bbox))].copy()
        block = self._labels[box]
        if self.values is None:
            return block.astype(bool)
        if len(self.values) == 1:
            return block == self.values[0]
        return np.isin(block, self.values)

    def bbox_mask(self) -> tuple[np.ndarray, np.ndarray]:
        """The organ mask over its bounding box and the box's first voxel [k, j, i] (computed once)."""
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
        """Bounding box [k, j, i] of the organ (one pass over the label map, cached)."""
        if self._bbox is None:
            full = self.mask((slice(None),) * 3)
            if not full.any():
                what = ("non-zero voxels" if self.values is None
                        else f"voxels of label {', '.join(str(v) for v in self.values)}")
                present = np.unique(self._labels[:: 4, :: 4, :: 4])
                usual = ", ".join(str(v) for v in TOTALSEGMENTATOR_VALUES.get(self.organ, (1,)))
                raise InputError(
                    f"The {self.organ} mask is empty: it has no {what} (labels present: "
                    f"{present[present != 0][:12].tolist()}). Choose the {self.organ}'s label (TotalSegmentator: "
                    f"{usual}) or segment the {self.organ} first (TotalSegmentator extension, Segment Editor)."
                )
            bounds = []
            for axis in range(3):
                hits = np.flatnonzero(full.any(axis=tuple(a for a in range(3) if a != axis)))
                bounds.append(slice(int(hits[0]), int(hits[-1]) + 1))
            self._bbox = tuple(bounds)
            self._bbox_mask = np.ascontiguousarray(full[self._bbox])
        return self._bbox

    def depth_map(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coarse depth below the organ surface (mm) with the [k, j, i] voxel index of each coarse cell."""
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
        """Depth (mm) of the organ's deepest point (cached: asked once per placement attempt)."""
        if self._max_depth is None:
            self._max_depth = float(self.depth_map()[0].max())
        return self._max_depth

    def _cells_by_depth(self) -> tuple[np.ndarray, np.ndarray]:
        """Coarse cells from the deepest, and their depths negated (ascending): for ``searchsorted``."""
        if self._by_depth is None:
            depth = self.depth_map()[0].ravel()
            order = np.argsort(-depth, kind="stable")
            self._by_depth = (order, -depth[order])
        return self._by_depth

    def sample_centres(self, rng: np.random.Generator, min_depth_mm: float, n: int) -> np.ndarray:
        """Up to ``n`` random voxel indices [k, j, i] at least ``min_depth_mm`` below the surface.

        The cells deep enough are a prefix of the cells sorted by depth (sorted once): no pass over
        the depth map per call, and the draw picks positions in that prefix.
        """
        depth, starts, strides = self.depth_map()
        order, negated = self._cells_by_depth()
        deep_enough = int(np.searchsorted(negated, -min_depth_mm, side="right"))
        if deep_enough == 0:
            return np.zeros((0, 3), int)
        chosen = order[rng.choice(deep_enough, size=min(n, deep_enough), replace=False)]
        index = np.stack(np.unravel_index(chosen, depth.shape), axis=1)
        jitter = rng.integers(-(strides // 2), strides // 2 + 1, size=index.shape)
        voxels = starts + index * strides + jitter
        return np.clip(voxels, 0, np.array(self.ct.array.shape) - 1)


def _require_hu(ct: Volume) -> None:
    """NotHUError unless ``ct`` is a CT in HU (checked on a sample: cheap on big scans)."""
    step = max(1, int(round((ct.array.size / 300_000) ** (1 / 3))))
    sample = Volume(np.ascontiguousarray(ct.array[::step, ::step, ::step]), ct.ijk_to_ras, ct.metadata)
    sample.require_hu()
