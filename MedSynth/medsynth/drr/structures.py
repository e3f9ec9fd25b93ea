"""Projected labels: 2D masks and area-density maps of 3D structures, with a DRR's own geometry.

A structure (a tumor, the liver, the bones) is marched by the same ray marcher as the DRR, so
its projection lines up with the radiograph pixel for pixel:

- the **thickness** map marches the binary mask (1 inside, 0 outside): each pixel's path length
  through the structure (mm); the 2D mask is where that path is longer than half a voxel;
- the **area-density** map marches the CT's mass density inside the structure only (g/cm^2):
  what the structure adds to the pixel's attenuation.

Each structure is cropped to its bounding box (plus one voxel) before it is packed, so a small
structure's march touches only the rays that cross its box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medsynth.drr.materials import Material
from medsynth.drr.prepare import PreparedVolume, padded_empty
from medsynth.errors import InputError
from medsynth.geometry import CArm

#: The pseudo-material of a projected structure (mu/rho 1: its "area density" is what was marched).
STRUCTURE = Material("structure", (), 1.0, "a projected label-map structure")
#: cm -> mm: the marcher integrates per cm (densities in g/cm^3 give g/cm^2).
MM_PER_CM = 10.0


@dataclass
class StructureProjection:
    """One structure in one view: thickness (mm), mask (uint8) and optionally area density (g/cm^2)."""

    name: str
    thickness_mm: np.ndarray
    mask: np.ndarray
    area_density: np.ndarray | None = None


@dataclass
class PreparedStructure:
    name: str
    voxels: int
    thickness: PreparedVolume | None  # None: an empty structure (projects to zeros)
    density: PreparedVolume | None
    threshold_mm: float
    with_density: bool = False


def _packed(values: np.ndarray) -> np.ndarray:
    """A padded float32 volume of ``values`` with material bits 0 (the kernel's packing)."""
    from medsynth.drr.kernels.packing import merge_bits

    out = padded_empty(values.shape)
    out[...] = values
    merge_bits(out.view(np.uint32), np.zeros(values.shape, np.uint8))
    return out


def _box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The [k, j, i] bounding box of ``mask`` grown by one voxel (so interpolation falls off inside it)."""
    if not mask.any():
        return None
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(int(present[0]) - 1, 0), min(int(present[-1]) + 2, mask.shape[axis])))
    return tuple(box)


def prepare_structure(name: str, mask: np.ndarray, ijk_to_ras: np.ndarray, density: np.ndarray | None = None
                      ) -> PreparedStructure:
    """Pack one binary structure (and, with ``density``, its mass density in g/cm^3) for marching."""
    mask = np.asarray(mask, dtype=bool)
    if density is not None and density.shape != mask.shape:
        raise InputError(f"Structure {name!r}: its mask {mask.shape} and the density {density.shape} differ in shape.")
    spacing = np.linalg.norm(np.asarray(ijk_to_ras)[:3, :3], axis=0)
    threshold = 0.5 * float(spacing.min())
    box = _box(mask)
    if box is None:
        return PreparedStructure(name, 0, None, None, threshold, density is not None)
    matrix = np.array(ijk_to_ras, dtype=float)
    start_ijk = np.array([box[2].start, box[1].start, box[0].start], dtype=float)
    matrix[:3, 3] = matrix[:3, :3] @ start_ijk + matrix[:3, 3]
    inside = mask[box]
    thickness = PreparedVolume(_packed(inside.astype(np.float32)), matrix, [STRUCTURE], "structure", inside.shape[::-1])
    dense = None
    if density is not None:
        values = np.where(inside, density[box], np.float32(0.0)).astype(np.float32)
        dense = PreparedVolume(_packed(values), matrix, [STRUCTURE], "structure", inside.shape[::-1])
    return PreparedStructure(name, int(inside.sum()), thickness, dense, threshold, density is not None)


@dataclass
class StructureProjector:
    """Prepared structures of one CT; ``project(carm)`` gives each one's maps for a view."""

    structures: list[PreparedStructure] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.structures]

    def project(self, carm: CArm, device: str = "cpu") -> list[StructureProjection]:
        from medsynth.drr.projector import march

        shape = (int(carm.detector_rows), int(carm.detector_columns))
        results = []
        for structure in self.structures:
            if structure.thickness is None:
                zeros = np.zeros(shape, np.float32)
                results.append(StructureProjection(structure.name, zeros, np.zeros(shape, np.uint8),
                                                   zeros.copy() if structure.with_density else None))
                continue
            thickness = march(structure.thickness, carm, device)[..., 0] * np.float32(MM_PER_CM)
            area = None if structure.density is None else np.ascontiguousarray(march(structure.density, carm, device)[..., 0])
            mask = (thickness > structure.threshold_mm).astype(np.uint8)
            results.append(StructureProjection(structure.name, np.ascontiguousarray(thickness), mask, area))
        return results


def ct_density(prepared: PreparedVolume) -> np.ndarray:
    """The mass density (g/cm^3) a prepared CT marches, as a plain [k, j, i] float32 array."""
    from medsynth.drr.kernels.packing import CLEAR_ALL

    return (prepared.bits & CLEAR_ALL).view(np.float32)


def structure_projector(masks: dict[str, np.ndarray], ijk_to_ras: np.ndarray,
                        density: np.ndarray | None = None) -> StructureProjector:
    """A projector for ``{name: bool mask on the CT grid}``; ``density`` (g/cm^3) adds area-density maps."""
    return StructureProjector([prepare_structure(name, mask, ijk_to_ras, density) for name, mask in masks.items()])
