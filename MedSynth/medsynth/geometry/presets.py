"""C-arm presets, stored as data in ``presets.json`` (distances, detector, mechanical ranges)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from medsynth.errors import InputError
from medsynth.geometry.carm import CArm


@lru_cache(maxsize=1)
def _preset_data() -> dict:
    text = resources.files("medsynth.geometry").joinpath("presets.json").read_text(encoding="utf-8")
    return {name: entry for name, entry in json.loads(text).items() if not name.startswith("_")}


def preset_names() -> tuple[str, ...]:
    return tuple(_preset_data())


def load_preset(name: str, **changes) -> CArm:
    """A CArm at 0 / 0 with the preset's geometry and mechanical ranges; ``changes`` override fields."""
    data = _preset_data()
    key = str(name).lower()
    if key not in data:
        raise InputError(f"Unknown C-arm preset {name!r}. Choose one of: {', '.join(data)}.")
    entry = data[key]
    carm = CArm(
        sid=float(entry["sid"]),
        sod=float(entry["sod"]),
        detector_rows=int(entry["detector_rows"]),
        detector_columns=int(entry["detector_columns"]),
        pixel_spacing=tuple(float(v) for v in entry["pixel_spacing"]),
        preset=key,
        primary_range=tuple(entry["primary_range"]),
        secondary_range=tuple(entry["secondary_range"]),
        sid_range=tuple(entry["sid_range"]) if entry.get("sid_range") else None,
        description=entry.get("description", ""),
    )
    return carm.replace(**changes) if changes else carm


class _Presets(dict):
    """Read-only mapping name -> description; ``PRESETS[name]`` gives the description."""


PRESETS = _Presets({name: entry.get("description", "") for name, entry in _preset_data().items()})
