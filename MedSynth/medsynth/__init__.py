"""MedSynth: synthetic medical imaging, usable with and without 3D Slicer.

The package never imports slicer, qt, ctk or vtk at module level outside ``medsynth.mrml``,
so it runs in plain Python, on the command line and inside Slicer alike.
"""

from medsynth.errors import MedSynthError
from medsynth.volume import LabelMap, LabelTable, Volume

__version__ = "0.1.0"

__all__ = ["LabelMap", "LabelTable", "MedSynthError", "Volume", "__version__"]
