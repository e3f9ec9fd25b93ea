"""The SemanticSynthesis module's logic: segmentation or label map node -> model -> CT volume node.

Split in three steps so the GUI never freezes and the scene is never left half-changed:
``read_labels`` (main thread: nodes -> LabelMap), ``run`` (any thread: the library's generate,
with progress and cancel; touches no node), ``store`` (main thread: results -> output node on
the input's grid). ``generate`` chains them for scripts, batches and tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medsynth.errors import InputError
from medsynth.generative.parameters import SemanticParameters
from medsynth.generative.registry import LABEL_TASKS, ModelEntry, list_models
from medsynth.jobs.progress import CancelToken, ProgressCallback
from medsynth.mrml.app import get_scene, module_logic
from medsynth.mrml.segmentations import segment_names, segmentation_to_labelmap
from medsynth.mrml.volumes import node_to_volume, volume_to_node
from medsynth.volume import LabelMap, LabelTable, Volume

AIR_HU = -1024.0


class SemanticLogic:
    """Generate CT volumes from segmentations and label maps in the MRML scene."""

    # --- models ---------------------------------------------------------------------------------
    @staticmethod
    def label_models() -> list[ModelEntry]:
        """Registered label map -> image models (for the model selector)."""
        return [entry for entry in list_models() if entry.task in LABEL_TASKS]

    # --- nodes -> library -------------------------------------------------------------------------
    def read_labels(self, input_node, segment_ids: Sequence[str] | None = None) -> LabelMap:
        """A named LabelMap from a segmentation node (segment names) or a label map volume node (colour names)."""
        if input_node is None:
            raise InputError("Select an input segmentation or label map volume.")
        if input_node.IsA("vtkMRMLSegmentationNode"):
            scene = get_scene()
            before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
            try:
                return self._labels_from_segmentation(input_node, segment_ids)
            finally:  # the export's helper nodes (display, colour) must not stay in the user's scene
                added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
                for node in added:
                    if node is not None and node.GetID() not in before:
                        scene.RemoveNode(node)
        if input_node.IsA("vtkMRMLLabelMapVolumeNode") or input_node.IsA("vtkMRMLScalarVolumeNode"):
            volume = node_to_volume(input_node)
            labels = LabelMap.from_volume(volume)
            labels.table = self._color_names(input_node, labels.present_labels())
            return labels
        raise InputError(f"{input_node.GetName()} is a {input_node.GetClassName()}; choose a segmentation or a "
                         "label map volume.")

    def _labels_from_segmentation(self, node, segment_ids) -> LabelMap:
        if node.GetSegmentation().GetNumberOfSegments() == 0:
            raise InputError(f"Segmentation {node.GetName()!r} has no segments. Add segments (Segment Editor).")
        scene = get_scene()
        geometry_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        try:
            ok = module_logic("Segmentations").ExportAllSegmentsToLabelmapNode(node, geometry_node, 0)
            if not ok or geometry_node.GetImageData() is None:
                raise InputError(f"Slicer could not export segmentation {node.GetName()!r} to a label map.")
            reference = node_to_volume(geometry_node)
        finally:
            scene.RemoveNode(geometry_node)
        names = segment_names(node)
        ids = list(segment_ids) if segment_ids else list(names)
        table = LabelTable({index + 1: names[segment_id] for index, segment_id in enumerate(ids)})
        return segmentation_to_labelmap(node, reference, table, ids)

    @staticmethod
    def _color_names(node, values: Sequence[int]) -> LabelTable:
        display = node.GetDisplayNode()
        colors = display.GetColorNode() if display is not None else None
        names = {}
        for value in values:
            name = colors.GetColorName(int(value)) if colors is not None else ""
            if name and name.lower() not in ("", "(none)", "invalid"):
                names[int(value)] = name
        return LabelTable(names)

    # --- library (any thread) ---------------------------------------------------------------------
    @staticmethod
    def run(labels: LabelMap, parameters: SemanticParameters, slices="all", samples: int = 1, body="auto",
            progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list[Volume]:
        """The library's generate (touches no MRML node, so it may run in a worker thread)."""
        from medsynth.generative.inference import generate

        return generate(labels, parameters.model_id, slices=slices, samples=samples, seed=parameters.seed,
                        steps=parameters.steps, guidance=parameters.guidance, class_mapping=parameters.mapping(),
                        unknown=parameters.unknown_classes or "error", body=body, progress=progress, cancel=cancel,
                        maisi_bundle=parameters.maisi_bundle or None, maisi_preset=parameters.maisi_preset)

    @staticmethod
    def body_from(ct_node, labels: LabelMap):
        """The body outline for generation: the CT above -500 HU when a CT on the labels' grid is given."""
        if ct_node is None:
            return "auto"
        ct = node_to_volume(ct_node)
        ct.require_same_grid(labels, "segmentation")
        return ct.array > -500

    # --- library -> nodes (main thread) -----------------------------------------------------------
    def store(self, generated: Volume, labels: LabelMap, output_node=None, name: str = "SyntheticCT"):
        """Put a generated (possibly partial) volume into ``output_node`` on the label map's grid.

        A partial result (some slices) updates only those slices of an output node already on the
        grid; elsewhere a new full-grid volume is made with air in the other slices.
        """
        full = self.on_input_grid(generated, labels, output_node)
        node = volume_to_node(full, node=output_node, name=name)
        node.SetAttribute("MedSynth.Synthetic", "1")
        node.SetAttribute("MedSynth.Model", str(generated.metadata.extra.get("model", "")))
        display = node.GetDisplayNode()
        if display is not None:
            display.SetAutoWindowLevel(False)
            display.SetWindowLevel(400, 40)
        return node

    @staticmethod
    def on_input_grid(generated: Volume, labels: LabelMap, output_node=None) -> Volume:
        """The generated slices pasted into a volume on the label map's full grid."""
        base = None
        if output_node is not None and output_node.GetImageData() is not None:
            existing = node_to_volume(output_node)
            if existing.same_grid(labels):
                base = existing.array.astype(np.float32)
        if base is None:
            base = np.full(labels.array.shape, AIR_HU, np.float32)
        axis = int(generated.metadata.extra.get("slice_axis", 2))
        first = int(generated.metadata.extra.get("slices", [0])[0])
        index = [slice(None)] * 3
        index[2 - axis] = slice(first, first + generated.array.shape[2 - axis])
        base[tuple(index)] = generated.array
        return Volume(base, labels.ijk_to_ras.copy(), generated.metadata)

    # --- all in one (scripts, batches, tests) -----------------------------------------------------
    def generate(self, input_node, parameters: SemanticParameters, output_node=None, slices="all", samples: int = 1,
                 ct_node=None, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list:
        """Generate ``samples`` volumes; the first goes to ``output_node`` (or a new node), others to new nodes.

        ``ct_node`` (optional, on the label map's grid) gives the body outline (> -500 HU).
        """
        labels = self.read_labels(input_node)
        volumes = self.run(labels, parameters, slices, samples, self.body_from(ct_node, labels), progress, cancel)
        nodes = []
        for index, volume in enumerate(volumes):
            nodes.append(self.store(volume, labels, output_node if index == 0 else None,
                                    name=f"SyntheticCT_{parameters.model_id}_s{volume.metadata.extra['seed'] % 10000}"))
        return nodes

    @staticmethod
    def slice_index_at(labels: LabelMap, ras: Sequence[float]) -> int:
        """The label map's axial slice index nearest a RAS point (the slice view's offset)."""
        from medsynth.generative.inference import _superior_axis

        axis = _superior_axis(labels)
        ijk = labels.ras_to_ijk_points(np.asarray(ras, float))
        return int(np.clip(round(float(ijk[axis])), 0, labels.shape_ijk[axis] - 1))

    def translate(self, image_node, model_id: str, output_node=None, progress=None, cancel=None):
        """A 2D image node (e.g. a DRR) -> an image-to-image model's output (e.g. a bone image) node."""
        from medsynth.generative.inference import translate

        image = node_to_volume(image_node)
        result = translate(image, model_id, progress=progress, cancel=cancel)
        return volume_to_node(result, node=output_node, name=f"{image_node.GetName()}_{model_id}")


#: What generation needs beyond Slicer's own packages (torch comes from the PyTorch extension).
GENERATION_PACKAGES = ("torch", "monai", "einops")


def missing_packages() -> list[str]:
    """The packages generation needs that are not installed (empty: ready)."""
    from medsynth.dependencies import OPTIONAL_DEPENDENCIES, installed_version

    wanted = [d for d in OPTIONAL_DEPENDENCIES if d.module in GENERATION_PACKAGES]
    return [d.distribution for d in wanted if installed_version(d) is None]
