"""TumorSynthesis: paint realistic synthetic liver tumors where you click, or many at random.

The work is done by the medsynth library: ``medsynth.mrml.tumor_logic`` (nodes -> synthesis ->
nodes, undo) and ``medsynth.tumor`` (placement, shape, texture, appearance). This file only binds
the GUI to the parameter node and calls that logic.
"""

import logging
from typing import Annotated, Optional

import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from medsynth.errors import CancelledError
from medsynth.jobs import CancelToken
from medsynth.mrml.tumor_logic import MODULE_TUMOR_TYPES, TumorSynthesisMRMLLogic, describe, tumor_spec

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
            "Paint realistic synthetic liver tumors into a CT: turn on 'Click to paint' and click inside the liver "
            "in a slice view, or press 'Random tumors'. Tumors fit inside the liver, avoid vessels and each other, "
            "take their intensity from this liver's own HU, and go into a 'Tumor' segment. Undo restores the CT "
            "and the segmentation exactly. Batch use: TumorSynthesis/Batch/TumorSynthesisBatch.py."
        )
        self.parent.acknowledgementText = _(
            "The method of Hu et al., 'Label-Free Liver Tumor Segmentation' (CVPR 2023), reimplemented clean-room "
            "and extended; no code of SyntheticTumors or DiffTumor is included."
        )


#
# TumorSynthesisParameterNode
#


@parameterNodeWrapper
class TumorSynthesisParameterNode:
    """What the module shows; medsynth.mrml.tumor_logic.tumor_spec turns it into a TumorSpec."""

    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    liverSegmentID: str = ""
    tumorType: Annotated[str, Choice(MODULE_TUMOR_TYPES)] = "medium"
    diameterMm: Annotated[float, WithinRange(2.0, 150.0)] = 30.0
    count: Annotated[int, WithinRange(0, 100)] = 0
    density: Annotated[str, Choice(["hypo", "iso", "hyper"])] = "hypo"
    capsule: bool = False
    massEffect: bool = False
    necrosis: bool = False
    keepVessels: bool = False
    allowOverlap: bool = False
    seed: Annotated[int, WithinRange(0, 2147483647)] = 0
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
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._clicksNode = None
        self._cancel = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/TumorSynthesis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = TumorSynthesisLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.paintModeButton.connect("toggled(bool)", self.onPaintModeToggled)
        self.ui.randomButton.connect("clicked(bool)", self.onRandomButton)
        self.ui.undoButton.connect("clicked(bool)", self.onUndoButton)
        self.ui.liverSegmentSelector.connect("currentSegmentChanged(QString)", self.onLiverSegmentChanged)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.setPaintMode(False)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.ui.paintModeButton.checked = False
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.ui.paintModeButton.checked = False
        self.setParameterNode(None)
        self._clicksNode = None
        self.logic.reset()

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.ctVolume:
            self._parameterNode.ctVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
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
        if self.ui.liverSegmentSelector.currentNode() is not segmentation:
            self.ui.liverSegmentSelector.setCurrentNode(segmentation)
        if segmentation and not node.liverSegmentID:
            liverId = self.logic.find_liver_segment(segmentation)
            if liverId:
                node.liverSegmentID = liverId
        if node.liverSegmentID and self.ui.liverSegmentSelector.currentSegmentID() != node.liverSegmentID:
            self.ui.liverSegmentSelector.setCurrentSegmentID(node.liverSegmentID)
        ready = bool(node.ctVolume and segmentation and node.liverSegmentID)
        busy = self._cancel is not None
        self.ui.paintModeButton.enabled = ready and not busy
        self.ui.randomButton.enabled = ready or busy
        self.ui.randomButton.text = _("Cancel") if busy else _("Random tumors")
        self.ui.undoButton.enabled = self.logic.can_undo and not busy
        self.ui.diameterSliderWidget.enabled = node.tumorType == "custom"
        tip = _("Select a CT, a segmentation and its liver segment first")
        self.ui.paintModeButton.toolTip = _("Each click in a slice view inserts a tumor there") if ready else tip
        self.logic.reset_if_inputs_changed(node.ctVolume, segmentation, node.liverSegmentID, node.outputVolume)

    def onLiverSegmentChanged(self, segmentId) -> None:
        if self._parameterNode and segmentId != self._parameterNode.liverSegmentID:
            self._parameterNode.liverSegmentID = segmentId or ""

    def spec(self):
        node = self._parameterNode
        return tumor_spec(node.tumorType, node.diameterMm, node.count, node.density, node.capsule, node.massEffect,
                          node.necrosis, node.keepVessels, node.allowOverlap)

    # --- click to paint -----------------------------------------------------------------------------
    def onPaintModeToggled(self, enabled) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not start click-to-paint."), waitCursor=False):
            self.setPaintMode(enabled)

    def setPaintMode(self, enabled: bool) -> None:
        interactionNode = slicer.app.applicationLogic().GetInteractionNode()
        if not enabled:
            if self._clicksNode is not None:
                self.removeObserver(self._clicksNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent,
                                    self.onPointPlaced)
            if interactionNode.GetCurrentInteractionMode() == interactionNode.Place:
                interactionNode.SetCurrentInteractionMode(interactionNode.ViewTransform)
            return
        if self._clicksNode is None or slicer.mrmlScene.GetNodeByID(self._clicksNode.GetID()) is None:
            self._clicksNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", self.CLICKS_NODE_NAME)
            self._clicksNode.CreateDefaultDisplayNodes()
            self._clicksNode.GetDisplayNode().SetVisibility(False)
        self.addObserver(self._clicksNode, slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self.onPointPlaced)
        selectionNode = slicer.app.applicationLogic().GetSelectionNode()
        selectionNode.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
        selectionNode.SetActivePlaceNodeID(self._clicksNode.GetID())
        interactionNode.SetPlaceModePersistence(1)
        interactionNode.SetCurrentInteractionMode(interactionNode.Place)

    def onPointPlaced(self, caller, event) -> None:
        """A click in a slice view: insert a tumor there at once, then forget the point."""
        count = caller.GetNumberOfControlPoints()
        if count == 0:
            return
        point = [0.0, 0.0, 0.0]
        caller.GetNthControlPointPositionWorld(count - 1, point)
        caller.RemoveAllControlPoints()
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Could not insert a tumor here."), waitCursor=True):
            tumors = self.logic.insert_tumor_at(node.ctVolume, node.segmentation, node.liverSegmentID, point,
                                                self.spec(), node.seed, node.outputVolume,
                                                one_segment=not node.oneSegmentPerTumor)
            self.ui.statusLabel.text = describe(tumors)
            self.showOutput()
        self.onParameterNodeModified()

    # --- random tumors, undo ------------------------------------------------------------------------
    def onRandomButton(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            return
        node = self._parameterNode
        self._cancel = CancelToken()
        self.ui.progressBar.visible = True
        self.onParameterNodeModified()

        def progress(fraction, message=""):
            self.ui.progressBar.value = int(100 * fraction)
            self.ui.progressBar.setFormat(f"%p% {message}")
            slicer.app.processEvents()  # keeps Cancel responsive between tumors

        try:
            with slicer.util.tryWithErrorDisplay(_("Could not insert random tumors."), waitCursor=True):
                try:
                    tumors = self.logic.insert_random_tumors(
                        node.ctVolume, node.segmentation, node.liverSegmentID, self.spec(), node.seed,
                        node.outputVolume, one_segment=not node.oneSegmentPerTumor, progress=progress,
                        cancel=self._cancel)
                    self.ui.statusLabel.text = describe(tumors)
                    self.showOutput()
                except CancelledError:
                    self.ui.statusLabel.text = _("Cancelled: nothing was changed.")
        finally:
            self._cancel = None
            self.ui.progressBar.visible = False
            self.onParameterNodeModified()

    def onUndoButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not undo."), waitCursor=True):
            if self.logic.undo():
                self.ui.statusLabel.text = _("Undone: the CT and the segmentation are as before.")
        self.onParameterNodeModified()

    def showOutput(self) -> None:
        node = self._parameterNode
        shown = node.outputVolume or node.ctVolume
        slicer.util.setSliceViewerLayers(background=shown)


#
# TumorSynthesisLogic
#


class TumorSynthesisLogic(ScriptedLoadableModuleLogic, TumorSynthesisMRMLLogic):
    """Thin adapter: the logic lives in medsynth.mrml.tumor_logic.TumorSynthesisMRMLLogic.

    Usable without the GUI, e.g.::

        logic = TumorSynthesisLogic()
        logic.insert_tumor_at(ctNode, segmentationNode, liverSegmentId, [10, 20, -150], tumor_spec("medium"), seed=0)
        logic.undo()
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        TumorSynthesisMRMLLogic.__init__(self)

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

        from medsynth.mrml import labelmap_to_segmentation, volume_to_node
        from medsynth.volume import LabelMap, LabelTable, Volume, VolumeMetadata

        self.delayDisplay("Building an analytic CT with a liver")
        k, j, i = np.mgrid[0:60, 0:160, 0:160]
        body = (i - 80) ** 2 + (j - 80) ** 2 < 75 ** 2
        liver = ((i - 80) / 55.0) ** 2 + ((j - 80) / 45.0) ** 2 + ((k - 30) / 26.0) ** 2 < 1
        noise = np.random.default_rng(0).normal(0, 10, body.shape)
        array = np.where(liver, 60.0, np.where(body, 40.0, -1000.0)) + noise
        ct = Volume.from_spacing(array.astype(np.float32), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0),
                                 metadata=VolumeMetadata(modality="CT", units="HU"))
        ctNode = volume_to_node(ct, name="Phantom CT")
        segmentation = labelmap_to_segmentation(
            LabelMap(liver.astype(np.uint8), ct.ijk_to_ras, table=LabelTable({1: "liver"})), name="Phantom")
        logic = TumorSynthesisLogic()
        before = slicer.util.arrayFromVolume(ctNode).copy()
        centre = ct.center_ras

        self.delayDisplay("Clicking inside the liver")
        tumors = logic.insert_tumor_at(ctNode, segmentation, None, centre, tumor_spec("small"), seed=1)
        self.assertEqual(len(tumors), 1)
        self.assertEqual(tumors[0].realism["components"], 1)
        self.assertIsNotNone(segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor"))
        self.assertFalse(np.array_equal(slicer.util.arrayFromVolume(ctNode), before))

        self.delayDisplay("Clicking outside the liver gives a clear error")
        with self.assertRaises(ValueError):
            logic.insert_tumor_at(ctNode, segmentation, None, ct.ijk_to_ras_points([2.0, 2.0, 2.0]),
                                  tumor_spec("small"), seed=1)

        self.delayDisplay("Undo")
        self.assertTrue(logic.undo())
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(ctNode), before))
        self.assertEqual(segmentation.GetSegmentation().GetSegmentIdBySegmentName("Tumor"), "")
        logging.info("TumorSynthesis self-test passed")
        self.delayDisplay("Test passed")
