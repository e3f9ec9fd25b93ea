"""A virtual C-arm described the clinical way, and everything a projector needs from it.

Conventions (all tested in Testing/test_drr_geometry.py):

- Angles in degrees. ``primary_angle``: LAO positive, RAO negative. ``secondary_angle``: CRAN
  positive, CAUD negative. At 0 / 0 the beam runs posterior -> anterior (an AP view: the tube under
  the table, the detector above the patient).
- The angles are the C-arm's own (gantry) angles, named as they are for a head-first supine (HFS)
  patient: LAO +a turns the detector by a towards the patient's left, about the patient's head-feet
  axis; CRAN +b then tilts it by b towards the head, about the C-arm's rotated left-right axis
  (``R = Rz(a) @ Rx(b)`` in the room frame, which is patient RAS for HFS). For other patient
  positions (FFS, HFP, ...), the patient is placed in the room and the same gantry angles show
  the anatomy turned accordingly.
- The *C-arm frame* (what ``pose_matrix`` maps to RAS) is right-handed with its origin at the
  isocenter: +x along increasing detector columns, +y along increasing detector rows, +z from the
  detector towards the source. The source is at (0, 0, SOD), the detector centre at
  (0, 0, SOD - SID).
- Pixels are addressed ``(col, row)`` with (0, 0) the centre of the first pixel; image arrays are
  indexed ``[row, col]``. The principal point is the detector centre ((cols-1)/2, (rows-1)/2).
- Orientation on the image: the image is what one sees looking from the detector towards the source
  (the way radiographs are hung). For an HFS patient at 0 / 0 (AP): the patient's **right is on the
  image's left** (column 0), the patient's **left on the right**, the **head at the top** (row 0)
  and the **feet at the bottom**. In LAO 90 (detector at the patient's left, a lateral view) anterior
  is on the image's left and posterior on its right; the head stays at the top.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from medsynth.errors import GeometryError

#: Room-from-patient rotations (patient RAS vector -> room vector, the room being HFS patient RAS).
_FFS = np.diag([-1.0, 1.0, -1.0])


def _rz(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


ROOM_FROM_PATIENT: dict[str, np.ndarray] = {
    "HFS": np.eye(3),
    "FFS": _FFS,
    "HFP": np.diag([-1.0, -1.0, 1.0]),
    "FFP": np.diag([1.0, -1.0, -1.0]),
    "HFDR": _rz(-90.0),  # lying on the right side: the patient's right points down (room posterior)
    "HFDL": _rz(90.0),
    "FFDR": _rz(90.0) @ _FFS,
    "FFDL": _rz(-90.0) @ _FFS,
}
PATIENT_POSITIONS = tuple(ROOM_FROM_PATIENT)

#: C-arm frame axes at 0 / 0 in the room (columns: x = column direction, y = row direction,
#: z = towards the source): columns run to the patient's left, rows to the feet, the source is posterior.
_BASE_AXES = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]).T


@dataclass
class CArm:
    """A C-arm pose and detector. Distances in mm, angles in degrees, isocenter in RAS mm.

    ``pixel_spacing`` is one float or ``(row spacing, column spacing)``. The ``*_range`` fields
    are the mechanical limits (from a preset); ``None`` means unlimited.
    """

    primary_angle: float = 0.0
    secondary_angle: float = 0.0
    sid: float = 1020.0
    sod: float = 530.0
    detector_rows: int = 1536
    detector_columns: int = 1536
    pixel_spacing: float | tuple[float, float] = 0.194
    isocenter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    patient_position: str = "HFS"
    preset: str | None = None
    primary_range: tuple[float, float] | None = None
    secondary_range: tuple[float, float] | None = None
    sid_range: tuple[float, float] | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.isocenter = tuple(float(v) for v in np.asarray(self.isocenter, dtype=float).reshape(3))
        self.patient_position = str(self.patient_position).upper()
        if isinstance(self.pixel_spacing, (list, np.ndarray)):
            self.pixel_spacing = tuple(float(v) for v in self.pixel_spacing)

    # --- basic quantities -------------------------------------------------------------------
    @property
    def spacing_rc(self) -> tuple[float, float]:
        """Pixel spacing (row, column) in mm."""
        spacing = self.pixel_spacing
        if isinstance(spacing, (tuple, list)):
            if len(spacing) != 2:
                raise GeometryError(
                    f"pixel_spacing must be one number or (row, column) spacing, got {spacing!r}."
                )
            return float(spacing[0]), float(spacing[1])
        return float(spacing), float(spacing)

    @property
    def detector_size_mm(self) -> tuple[float, float]:
        """Detector height and width (rows x row spacing, columns x column spacing) in mm."""
        row_spacing, col_spacing = self.spacing_rc
        return self.detector_rows * row_spacing, self.detector_columns * col_spacing

    def replace(self, **changes) -> "CArm":
        """A copy with some fields changed (``carm.replace(primary_angle=30)``)."""
        return dataclasses.replace(self, **changes)

    # --- pose ------------------------------------------------------------------------------
    def _room_from_patient(self) -> np.ndarray:
        try:
            return ROOM_FROM_PATIENT[self.patient_position]
        except KeyError:
            raise GeometryError(
                f"Unknown patient position {self.patient_position!r}. Use one of {', '.join(PATIENT_POSITIONS)} "
                "(HFS = head first supine, the default)."
            ) from None

    def rotation(self) -> np.ndarray:
        """3x3 rotation whose columns are the C-arm frame's x, y, z axes in patient RAS."""
        room = _rz(self.primary_angle) @ _rx(self.secondary_angle) @ _BASE_AXES
        return self._room_from_patient().T @ room

    def pose_matrix(self) -> np.ndarray:
        """4x4 rigid transform from the C-arm frame (see the module docstring) to RAS."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation()
        matrix[:3, 3] = self.isocenter
        return matrix

    @classmethod
    def from_pose_matrix(cls, matrix: np.ndarray, like: "CArm | None" = None) -> "CArm":
        """The C-arm whose ``pose_matrix()`` is ``matrix``; other fields are copied from ``like``.

        A C-arm has two rotation axes: a transform that also turns the image about the beam
        (a roll) or that is not rigid cannot be reached and raises GeometryError.
        """
        like = like or cls()
        matrix = np.asarray(matrix, dtype=float)
        if matrix.shape != (4, 4):
            raise GeometryError(f"A pose matrix is 4x4, got shape {matrix.shape}.")
        rotation = matrix[:3, :3]
        if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
            raise GeometryError(
                "The pose matrix is not a rigid rotation plus translation (it scales, shears or mirrors). "
                "Use a linear transform made only of rotations and translations."
            )
        room = like._room_from_patient() @ rotation @ _BASE_AXES.T  # = Rz(a) @ Rx(b)
        if abs(room[2, 0]) > 1e-3:
            raise GeometryError(
                "This transform rolls the image about the beam axis, which a C-arm cannot do "
                f"(roll component {math.degrees(math.asin(min(1.0, abs(room[2, 0])))):.2f} deg). "
                "Use only the LAO/RAO and CRAN/CAUD rotations."
            )
        secondary = math.degrees(math.atan2(room[2, 1], room[2, 2]))
        primary = math.degrees(math.atan2(room[1, 0], room[0, 0]))
        return dataclasses.replace(
            like, primary_angle=primary, secondary_angle=secondary, isocenter=tuple(matrix[:3, 3])
        )

    # --- source, detector, rays ----------------------------------------------------------
    def source_position(self) -> np.ndarray:
        """RAS position of the X-ray focal spot."""
        return self.pose_matrix()[:3, :] @ np.array([0.0, 0.0, self.sod, 1.0])

    def beam_direction(self) -> np.ndarray:
        """Unit RAS vector of the central ray, from the source to the detector."""
        return -self.rotation()[:, 2]

    def detector_center(self) -> np.ndarray:
        """RAS position of the detector's centre (where the central ray hits it)."""
        return self.pose_matrix()[:3, :] @ np.array([0.0, 0.0, self.sod - self.sid, 1.0])

    def pixel_to_ras(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """RAS positions (..., 3) of detector pixel centres (continuous col, row allowed)."""
        row_spacing, col_spacing = self.spacing_rc
        cols = np.asarray(cols, dtype=float)
        rows = np.asarray(rows, dtype=float)
        x = (cols - (self.detector_columns - 1) / 2.0) * col_spacing
        y = (rows - (self.detector_rows - 1) / 2.0) * row_spacing
        rotation = self.rotation()
        return (self.detector_center() + x[..., None] * rotation[:, 0] + y[..., None] * rotation[:, 1])

    def detector_corners(self) -> np.ndarray:
        """4x3 RAS corners of the detector's sensitive area: top-left, top-right, bottom-right, bottom-left
        (top = row 0, left = column 0), at the outer pixel edges."""
        cols = np.array([-0.5, self.detector_columns - 0.5, self.detector_columns - 0.5, -0.5])
        rows = np.array([-0.5, -0.5, self.detector_rows - 0.5, self.detector_rows - 0.5])
        return self.pixel_to_ras(cols, rows)

    def pixel_grid(self) -> np.ndarray:
        """RAS positions of all pixel centres, shape (rows, columns, 3)."""
        cols, rows = np.meshgrid(np.arange(self.detector_columns), np.arange(self.detector_rows))
        return self.pixel_to_ras(cols, rows)

    def ray(self, col: float, row: float) -> tuple[np.ndarray, np.ndarray]:
        """The ray through pixel (col, row): its origin (the source) and unit direction, in RAS."""
        source = self.source_position()
        direction = self.pixel_to_ras(col, row) - source
        return source, direction / np.linalg.norm(direction)

    # --- projection ------------------------------------------------------------------------
    def intrinsics(self) -> np.ndarray:
        """3x3 K: focal lengths SID / pixel spacing (pixels) and the principal point at the centre."""
        row_spacing, col_spacing = self.spacing_rc
        return np.array(
            [
                [self.sid / col_spacing, 0.0, (self.detector_columns - 1) / 2.0],
                [0.0, self.sid / row_spacing, (self.detector_rows - 1) / 2.0],
                [0.0, 0.0, 1.0],
            ]
        )

    def extrinsics(self) -> np.ndarray:
        """3x4 [R|t] from RAS to source-centred coordinates (x: columns, y: rows, z: depth from the source)."""
        carm_from_ras = np.linalg.inv(self.pose_matrix())
        # source-centred: (x, y, SOD - z) so that depth grows from the source towards the detector
        to_source = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, -1.0, self.sod]])
        return to_source @ carm_from_ras

    def projection_matrix(self) -> np.ndarray:
        """3x4 P mapping homogeneous RAS (x, y, z, 1) to (col, row, 1) up to scale: P = K [R|t]."""
        return self.intrinsics() @ self.extrinsics()

    def project_points(self, points_ras: np.ndarray) -> np.ndarray:
        """Detector (col, row) of RAS points (N x 3 -> N x 2). Points at or behind the source raise."""
        points = np.atleast_2d(np.asarray(points_ras, dtype=float))
        if points.shape[-1] != 3:
            raise GeometryError(f"Points must be N x 3 RAS coordinates, got shape {points.shape}.")
        homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ self.projection_matrix().T
        if np.any(homogeneous[:, 2] <= 1e-9):
            raise GeometryError("A point lies at or behind the X-ray source and cannot be projected.")
        return homogeneous[:, :2] / homogeneous[:, 2:3]

    # --- validation ------------------------------------------------------------------------
    def validate(self, volume=None) -> "CArm":
        """Raise GeometryError with advice for an impossible set-up; return self when fine.

        With ``volume`` (a medsynth Volume), also checks that the source is outside it.
        """
        self._room_from_patient()
        row_spacing, col_spacing = self.spacing_rc
        if int(self.detector_rows) < 1 or int(self.detector_columns) < 1:
            raise GeometryError(
                f"The detector has no pixels ({self.detector_rows} rows x {self.detector_columns} columns). "
                "Give at least 1 x 1 pixels, e.g. 256 x 256 for a preview."
            )
        if not (row_spacing > 0 and col_spacing > 0) or not all(map(math.isfinite, (row_spacing, col_spacing))):
            raise GeometryError(f"Pixel spacing must be positive, got {self.pixel_spacing!r} mm.")
        if not (self.sod > 0 and self.sid > 0):
            raise GeometryError(f"SID and SOD must be positive distances, got SID {self.sid} mm, SOD {self.sod} mm.")
        if self.sod >= self.sid:
            raise GeometryError(
                f"The source-isocenter distance (SOD {self.sod:g} mm) must be shorter than the source-detector "
                f"distance (SID {self.sid:g} mm): the isocenter lies between source and detector. "
                f"Lower SOD below {self.sid:g} mm or raise SID."
            )
        if not all(math.isfinite(v) for v in (*self.isocenter, self.primary_angle, self.secondary_angle)):
            raise GeometryError("Angles and isocenter must be finite numbers.")
        limits = self.preset or "this C-arm"
        for name, value, allowed, plus, minus in (
            ("primary", self.primary_angle, self.primary_range, "LAO", "RAO"),
            ("secondary", self.secondary_angle, self.secondary_range, "CRAN", "CAUD"),
        ):
            if allowed is not None and not (allowed[0] - 1e-9 <= value <= allowed[1] + 1e-9):
                raise GeometryError(
                    f"The {name} angle {_angle_name(value, plus, minus)} is beyond {limits}'s mechanical range "
                    f"({_angle_name(allowed[0], plus, minus)} to {_angle_name(allowed[1], plus, minus)}). "
                    f"Choose an angle inside it, or a preset that reaches it."
                )
        if self.sid_range is not None and not (self.sid_range[0] - 1e-6 <= self.sid <= self.sid_range[1] + 1e-6):
            raise GeometryError(
                f"SID {self.sid:g} mm is outside {limits}'s range {self.sid_range[0]:g}-{self.sid_range[1]:g} mm. "
                "Choose an SID inside it, or another preset."
            )
        if volume is not None:
            source_ijk = volume.ras_to_ijk_points(self.source_position())
            shape = np.array(volume.shape_ijk, dtype=float)
            if np.all(source_ijk >= -0.5) and np.all(source_ijk <= shape - 0.5):
                raise GeometryError(
                    f"The X-ray source ({np.round(self.source_position(), 1).tolist()} RAS mm) lies inside the "
                    f"volume: SOD {self.sod:g} mm is too short for this isocenter. Increase SOD (and SID), or "
                    "move the isocenter towards the volume's centre."
                )
        return self

    def to_dict(self) -> dict:
        """A JSON-ready description including the derived geometry (for sidecar files)."""
        data = dataclasses.asdict(self)
        data["pixel_spacing"] = list(self.spacing_rc)
        data["isocenter"] = list(self.isocenter)
        data["projection_matrix"] = self.projection_matrix().tolist()
        data["pose_matrix"] = self.pose_matrix().tolist()
        data["source_position"] = self.source_position().tolist()
        data["detector_center"] = self.detector_center().tolist()
        data["detector_corners"] = self.detector_corners().tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "CArm":
        """Inverse of ``to_dict`` (derived entries are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        for key in ("primary_range", "secondary_range", "sid_range", "pixel_spacing"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


def _angle_name(value: float, plus: str, minus: str) -> str:
    return f"{plus} {value:g}" if value >= 0 else f"{minus} {-value:g}"


def sweep(carm: CArm, primary: Sequence[float] | None = None, secondary: Sequence[float] | None = None) -> list[CArm]:
    """Poses of ``carm`` at every combination of the given primary and secondary angles."""
    primaries = list(primary) if primary is not None else [carm.primary_angle]
    secondaries = list(secondary) if secondary is not None else [carm.secondary_angle]
    return [carm.replace(primary_angle=float(a), secondary_angle=float(b)) for b in secondaries for a in primaries]
