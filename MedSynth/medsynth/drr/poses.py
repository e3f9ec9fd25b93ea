"""Poses of a sweep or a dataset: angles from START to STOP by STEP, on one C-arm axis."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Sequence

from medsynth.drr.parameters import CArmPose
from medsynth.errors import InputError
from medsynth.parameters import OneOf, Range

#: Sweep axes: "primary" turns LAO/RAO, "secondary" tilts CRAN/CAUD.
SWEEP_AXES = {"primary": "primary_angle", "secondary": "secondary_angle"}
MAX_SWEEP_VIEWS = 720


@dataclass
class SweepParameters:
    """A sweep: one C-arm axis turned from ``start`` to ``stop`` by ``step`` degrees."""

    axis: Annotated[str, OneOf(SWEEP_AXES), "primary: LAO/RAO, secondary: CRAN/CAUD"] = "primary"
    start: Annotated[float, Range(-190.0, 190.0), "first angle, degrees"] = -90.0
    stop: Annotated[float, Range(-190.0, 190.0), "last angle, degrees"] = 90.0
    step: Annotated[float, Range(0.1, 180.0), "step, degrees"] = 30.0

    def angles(self) -> list[float]:
        return sweep_angles(self.start, self.stop, self.step)

    def poses(self, pose: CArmPose) -> list[CArmPose]:
        return sweep_poses(pose, self.axis, self.angles())


def sweep_angles(start: float, stop: float, step: float) -> list[float]:
    """Angles from ``start`` to ``stop`` (included when reached) by ``step``."""
    if not step or step <= 0 or not math.isfinite(step):
        raise InputError(f"The sweep step must be a positive angle, got {step}.")
    if stop < start:
        raise InputError(f"The sweep runs from {start} to {stop}: the last angle must not be below the first.")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_SWEEP_VIEWS:
        raise InputError(f"The sweep would render {count} views; use a larger step (at most {MAX_SWEEP_VIEWS} views).")
    return [float(start + i * step) for i in range(count)]


def sweep_poses(pose: CArmPose, axis: str, angles: Sequence[float]) -> list[CArmPose]:
    """``pose`` turned to each angle on ``axis`` ("primary" or "secondary")."""
    if axis not in SWEEP_AXES:
        raise InputError(f"Unknown sweep axis {axis!r}: use 'primary' (LAO/RAO) or 'secondary' (CRAN/CAUD).")
    if len(angles) == 0:
        raise InputError("The sweep has no angles.")
    return [dataclasses.replace(pose, **{SWEEP_AXES[axis]: float(angle)}) for angle in angles]


def angle_label(axis: str, angle: float) -> str:
    """"LAO30", "RAO15", "CRAN20", "CAUD10": the clinical name of an angle on an axis."""
    plus, minus = ("LAO", "RAO") if axis == "primary" else ("CRAN", "CAUD")
    return f"{plus}{angle:g}" if angle >= 0 else f"{minus}{-angle:g}"
