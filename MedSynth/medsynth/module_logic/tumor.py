"""The TumorSynthesis module's logic: CT + segmentation nodes -> ``medsynth.tumor.engine`` -> nodes, with undo.

The CT is painted in place in the volume node's own voxel array (no copy of the scan per
click), the tumors go into a "Tumor" segment (or one segment per tumor), and every action
can be undone bit for bit: the CT's changed boxes and the tumor segment's previous labelmap
are kept. An action runs in three steps so a GUI can paint in a worker thread: ``start``
(main thread: reads the nodes, checks them), ``paint`` (any thread: the engine; the node is not
told yet) and ``commit`` (main thread: the node is told, the segments change, undo is recorded).
Used by the Slicer module and the web app, and testable with ``slicer-core`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from medsynth.errors import InputError
from medsynth.jobs.progress import CancelToken, ProgressCallback
from medsynth.mrml.app import get_scene
from medsynth.mrml.segmentations import segmentation_to_labelmap
from medsynth.mrml.volumes import node_to_volume, numpy_matrix, vtk_matrix
from medsynth.tumor.parameters import TumorParameters
from medsynth.volume import Volume, VolumeMetadata

if TYPE_CHECKING:  # the engine needs numba, which Slicer does not bundle: imported on first use
    from medsynth.tumor import OrganContext, TumorDescription, TumorResult

TUMOR_SEGMENT_NAME = "Tumor"
TUMOR_COLOR = (0.9, 0.25, 0.2)
#: Segment names that stand for an organ (lower case; TotalSegmentator's names included).
ORGAN_SEGMENT_NAMES = {
    "liver": ("liver",),
    "pancreas": ("pancreas",),
    "kidney": ("kidney", "kidney_left", "kidney_right", "left kidney", "right kidney"),
}


def describe(tumors: list[TumorDescription]) -> str:
    """One line per tumor for the module's status label."""
    lines = []
    for tumor in tumors:
        contrast = tumor.realism.get("contrast_hu")
        contrast_text = "n/a" if contrast is None else f"{contrast:+.0f} HU"
        lines.append(
            f"#{tumor.index} {tumor.kind}: {tumor.equivalent_diameter_mm:.0f} mm, {tumor.volume_ml:.1f} ml, "
            f"{tumor.tumor_mean_hu:.0f} HU in a {tumor.parenchyma_hu:.0f} HU organ "
            f"(contrast {contrast_text}), at R {tumor.center_ras[0]:.0f} "
            f"A {tumor.center_ras[1]:.0f} S {tumor.center_ras[2]:.0f}"
        )
    return "\n".join(lines) if lines else "No tumor fitted: the organ has no room left for this size."


@dataclass
class _Action:
    """One undoable step: the CT node painted, what changed, and the segments touched."""

    ct_node_id: str
    result: TumorResult
    segmentation_node_id: str
    segment_states: list = field(default_factory=list)  # (segment id, previous vtkOrientedImageData or None)
    one_segment: bool = True


@dataclass
class TumorJob:
    """A checked tumor action, ready to paint: the target node, a view of its voxels and the organ."""

    target: object  # the volume node painted
    ct: Volume  # shares the node's voxel array
    context: OrganContext
    segmentation_node: object
    parameters: TumorParameters
    rng: np.random.Generator
    point_ras: np.ndarray | None = None
    avoid: list = field(default_factory=list)


class TumorLogic:
    """Insert synthetic tumors into a CT volume node and a segmentation node; undo them."""

    def __init__(self) -> None:
        self._undo: list[_Action] = []
        self._redo: list[tuple[_Action, list[np.ndarray]]] = []  # undone actions and their painted voxels
        self._context_key = None
        self._context: OrganContext | None = None
        self._clicks = 0
        self._inputs_key = None

    # --- inputs ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the cached organ mask (call when the CT, segmentation or organ segment changes)."""
        self._context_key = None
        self._context = None

    def reset_if_inputs_changed(self, ct_node, segmentation_node, organ_segment_id, output_node=None) -> None:
        """Forget the cached organ mask when the module's inputs point to other nodes or segments."""
        key = tuple(n.GetID() if n is not None else None for n in (ct_node, segmentation_node, output_node))
        key += (organ_segment_id,)
        if key != self._inputs_key:
            self._inputs_key = key
            self.reset()

    @staticmethod
    def find_organ_segment(segmentation_node, organ: str = "liver") -> str | None:
        """The ID of the first segment named like ``organ`` ("liver", "Liver", TotalSegmentator's names)."""
        if segmentation_node is None:
            return None
        names = ORGAN_SEGMENT_NAMES.get(organ, (organ,))
        segmentation = segmentation_node.GetSegmentation()
        for index in range(segmentation.GetNumberOfSegments()):
            if segmentation.GetNthSegment(index).GetName().strip().lower() in names:
                return segmentation.GetNthSegmentID(index)
        return None

    def prepare_output(self, ct_node, output_node=None):
        """The node to paint: the CT itself, or ``output_node`` filled once with a copy of the CT."""
        if ct_node is None:
            raise InputError("No CT selected. Choose the CT volume to paint tumors into.")
        if output_node is None or output_node is ct_node:
            return ct_node
        if output_node.GetImageData() is None or output_node.GetAttribute("MedSynth.TumorSource") != ct_node.GetID():
            volume = node_to_volume(ct_node)
            from medsynth.mrml.volumes import volume_to_node

            volume_to_node(volume, node=output_node)
            output_node.SetAttribute("MedSynth.TumorSource", ct_node.GetID())
            for key in ("DICOM.Modality", "MedSynth.Units"):
                if ct_node.GetAttribute(key):
                    output_node.SetAttribute(key, ct_node.GetAttribute(key))
        return output_node

    def _ct_view(self, node) -> Volume:
        """A Volume sharing the node's voxel array (painting it changes the node)."""
        if node is None or node.GetImageData() is None:
            raise InputError("The CT volume node holds no image. Load a CT first.")
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        ijk_to_ras = numpy_matrix(matrix)
        if node.GetParentTransformNode() is not None:
            raise InputError(f"'{node.GetName()}' is under a transform: harden it first (Data module).")
        metadata = VolumeMetadata(modality=node.GetAttribute("DICOM.Modality"), units=node.GetAttribute("MedSynth.Units"),
                                  source=node.GetName())
        return Volume(slicer.util.arrayFromVolume(node), ijk_to_ras, metadata)

    def _organ_context(self, ct_node, ct: Volume, segmentation_node, segment_id, organ: str) -> OrganContext:
        if segmentation_node is None:
            raise InputError(f"No segmentation selected. Choose the segmentation holding the {organ}.")
        segment_id = segment_id or self.find_organ_segment(segmentation_node, organ)
        segmentation = segmentation_node.GetSegmentation()
        if not segment_id or segmentation.GetSegment(segment_id) is None:
            raise InputError(
                f"No {organ} segment chosen. Pick the {organ} segment (for example from the TotalSegmentator "
                f"extension), or segment the {organ} in the Segment Editor first."
            )
        key = (ct_node.GetID(), segmentation_node.GetID(), segment_id, ct.array.shape, organ)
        if self._context is None or self._context_key != key:
            labels = segmentation_to_labelmap(segmentation_node, ct, segment_ids=[segment_id])
            mask = labels.array > 0
            if not mask.any():
                raise InputError(
                    f"The {organ} segment '{segmentation.GetSegment(segment_id).GetName()}' is empty. "
                    f"Segment the {organ} first (Segment Editor or TotalSegmentator)."
                )
            from medsynth.tumor import OrganContext

            self._context = OrganContext(ct, mask, organ=organ)
            self._context_key = key
        self._context.ct = ct  # the same voxels, possibly a fresh view of them
        return self._context

    # --- actions: start (main thread) -> paint (any thread) -> commit (main thread) --------------
    def start(self, ct_node, segmentation_node, organ_segment_id, parameters: TumorParameters, output_node=None,
              point_ras=None) -> TumorJob:
        """Check the inputs and get a tumor action ready (main thread; may raise, changes nothing)."""
        from medsynth import parameters as params

        params.validate(parameters, "Tumor parameters")
        target = self.prepare_output(ct_node, output_node)
        ct = self._ct_view(target)
        context = self._organ_context(target, ct, segmentation_node, organ_segment_id, parameters.organ)
        rng = np.random.default_rng([int(parameters.seed), self._clicks])
        earlier = [patch for action in self._undo if action.ct_node_id == target.GetID()
                   for patch in action.result.patches]
        point = None if point_ras is None else np.asarray(point_ras, float)
        return TumorJob(target, ct, context, segmentation_node, parameters, rng, point, earlier)

    @staticmethod
    def paint(job: TumorJob, progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> TumorResult:
        """Paint the voxels (any thread). A failure or cancel restores them; nothing is committed yet."""
        from medsynth.tumor import synthesize

        return synthesize(job.ct, None, job.parameters.to_spec(), job.rng, point_ras=job.point_ras,
                          context=job.context, in_place=True, output_labels="none", avoid=job.avoid,
                          progress=progress, cancel=cancel)

    def commit(self, job: TumorJob, result: TumorResult, one_segment: bool = True) -> list[TumorDescription]:
        """Tell the node its voxels changed, add the tumor segments and record the undo step (main thread)."""
        self._clicks += 1
        slicer.util.arrayFromVolumeModified(job.target)
        action = _Action(job.target.GetID(), result, job.segmentation_node.GetID(), one_segment=one_segment)
        try:
            self._add_segments(job.segmentation_node, job.target, result, one_segment, action)
        except BaseException:
            result.undo(job.ct.array)
            slicer.util.arrayFromVolumeModified(job.target)
            self._restore_segments(job.segmentation_node, action)
            raise
        self._undo.append(action)
        self._redo.clear()
        return result.tumors

    def insert_tumor_at(self, ct_node, segmentation_node, organ_segment_id, point_ras, parameters: TumorParameters,
                        output_node=None, one_segment: bool = True) -> list[TumorDescription]:
        """Paint one tumor centred at ``point_ras`` (a click), blocking; returns its description."""
        job = self.start(ct_node, segmentation_node, organ_segment_id, parameters, output_node, point_ras)
        return self.commit(job, self.paint(job), one_segment)

    def insert_random_tumors(self, ct_node, segmentation_node, organ_segment_id, parameters: TumorParameters,
                             output_node=None, one_segment: bool = True, progress: ProgressCallback | None = None,
                             cancel: CancelToken | None = None) -> list[TumorDescription]:
        """Paint tumors at random places in the organ, blocking."""
        job = self.start(ct_node, segmentation_node, organ_segment_id, parameters, output_node)
        return self.commit(job, self.paint(job, progress, cancel), one_segment)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> bool:
        """Undo the last action: CT voxels and tumor segments exactly as before. False if nothing to undo."""
        if not self._undo:
            return False
        action = self._undo.pop()
        scene = get_scene()
        ct_node = scene.GetNodeByID(action.ct_node_id)
        painted = []
        if ct_node is not None and ct_node.GetImageData() is not None:
            array = slicer.util.arrayFromVolume(ct_node)
            painted = [array[patch.box_global].copy() for patch in action.result.patches]
            action.result.undo(array)
            slicer.util.arrayFromVolumeModified(ct_node)
            self._redo.append((action, painted))
        segmentation_node = scene.GetNodeByID(action.segmentation_node_id)
        if segmentation_node is not None:
            self._restore_segments(segmentation_node, action)
        self._clicks = max(0, self._clicks - 1)
        return True

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def redo(self) -> bool:
        """Redo the last undone action: the painted voxels and tumor segments exactly as they were."""
        if not self._redo:
            return False
        undone, painted = self._redo.pop()
        scene = get_scene()
        ct_node = scene.GetNodeByID(undone.ct_node_id)
        segmentation_node = scene.GetNodeByID(undone.segmentation_node_id)
        if ct_node is None or ct_node.GetImageData() is None or segmentation_node is None:
            raise InputError("The CT or segmentation of the undone tumor was removed from the scene; nothing to redo.")
        array = slicer.util.arrayFromVolume(ct_node)
        for patch, values in zip(undone.result.patches, painted):
            array[patch.box_global] = values
        slicer.util.arrayFromVolumeModified(ct_node)
        action = _Action(undone.ct_node_id, undone.result, undone.segmentation_node_id, one_segment=undone.one_segment)
        try:
            self._add_segments(segmentation_node, ct_node, undone.result, undone.one_segment, action)
        except BaseException:
            undone.result.undo(array)
            slicer.util.arrayFromVolumeModified(ct_node)
            self._restore_segments(segmentation_node, action)
            self._redo.append((undone, painted))
            raise
        self._undo.append(action)
        self._clicks += 1
        return True

    # --- segments ----------------------------------------------------------------------------
    def _add_segments(self, segmentation_node, ct_node, result: TumorResult, one_segment: bool, action: _Action):
        segmentation = segmentation_node.GetSegmentation()
        if segmentation_node.GetNodeReference(segmentation_node.GetReferenceImageGeometryReferenceRole()) is None:
            segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        for patch, tumor in zip(result.patches, result.tumors):
            if one_segment:
                segment_id = segmentation.GetSegmentIdBySegmentName(TUMOR_SEGMENT_NAME)
                name = TUMOR_SEGMENT_NAME
            else:
                segment_id, name = "", f"{TUMOR_SEGMENT_NAME} {self._tumor_number(segmentation)}"
            if not segment_id:
                segment_id = segmentation.AddEmptySegment("", name, TUMOR_COLOR)
                action.segment_states.append((segment_id, None))
            elif not any(state[0] == segment_id for state in action.segment_states):
                previous = slicer.vtkOrientedImageData()
                logic.GetSegmentBinaryLabelmapRepresentation(segmentation_node, segment_id, previous)
                action.segment_states.append((segment_id, previous))
            image = _oriented_box(patch.label, patch.box_global, result.ct.ijk_to_ras)
            if not logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_MERGE_MAX,
                                                    image.GetExtent()):
                raise InputError("Slicer could not write the tumor into the segmentation.")
            segment = segmentation.GetSegment(segment_id)
            segment.SetTag("MedSynth.TumorSeed", str(tumor.seed))

    @staticmethod
    def _tumor_number(segmentation) -> int:
        number = 1
        names = {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}
        while f"{TUMOR_SEGMENT_NAME} {number}" in names:
            number += 1
        return number

    @staticmethod
    def _restore_segments(segmentation_node, action: _Action) -> None:
        segmentation = segmentation_node.GetSegmentation()
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        for segment_id, previous in reversed(action.segment_states):
            if segmentation.GetSegment(segment_id) is None:
                continue
            if previous is None:
                segmentation.RemoveSegment(segment_id)
            else:
                logic.SetBinaryLabelmapToSegment(previous, segmentation_node, segment_id, logic.MODE_REPLACE,
                                                 previous.GetExtent())

    @staticmethod
    def segment_mask(segmentation_node, segment_id: str, reference: Volume) -> np.ndarray:
        """A segment as a bool array on ``reference``'s grid (for checks and exports)."""
        labels = segmentation_to_labelmap(segmentation_node, reference, segment_ids=[segment_id])
        return labels.array > 0


def _oriented_box(mask: np.ndarray, box: tuple[slice, slice, slice], ijk_to_ras: np.ndarray):
    """A vtkOrientedImageData holding ``mask`` at its box of the CT grid (extent in CT voxel indices)."""
    image = slicer.vtkOrientedImageData()
    image.SetImageToWorldMatrix(vtk_matrix(ijk_to_ras))
    image.SetExtent(box[2].start, box[2].stop - 1, box[1].start, box[1].stop - 1, box[0].start, box[0].stop - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    scalars = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    scalars[:] = np.ascontiguousarray(mask, dtype=np.uint8).ravel()
    return image
