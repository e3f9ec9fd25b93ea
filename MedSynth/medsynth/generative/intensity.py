"""The intensity window a model works in: physical units (HU, line integrals) <-> [-1, 1].

Every model records its window in its checkpoint, so generated images map back to the units
the training data had (HU for CT slices), and inputs are scaled the way training saw them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from medsynth.errors import InputError


@dataclass(frozen=True)
class IntensityWindow:
    """Physical range ``[low, high]`` (in ``units``) mapped linearly onto [-1, 1]; values outside are clipped."""

    low: float
    high: float
    units: str = "HU"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high <= self.low:
            raise InputError(
                f"An intensity window needs low < high, got low={self.low}, high={self.high}. "
                "Give it as {low: -1000, high: 1000} or as {level: 40, width: 400}."
            )

    @classmethod
    def from_level_width(cls, level: float, width: float, units: str = "HU") -> "IntensityWindow":
        return cls(float(level) - float(width) / 2.0, float(level) + float(width) / 2.0, units)

    @classmethod
    def from_dict(cls, data: dict) -> "IntensityWindow":
        """Accept {low, high[, units]} or {level, width[, units]} (a config or a checkpoint entry)."""
        if not isinstance(data, dict):
            raise InputError(f"An intensity window must be a mapping, got {data!r}.")
        units = str(data.get("units", "HU"))
        if "low" in data and "high" in data:
            return cls(float(data["low"]), float(data["high"]), units)
        if "level" in data and "width" in data:
            return cls.from_level_width(data["level"], data["width"], units)
        raise InputError(f"Intensity window {data!r} needs either low/high or level/width.")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def level(self) -> float:
        return (self.low + self.high) / 2.0

    @property
    def width(self) -> float:
        return self.high - self.low

    def to_unit(self, values):
        """Physical values -> [-1, 1] (clipped). Works on numpy arrays and torch tensors."""
        scaled = (values - self.low) / (self.high - self.low) * 2.0 - 1.0
        return scaled.clip(-1.0, 1.0)

    def from_unit(self, values):
        """[-1, 1] -> physical values. Works on numpy arrays and torch tensors."""
        return (values.clip(-1.0, 1.0) + 1.0) / 2.0 * (self.high - self.low) + self.low


