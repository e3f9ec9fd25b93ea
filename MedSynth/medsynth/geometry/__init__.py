"""C-arm geometry: clinical angles -> pose, projection matrix, detector pixels and rays.

``CArm`` describes a pose and detector; ``load_preset(name)`` gives a preset C-arm (``PRESETS``
lists them: "mobile" like DeepDRR's default, "angio" a ceiling-mounted system, "preview" a
256 x 256 read-out of the mobile geometry for live sliders). Conventions: see ``medsynth.geometry.carm``.
"""

from medsynth.geometry.carm import PATIENT_POSITIONS, CArm, sweep
from medsynth.geometry.presets import PRESETS, load_preset, preset_names

__all__ = ["CArm", "PATIENT_POSITIONS", "PRESETS", "load_preset", "preset_names", "sweep"]
