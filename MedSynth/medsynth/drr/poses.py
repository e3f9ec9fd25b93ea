"""Poses of a sweep or a dataset: angles from START to STOP by STEP, on one C-arm axis, and the
pose-file format that the DRR batch script and dataset recipes share.

A pose file (JSON, or a recipe's ``drr.poses``) is a list of poses or
``{"defaults": {...}, "poses": [...], "sweep": {"axis": "primary", "start": -90, "stop": 90, "step": 30}}``;
a pose is ``{"name": "LAO30", "primary": 30, "secondary": 0, "sid": 1020, "sod": 530,
"isocenter": [R, A, S] or "center"}`` (missing values: "defaults", then the preset).
"""

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


POSE_KEYS = ("name", "primary", "secondary", "sid", "sod", "isocenter")


def _number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise InputError(f"{what} must be finite, got {value!r}.")
    return number


def pose_entries(data, where: str = "The poses file") -> list[tuple[str, dict]]:
    """[(name, {"primary", "secondary", "sid"?, "sod"?, "isocenter": "center" | [R, A, S]})] of a pose list."""
    if isinstance(data, list):
        data = {"poses": data}
    if not isinstance(data, dict):
        raise InputError(f"{where} must hold a list of poses or an object with 'poses' and/or 'sweep'.")
    unknown = set(data) - {"defaults", "poses", "sweep"}
    if unknown:
        raise InputError(f"{where}: unknown key {sorted(unknown)[0]!r}; use defaults, poses and sweep.")
    defaults = data.get("defaults", {})
    entries = list(data.get("poses", []))
    sweep = data.get("sweep")
    if sweep:
        axis = sweep.get("axis", "primary")
        if axis not in SWEEP_AXES:
            raise InputError(f"Sweep axis {axis!r}: use 'primary' (LAO/RAO) or 'secondary' (CRAN/CAUD).")
        angles = sweep_angles(_number(sweep.get("start"), "sweep start"), _number(sweep.get("stop"), "sweep stop"),
                              _number(sweep.get("step"), "sweep step"))
        for angle in angles:
            entry = {key: value for key, value in sweep.items() if key not in ("axis", "start", "stop", "step")}
            entry[axis] = angle
            entry.setdefault("name", angle_label(axis, angle))
            entries.append(entry)
    if not entries:
        raise InputError(f"{where} lists no poses. Add {{'poses': [{{'name': 'AP', 'primary': 0, 'secondary': 0}}]}}.")
    poses, names = [], set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"Pose {index + 1} is not an object: {entry!r}.")
        pose = dict(defaults, **entry)
        unknown = set(pose) - set(POSE_KEYS)
        if unknown:
            raise InputError(f"Pose {index + 1} has unknown keys {sorted(unknown)}; use {', '.join(POSE_KEYS)}.")
        name = str(pose.get("name") or f"pose_{index + 1:04d}")
        if name in names or "/" in name or name.startswith("."):
            raise InputError(f"Pose name {name!r} is repeated or not a valid folder name.")
        names.add(name)
        values = {"primary": _number(pose.get("primary", 0.0), f"pose {name}: primary"),
                  "secondary": _number(pose.get("secondary", 0.0), f"pose {name}: secondary")}
        for key in ("sid", "sod"):
            if key in pose:
                values[key] = _number(pose[key], f"pose {name}: {key}")
        isocenter = pose.get("isocenter", "center")
        if isocenter != "center":
            if not isinstance(isocenter, (list, tuple)) or len(isocenter) != 3:
                raise InputError(f"Pose {name}: isocenter must be 'center' or [R, A, S] in mm.")
            isocenter = [_number(v, f"pose {name}: isocenter") for v in isocenter]
        values["isocenter"] = isocenter
        poses.append((name, values))
    return poses


def read_pose_file(path) -> list[tuple[str, dict]]:
    """``pose_entries`` of a JSON pose file."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"Poses file {path} does not exist.") from None
    except (OSError, ValueError) as error:
        raise InputError(f"Poses file {path} is not valid JSON: {error}") from None
    return pose_entries(data)
