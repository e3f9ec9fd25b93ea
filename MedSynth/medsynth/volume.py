"""Volumes and label maps: a voxel array that always travels with its geometry.

Conventions (the same as Slicer's ``slicer.util.arrayFromVolume``):

- ``array`` is indexed ``array[k, j, i]``: numpy C order with the I axis fastest in memory.
- ``ijk_to_ras`` is a 4x4 matrix mapping the column vector ``(i, j, k, 1)`` to RAS millimetres.
  Oriented (non axis-aligned) volumes are kept exactly; nothing here guesses an orientation.
- LPS appears only at file and DICOM boundaries (``medsynth.io``).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from medsynth.errors import GeometryError, GeometryMismatchError, InputError, NotHUError

#: Projection X-ray modalities (DICOM Modality): one 2D image (or a cine of them), never a CT volume.
RADIOGRAPH_MODALITIES = {
    "CR": "computed radiography", "DX": "digital X-ray", "MG": "mammography", "IO": "intra-oral X-ray",
    "PX": "panoramic X-ray", "RF": "fluoroscopy", "XA": "X-ray angiography", "RG": "radiographic imaging",
}

#: Matrix that flips between RAS and LPS (it is its own inverse).
RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class VolumeMetadata:
    """What a volume is, beyond its voxels."""

    modality: str | None = None  # DICOM modality: "CT", "MR", "SEG", ...
    units: str | None = None  # "HU" for CT intensities, None when unknown
    source: str | None = None  # file or folder it was read from
    extra: dict = field(default_factory=dict)


@dataclass
class Volume:
    """A 3D image: voxels ``array[k, j, i]`` plus the 4x4 IJK->RAS matrix and metadata."""

    array: np.ndarray
    ijk_to_ras: np.ndarray = field(default_factory=lambda: np.eye(4))
    metadata: VolumeMetadata = field(default_factory=VolumeMetadata)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise InputError(
                f"A volume needs a 3D voxel array, got shape {self.array.shape}. "
                "Add a slice axis for 2D images (array[np.newaxis])."
            )
        matrix = np.asarray(self.ijk_to_ras, dtype=np.float64)
        if matrix.shape != (4, 4) or abs(np.linalg.det(matrix[:3, :3])) < 1e-12:
            raise InputError("ijk_to_ras must be an invertible 4x4 matrix.")
        self.ijk_to_ras = matrix

    # --- geometry -------------------------------------------------------------------------
    @classmethod
    def from_spacing(
        cls,
        array: np.ndarray,
        spacing: Iterable[float] = (1.0, 1.0, 1.0),
        origin: Iterable[float] = (0.0, 0.0, 0.0),
        directions: np.ndarray | None = None,
        metadata: VolumeMetadata | None = None,
    ) -> "Volume":
        """Build a volume from spacing (i, j, k) in mm, RAS origin and a 3x3 direction matrix."""
        return cls(array, ijk_to_ras_matrix(spacing, origin, directions), metadata or VolumeMetadata())

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        """Number of voxels along I, J and K."""
        k, j, i = self.array.shape
        return (i, j, k)

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along I, J, K in millimetres."""
        return np.linalg.norm(self.ijk_to_ras[:3, :3], axis=0)

    @property
    def origin(self) -> np.ndarray:
        """RAS position of the centre of voxel (0, 0, 0)."""
        return self.ijk_to_ras[:3, 3].copy()

    @property
    def directions(self) -> np.ndarray:
        """Unit RAS directions of the I, J, K axes (as columns)."""
        return self.ijk_to_ras[:3, :3] / self.spacing

    @property
    def ras_to_ijk(self) -> np.ndarray:
        return np.linalg.inv(self.ijk_to_ras)

    @property
    def center_ras(self) -> np.ndarray:
        """RAS position of the volume's centre."""
        centre_ijk = (np.array(self.shape_ijk) - 1) / 2.0
        return self.ijk_to_ras_points(centre_ijk)

    def ijk_to_ras_points(self, ijk: np.ndarray) -> np.ndarray:
        """Map (..., 3) voxel coordinates (i, j, k) to RAS millimetres."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ self.ijk_to_ras[:3, :3].T + self.ijk_to_ras[:3, 3]

    def ras_to_ijk_points(self, ras: np.ndarray) -> np.ndarray:
        """Map (..., 3) RAS millimetres to continuous voxel coordinates (i, j, k)."""
        inverse = self.ras_to_ijk
        ras = np.asarray(ras, dtype=np.float64)
        return ras @ inverse[:3, :3].T + inverse[:3, 3]

    def same_grid(self, other: "Volume", tolerance_mm: float = 1e-3) -> bool:
        """True when both volumes have the same voxel grid (shape and IJK->RAS)."""
        if self.array.shape != other.array.shape:
            return False
        corners = np.array([[0, 0, 0], list(self.shape_ijk)], dtype=float)
        delta = self.ijk_to_ras_points(corners) - other.ijk_to_ras_points(corners)
        return bool(np.abs(delta).max() <= tolerance_mm)

    def require_same_grid(self, other: "Volume", what: str = "label map") -> None:
        """Raise a clear error when ``other`` (a mask or label map) is on another grid."""
        if not self.same_grid(other):
            raise GeometryMismatchError(
                f"The {what} does not lie on the CT's voxel grid: CT shape (i,j,k) {self.shape_ijk}, "
                f"spacing {np.round(self.spacing, 3).tolist()} mm, origin {np.round(self.origin, 2).tolist()}; "
                f"{what} shape {other.shape_ijk}, spacing {np.round(other.spacing, 3).tolist()} mm, "
                f"origin {np.round(other.origin, 2).tolist()}. Resample the {what} onto the CT "
                "(medsynth.io.resample_like, or Slicer's Resample Scalar/Vector/DWI Volume)."
            )

    def with_array(self, array: np.ndarray, **metadata_changes) -> "Volume":
        """A new volume on the same grid holding ``array``."""
        if array.shape != self.array.shape:
            raise InputError(f"Array shape {array.shape} differs from the volume's {self.array.shape}.")
        meta = dataclasses.replace(self.metadata, **metadata_changes)
        return Volume(array, self.ijk_to_ras.copy(), meta)

    # --- intensity checks -----------------------------------------------------------------
    def require_hu(self) -> None:
        """Raise NotHUError unless this looks like a CT in Hounsfield units."""
        modality = (self.metadata.modality or "").upper()
        if modality in RADIOGRAPH_MODALITIES:
            raise NotHUError(
                f"This image is a 2D radiograph ({modality}, {RADIOGRAPH_MODALITIES[modality]}), not a CT. "
                "A CT series is needed: load the CT's DICOM series (or a NIfTI/NRRD CT)."
            )
        if modality and modality != "CT":
            raise NotHUError(
                f"This volume's modality is {modality}, not CT: Hounsfield units are needed here. "
                "Load a CT scan."
            )
        if self.metadata.units and self.metadata.units != "HU":
            raise NotHUError(f"This volume's units are {self.metadata.units!r}, not HU. Load a CT in HU.")
        looks_like_hu(self.array, raise_error=True)


def looks_like_hu(array: np.ndarray, raise_error: bool = False) -> bool:
    """Heuristic: a body CT in HU contains air (about -1000) and no values far outside [-3100, 32000]."""
    sample = np.asarray(array).ravel()[:: max(1, array.size // 2_000_000)]
    low, high = np.percentile(sample, [0.5, 99.5]) if sample.size else (0.0, 0.0)
    problem = None
    if not np.issubdtype(sample.dtype, np.number) or sample.size == 0:
        problem = "it holds no numeric voxels"
    elif low > -500:
        problem = f"its darkest voxels are {low:.0f}, but air in HU is about -1000"
    elif float(sample.min()) < -3100 or float(sample.max()) > 32000:
        problem = f"its values span {float(sample.min()):.0f}..{float(sample.max()):.0f}, beyond the HU range"
    if problem and raise_error:
        raise NotHUError(
            f"This volume does not look like a CT in Hounsfield units: {problem}. "
            "If it is a CT saved without its rescale slope/intercept, rescale it to HU first; "
            "MR, PET or normalised images cannot be used here."
        )
    return problem is None


def ijk_to_ras_matrix(
    spacing: Iterable[float], origin: Iterable[float], directions: np.ndarray | None = None
) -> np.ndarray:
    """Compose a 4x4 IJK->RAS matrix from spacing, origin and a 3x3 direction matrix."""
    matrix = np.eye(4)
    rotation = np.eye(3) if directions is None else np.asarray(directions, dtype=np.float64)
    matrix[:3, :3] = rotation @ np.diag(np.asarray(list(spacing), dtype=np.float64))
    matrix[:3, 3] = np.asarray(list(origin), dtype=np.float64)
    return matrix


@dataclass
class LabelTable:
    """Names of the labels of a label map: a two-way mapping name <-> integer value."""

    names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_totalsegmentator_csv(cls, path: str | Path) -> "LabelTable":
        """Read TotalSegmentator's ``structures.csv`` (columns structure, id)."""
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or "structure" not in rows[0] or "id" not in rows[0]:
            raise InputError(f"{path} is not a label table: it needs the columns 'structure' and 'id'.")
        return cls({int(row["id"]): row["structure"] for row in rows})

    def value(self, name: str) -> int:
        """The label value of ``name`` (case-insensitive)."""
        for value, label_name in self.names.items():
            if label_name.lower() == name.lower():
                return value
        known = ", ".join(sorted(self.names.values())[:20])
        raise InputError(f"No label named {name!r}. Known labels include: {known}.")

    def name(self, value: int) -> str:
        return self.names.get(int(value), f"label_{int(value)}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n in self.names.values())

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class LabelMap(Volume):
    """An integer volume whose voxel values are labels named by ``table`` (0 = background)."""

    table: LabelTable = field(default_factory=LabelTable)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer):
            rounded = np.rint(self.array)
            if not np.array_equal(rounded, self.array):
                raise InputError("A label map must hold whole numbers; this one has fractional values.")
            self.array = rounded.astype(np.int32)

    @classmethod
    def from_volume(cls, volume: Volume, table: LabelTable | None = None) -> "LabelMap":
        meta = dataclasses.replace(volume.metadata, units=None)
        return cls(volume.array, volume.ijk_to_ras, meta, table or LabelTable())

    def present_labels(self) -> list[int]:
        """Label values present in the voxels, background excluded."""
        return [int(v) for v in np.unique(self.array) if v != 0]

    def mask(self, label: int | str) -> np.ndarray:
        """Boolean mask of one label, given by value or by name."""
        value = self.table.value(label) if isinstance(label, str) else int(label)
        return self.array == value


def reorient_like(volume: Volume, reference: Volume) -> Volume:
    """Permute and flip ``volume``'s axes (no resampling) so its axes point like ``reference``'s.

    Exact for volumes on the same physical grid stored in different axis orders, such as a
    NIfTI export of a DICOM series with a flipped row axis.
    """
    source_dirs = volume.directions
    target_dirs = reference.directions
    cosines = target_dirs.T @ source_dirs  # [target axis, source axis]
    permutation = np.argmax(np.abs(cosines), axis=1)
    if sorted(permutation.tolist()) != [0, 1, 2] or np.min(np.max(np.abs(cosines), axis=1)) < 0.99:
        raise GeometryMismatchError("The two volumes' axes are not aligned up to permutation and flips.")
    signs = np.sign(cosines[np.arange(3), permutation])
    # array axes are (k, j, i): array axis of IJK axis a is 2 - a
    array = np.transpose(volume.array, [2 - permutation[2 - ax] for ax in range(3)])
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, 3] = volume.ijk_to_ras[:3, 3]
    slices = [slice(None)] * 3
    shape_ijk = volume.shape_ijk
    for target_axis, source_axis in enumerate(permutation):
        column = volume.ijk_to_ras[:3, source_axis] * signs[target_axis]
        ijk_to_ras[:3, target_axis] = column
        if signs[target_axis] < 0:
            slices[2 - target_axis] = slice(None, None, -1)
            ijk_to_ras[:3, 3] += volume.ijk_to_ras[:3, source_axis] * (shape_ijk[source_axis] - 1)
    return Volume(np.ascontiguousarray(array[tuple(slices)]), ijk_to_ras, volume.metadata)


#: The display orientation of every picture and model slice: i -> patient left, j -> posterior,
#: k -> superior, so an axial slice array[k] shows the patient's right on the left, anterior up.
DISPLAY_IJK_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def display_oriented(volume: Volume, resample_oblique: bool = False) -> Volume:
    """``volume`` with its axes permuted/flipped into the display orientation (exact, no resampling).

    An oblique volume (axes more than a few degrees off the patient axes) cannot be permuted: with
    ``resample_oblique`` it is resampled onto an axis-aligned grid of its finest spacing (pictures),
    otherwise GeometryError says to resample it (models, whose slices must map back exactly).
    """
    try:
        return reorient_like(volume, Volume(np.zeros((1, 1, 1)), DISPLAY_IJK_TO_RAS))
    except GeometryMismatchError:
        if not resample_oblique:
            raise GeometryError(
                "The volume's axes are oblique to the patient axes, so it cannot be cut into axial slices "
                "exactly. Resample it onto an axis-aligned grid first (Slicer: Resample Scalar Volume; "
                "medsynth.io.resample_like)."
            ) from None
    from medsynth.io.files import resample_like

    spacing = float(volume.spacing.min())
    corners = volume.ijk_to_ras_points(np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, -1).T
                                       * (np.array(volume.shape_ijk) - 1))
    low, high = corners.min(axis=0), corners.max(axis=0)
    size = np.ceil((high - low) / spacing).astype(int) + 1
    matrix = DISPLAY_IJK_TO_RAS * np.array([spacing, spacing, spacing, 1.0])
    matrix[:3, 3] = [high[0], high[1], low[2]]
    grid = Volume(np.zeros(size[::-1], np.uint8), matrix)
    return resample_like(volume, grid, nearest=not np.issubdtype(volume.array.dtype, np.floating),
                         default=float(volume.array.min()))
