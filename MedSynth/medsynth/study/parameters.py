"""The reader study's parameters: how images are blinded and shown, defined once for CLI and scripts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from medsynth.display import CT_WINDOWS
from medsynth.parameters import OneOf, Range

#: How a DICOM image is windowed: its own WindowCenter/Width tags, percentiles, a CT preset or custom.
WINDOW_CHOICES = ("dicom", "auto", *CT_WINDOWS, "custom")
#: The tick-box reasons a reader may give for "fake" or "uncertain" (issue 17).
REASONS = ("anatomy", "noise", "edges", "artefacts", "contrast")


@dataclass
class StudyParameters:
    """How ``medsynth study create`` builds a blinded study."""

    seed: Annotated[int, Range(0, 2**31 - 1), "shuffles the images and names them"] = 0
    image_size: Annotated[int, Range(64, 4096), "longest side of every study image, pixels "
                                                "(one size for all, so size cannot tell real from fake)"] = 512
    window: Annotated[str, OneOf(WINDOW_CHOICES), "DICOM display window"] = "dicom"
    window_level: Annotated[float, Range(-5000.0, 50000.0), "custom window level (window=custom)"] = 40.0
    window_width: Annotated[float, Range(1.0, 100000.0), "custom window width (window=custom)"] = 400.0
    title: Annotated[str, "shown to the readers"] = "Real or synthetic?"
