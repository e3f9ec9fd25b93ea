"""TumorSynthesis: paint realistic synthetic tumors where you click, or many at random.

The work is done by the medsynth library: ``medsynth.module_logic.tumor`` (nodes -> synthesis ->
nodes, undo) and ``medsynth.tumor`` (placement, shape, texture, appearance). This file binds the
GUI to the parameter node (whose ``tumor`` member is the library's TumorParameters) and runs
every action, clicks included, through the shared background-task helper.
"""

import logging
from typing import Optional

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from medsynth.jobs.batch_script import batch_command
from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.tumor import TumorLogic, describe
from medsynth.mrml.parameter_packs import slicer_parameter_pack, to_parameters
from medsynth.mrml.qt_scheduler import qt_scheduler
from medsynth.tumor.parameters import TumorParameters

#
# TumorSynthesis
#


class TumorSynthesis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Tumor Synthesis")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedSynth")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSynth developers"]
        self.parent.helpText = _(
            "Paint realistic synthetic tumors into a CT: choose the organ and its segment, turn on 'Click to paint' "
            "and click inside the organ in a slice view, or press 'Random tumors'. Tumors fit inside the organ, "
            "avoid vessels and each other, take their intensity from the organ's own HU, and go into a 'Tumor' "
            "segment. Undo restores the CT and the segmentation exactly. Batch use: {command} "
            "(or the medsynth command line)."
        ).format(command=batch_command(__file__))
        self.parent.acknowledgementText = _(
            "The method of Hu et al., 'Label-Free Liver Tumor Segmentation' (CVPR 2023), reimplemented clean-room "
            "and extended; no code of SyntheticTumors or DiffTumor is included."
        )


#
# TumorSynthesisParameterNode
#

TumorParametersPack = slicer_parameter_pack(TumorParameters)


@parameterNodeWrapper
class TumorSynthesisParameterNode:
    """Nodes, the tumor job's parameters (``tumor``, the library's TumorParameters) and output options."""

    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    organSegmentID: str = ""
    tumor: TumorParametersPack
    outputVolume: vtkMRMLScalarVolumeNode
    oneSegmentPerTumor: bool = False


#
# TumorSynthesisWidget
#


class TumorSynthesisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    CLICKS_NODE_NAME = "TumorSynthesis clicks"

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.tasks = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._clicksNode = None
        self._organ = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorSynthesis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TumorSynthesisLogic()
        self.tasks = TaskRunner(qt_scheduler())

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.paintModeButton.connect("toggled(bool)", self.onPaintModeToggled)
        self.ui.randomButton.connect("clicked(bool)", self.onRandomButton)
        self.ui.undoButton.connect("clicked(bool)", self.onUndoButton)
        self.ui.organSegmentSelector.connect("currentSegmentChanged(QString)", self.onOrganSegmentChanged)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.setPaintMode(False)
        self.tasks.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.ui.paintModeButton.checked = False  # ends paint mode: place mode and the click node go away
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.ui.paintModeButton.checked = False
        self.tasks.cancel()
        self.setParameterNode(None)
        self._clicksNode = None
        self.logic.reset()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.ctVolume:
            from medsynth.module_logic.drr import first_ct_node

            self._parameterNode.ctVolume = first_ct_node(slicer.mrmlScene)
        if not self._parameterNode.segmentation:
            self._parameterNode.segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")

    def setParameterNode(self, inputParameterNode: Optional[TumorSynthesisParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # Bindings come from the SlicerParameterName properties in the .ui file.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    # --- reacting to the parameter node -------------------------------------------------------------
    def onParameterNodeModified(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        segmentation = node.segmentation
        organ = node.tumor.organ
        if self.ui.organSegmentSelector.currentNode() is not segmentation:
            self.ui.organSegmentSelector.setCurrentNode(segmentation)
        if segmentation and (not node.organSegmentID or organ != self._organ):
            found = self.logic.find_organ_segment(segmentation, organ)  # the user's own choice stays otherwise
            if found and found != node.organSegmentID:
                node.organSegmentID = found
        self._organ = organ
        if node.organSegmentID and self.ui.organSegmentSelector.currentSegmentID() != node.organSegmentID:
            self.ui.organSegmentSelector.setCurrentSegmentID(node.organSegmentID)
        ready = bool(node.ctVolume and segmentation and node.organSegmentID)
        busy = self.tasks.busy
        self.ui.paintModeButton.enabled = ready
        self.ui.randomButton.enabled = (ready and not busy) or self.tasks.busy_with("random")
        self.ui.randomButton.text = _("Cancel") if self.tasks.busy_with("random") else _("Random tumors")
        self.ui.undoButton.enabled = self.logic.can_undo and not busy
        self.ui.diameterSliderWidget.enabled = node.tumor.tumor_type == "custom"
        tip = _("Select a CT, a segmentation and its organ segment first")
        self.ui.paintModeButton.toolTip = _("Each click in a slice view inserts a tumor there") if ready else tip
        self.logic.reset_if_inputs_changed(node.ctVolume, segmentation, node.organSegmentID, node.outputVolume)

    def onOrganSegmentChanged(self, segmentId) -> None:
        if self._parameterNode and segmentId != self._parameterNode.organSegmentID:
            self._parameterNode.organSegmentID = segmentId or ""

    # --- click to paint -----------------------------------------------------------------------------
    def onPaintModeToggled(self, enabled) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not start click-to-paint."), waitCursor=False):
            if enabled and not self.ensureDependencies():
                self.ui.paintModeButton.checked = False
                return
            self.setPaintMode(enabled)

    def setPaintMode(self, enabled: bool) -> None:
        """Place mode with a hidden, unsaved point list; everything is undone when paint mode ends."""
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        if not enabled:
            if self._clicksNode is not None:
                self.removeObserver(self._clicksNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                                    self.onPointPlaced)
                if self._clicksNode.GetScene() is not None:
                    slicer.mrmlScene.RemoveNode(self._clicksNode)
                self._clicksNode = None
            interactionNode.SetPlaceModePersistence(0)
            if interactionNode.GetCurrentInteractionMode() == interactionNode.Place:
                interactionNode.SetCurrentInteractionMode(interactionNode.ViewTransform)
            return
        if self._clicksNode is None or self._clicksNode.GetScene() is None:
            self._clicksNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", self.CLICKS_NODE_NAME)
            self._clicksNode.SetSaveWithScene(False)
            self._clicksNode.SetHideFromEditors(True)
            self._clicksNode.CreateDefaultDisplayNodes()
            self._clicksNode.GetDisplayNode().SetVisibility(False)
            self.addObserver(self._clicksNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)
        selectionNode = slicer.app.applicationLogic().GetSelectionNode()
        selectionNode.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selectionNode.SetActivePlaceNodeID(self._clicksNode.GetID())
        interactionNode.SetPlaceModePersistence(1)
        interactionNode.SetCurrentInteractionMode(interactionNode.Place)

    def onPointPlaced(self, caller, event) -> None:
        """A click in a slice view: paint a tumor there (in the background), then forget the point."""
        count = caller.GetNumberOfControlPoints()
        if count == 0:
            return
        point = [0.0, 0.0, 0.0]
        caller.GetNthControlPointPositionWorld(count - 1, point)
        caller.RemoveAllControlPoints()
        if self.tasks.busy:
            self.ui.statusLabel.text = _("Still painting the previous tumor; click again in a moment.")
            return
        self.startAction("click", point)

    # --- random tumors, undo ------------------------------------------------------------------------
    def onRandomButton(self) -> None:
        if self.tasks.busy_with("random"):
            self.tasks.cancel()
            return
        if self.ensureDependencies():
            self.startAction("random")

    def startAction(self, kind: str, point=None) -> None:
        """Check on the main thread, paint in the worker, commit on the main thread (or change nothing)."""
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not insert a tumor here."), waitCursor=False):
            job = self.logic.start(node.ctVolume, node.segmentation, node.organSegmentID, to_parameters(node.tumor),
                                   node.outputVolume, point_ras=point)
            oneSegment = not node.oneSegmentPerTumor
            self.tasks.start(_("Tumor"), lambda progress, cancel: self.logic.paint(job, progress, cancel), kind=kind,
                             on_progress=self.onProgress,
                             on_done=lambda result: self.finishAction(job, result, oneSegment),
                             on_error=self.onActionFailed, on_cancelled=self.onActionCancelled)
            self.ui.progressBar.value = 0
            self.ui.progressBar.visible = kind == "random"
            self.onParameterNodeModified()

    def onProgress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.progressBar.setFormat(f"%p% {message}")

    def finishAction(self, job, result, oneSegment: bool) -> None:
        self.ui.progressBar.visible = False
        with slicer.util.tryWithErrorDisplay(_("Could not store the tumors."), waitCursor=False):
            tumors = self.logic.commit(job, result, oneSegment)
            self.ui.statusLabel.text = describe(tumors)
            self.showOutput()
        self.onParameterNodeModified()

    def onActionFailed(self, error) -> None:
        self.ui.progressBar.visible = False
        self.onParameterNodeModified()
        with slicer.util.tryWithErrorDisplay(_("Could not insert the tumor."), waitCursor=False):
            raise error

    def onActionCancelled(self) -> None:
        self.ui.progressBar.visible = False
        self.ui.statusLabel.text = _("Cancelled: nothing was changed.")
        self.onParameterNodeModified()

    def onUndoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not undo."), waitCursor=True):
            if self.logic.undo():
                self.ui.statusLabel.text = _("Undone: the CT and the segmentation are as before.")
        self.onParameterNodeModified()

    def showOutput(self) -> None:
        """Show the painted volume in the slice views that show its CT (others are left alone)."""
        node = self._parameterNode
        shown = node.outputVolume or node.ctVolume
        layoutManager = slicer.app.layoutManager()
        for name in layoutManager.sliceViewNames():
            composite = layoutManager.sliceWidget(name).mrmlSliceCompositeNode()
            if composite.GetBackgroundVolumeID() in (None, "", node.ctVolume.GetID()):
                composite.SetBackgroundVolumeID(shown.GetID())

    def ensureDependencies(self) -> bool:
        from medsynth.mrml.installer import ensure_installed

        with slicer.util.tryWithErrorDisplay(_("Could not install what tumor synthesis needs."), waitCursor=True):
            return ensure_installed("tumor", _("Tumor Synthesis"))
        return False


#
# TumorSynthesisLogic
#


class TumorSynthesisLogic(ScriptedLoadableModuleLogic, TumorLogic):
    """Thin adapter: the logic lives in medsynth.module_logic.tumor.TumorLogic.

    Usable without the GUI, e.g.::

        logic = TumorSynthesisLogic()
        logic.insert_tumor_at(ctNode, segmentationNode, None, [10, 20, -150], TumorParameters(tumor_type="medium"))
        logic.undo()
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        TumorLogic.__init__(self)

    def getParameterNode(self):
        return TumorSynthesisParameterNode(super().getParameterNode())


#
# TumorSynthesisTest
#


class TumorSynthesisTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_TumorSynthesis_click_and_undo()

    def test_TumorSynthesis_click_and_undo(self):
        """An analytic abdomen (air, 40 HU body, 60 HU liver ellipsoid): click, check, undo bit-exact."""
        import numpy as np

        from medsynth.dependencies import missing_for
        from medsynth.mrml import labelmap_to_segmentation, volume_to_node
        from medsynth.phantoms import abdomen_phantom

        if missing_for("tumor"):
            self.skipTest("numba is not installed: install it from the MedSynth module")
        self.delayDisplay("Building an analytic CT with a liver")
        ct, liver = abdomen_phantom()
        ctNode = volume_to_node(ct, name="Phantom CT")
        segmentation = labelmap_to_segmentation(liver, name="Phantom")
        logic = TumorSynthesisLogic()
        before = slicer.util.arrayFromVolume(ctNode).copy()
        small = TumorParameters(tumor_type="small", seed=1)

        self.delayDisplay("Clicking inside the liver")
        tumors = logic.insert_tumor_at(ctNode, segmentation, None, ct.center_ras, small)
        self.assertEqual(len(tumors), 1)
        self.assertEqual(tumors[0].realism["components"], 1)
        self.assertIsNotNone(segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor"))
        self.assertFalse(np.array_equal(slicer.util.arrayFromVolume(ctNode), before))

        self.delayDisplay("Clicking outside the liver gives a clear error")
        with self.assertRaises(ValueError):
            logic.insert_tumor_at(ctNode, segmentation, None, ct.ijk_to_ras_points([2.0, 2.0, 2.0]), small)

        self.delayDisplay("Undo")
        self.assertTrue(logic.undo())
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(ctNode), before))
        self.assertEqual(segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor"), "")
        logging.info("TumorSynthesis self-test passed")
        self.delayDisplay("Test passed")
