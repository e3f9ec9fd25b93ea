"""The only bridge between MedSynth and Slicer's MRML: nodes <-> library objects.

Everything here imports ``slicer`` and works both inside the Slicer application and with the
Qt-free ``slicer-core`` package from PyPI (headless scenes, tests, batch scripts).
"""

from medsynth.mrml.app import get_scene, headless_scene, inside_slicer_application, module_logic
from medsynth.mrml.markups import markups_from_points, points_from_markups
from medsynth.mrml.segmentations import labelmap_to_segmentation, segment_names, segmentation_to_labelmap
from medsynth.mrml.volumes import labelmap_to_node, load_volume_node, node_to_volume, save_node, volume_to_node

__all__ = [
    "get_scene",
    "headless_scene",
    "inside_slicer_application",
    "labelmap_to_node",
    "labelmap_to_segmentation",
    "load_volume_node",
    "markups_from_points",
    "module_logic",
    "node_to_volume",
    "points_from_markups",
    "save_node",
    "segment_names",
    "segmentation_to_labelmap",
    "volume_to_node",
]
