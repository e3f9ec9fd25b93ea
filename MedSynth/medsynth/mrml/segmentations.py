"""Label map <-> segmentation node; segment names come from the label table."""

from __future__ import annotations

import numpy as np
import vtk

from medsynth.errors import InputError
from medsynth.mrml.app import get_scene, module_logic
from medsynth.mrml.volumes import color_table_node, labelmap_to_node, node_to_volume, volume_to_node
from medsynth.volume import LabelMap, LabelTable, Volume


def labelmap_to_segmentation(labels: LabelMap, name: str = "Segmentation", node=None):
    """A segmentation node with one segment per label present, named from the label table."""
    scene = get_scene()
    label_node = labelmap_to_node(labels, name=f"{name}_labels")
    color_node = label_node.GetDisplayNode().GetColorNode()
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
        node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(label_node)
    ok = module_logic("Segmentations").ImportLabelmapToSegmentationNode(label_node, node)
    scene.RemoveNode(label_node)
    scene.RemoveNode(color_node)
    if not ok:
        raise InputError("Slicer could not import the label map into a segmentation.")
    return node


def segment_names(segmentation_node) -> dict[str, str]:
    """Segment ID -> segment name."""
    segmentation = segmentation_node.GetSegmentation()
    return {
        segmentation.GetNthSegmentID(i): segmentation.GetNthSegment(i).GetName()
        for i in range(segmentation.GetNumberOfSegments())
    }


def segmentation_to_labelmap(
    segmentation_node, reference: Volume, table: LabelTable | None = None, segment_ids: list[str] | None = None
) -> LabelMap:
    """Export segments onto ``reference``'s grid; values from ``table`` by segment name.

    Without a table, segments get values 1..N in their order and the table records the names.
    """
    if segmentation_node is None or segmentation_node.GetSegmentation().GetNumberOfSegments() == 0:
        raise InputError("The segmentation is empty. Add at least one segment (Segment Editor).")
    scene = get_scene()
    names = segment_names(segmentation_node)
    ids = segment_ids or list(names)
    if table is None:
        table = LabelTable({i + 1: names[segment_id] for i, segment_id in enumerate(ids)})
    missing = [names[s] for s in ids if names[s] not in table]
    if missing:
        raise InputError(
            f"Segments {missing} have no value in the label table. Rename them or extend the table."
        )
    reference_node = volume_to_node(reference.with_array(np.zeros(reference.array.shape, np.uint8)), name="reference")
    colors = color_table_node(table, list(table.names))
    label_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    id_array = vtk.vtkStringArray()
    for segment_id in ids:
        id_array.InsertNextValue(segment_id)
    ok = module_logic("Segmentations").ExportSegmentsToLabelmapNode(
        segmentation_node, id_array, label_node, reference_node, 0, colors
    )
    try:
        if not ok:
            raise InputError("Slicer could not export the segmentation to a label map.")
        volume = node_to_volume(label_node)
    finally:
        for node in (label_node, reference_node, colors):
            scene.RemoveNode(node)
    return LabelMap(volume.array.astype(np.int32), volume.ijk_to_ras, table=table)
