"""SemanticSynthesis: turn a segmentation into a synthetic CT with a label-map-to-image model.

The work happens in the medsynth library: ``medsynth.mrml.semantic_logic`` (nodes <-> library) and
``medsynth.generative`` (registry, models, inference). This file binds the GUI to the parameter
node, runs generation in a worker thread (the GUI stays responsive, Apply turns into Cancel) and
puts the results into nodes on the main thread.
"""

import logging
import queue
import threading
from typing import Annotated, Optional

import qt
import slicer
from slicer import vtkMRMLNode, vtkMRMLScalarVolumeNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#
# SemanticSynthesis
#


class SemanticSynthesis(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Semantic Synthesis")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedSynth")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSynth developers"]
        self.parent.helpText = _(
            "Generate a synthetic CT from a segmentation or label map with a label-map-to-image model (SPADE GAN, "
            "semantic diffusion). Segment names are matched to the model's classes (TotalSegmentator names "
            "included); unknown names are reported. Preview one slice, generate the whole volume, or draw another "
            "sample with a new seed. Batch use: SemanticSynthesis/Batch/SemanticSynthesisBatch.py."
        )
        self.parent.acknowledgementText = _(
            "Networks built from MONAI's parts; demo weights trained by MedSynth on LIDC-IDRI and TotalSegmentator "
            "test scans. Methods after SPADE/OASIS and the Semantic Diffusion Model (no code copied)."
        )


#
# SemanticSynthesisParameterNode
#


@parameterNodeWrapper
class SemanticSynthesisParameterNode:
    """Input segmentation or label map, model, class mapping, sampling settings and output volume."""

    inputNode: vtkMRMLNode
    referenceVolume: vtkMRMLScalarVolumeNode
    modelId: str = "spade-ct"
    classMapping: str = ""  # "segment name=model class, ..."
    unknownClasses: str = "error"
    steps: Annotated[int, WithinRange(1, 1000)] = 20
    guidance: Annotated[float, WithinRange(0.0, 10.0)] = 1.5
    seed: Annotated[int, WithinRange(0, 2**31 - 1)] = 0
    outputVolume: vtkMRMLScalarVolumeNode


#
# SemanticSynthesisWidget
#


class SemanticSynthesisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    POLL_MS = 100

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._pollTimer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SemanticSynthesis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SemanticSynthesisLogic()
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(self.POLL_MS)
        self._pollTimer.connect("timeout()", self._poll)

        self.ui.inputSelector.nodeTypes = ["vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode"]
        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.previewButton.connect("clicked(bool)", self.onPreviewButton)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.anotherSampleButton.connect("clicked(bool)", self.onAnotherSampleButton)
        self.ui.refreshModelsButton.connect("clicked(bool)", self.populateModels)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.populateModels()
        self.initializeParameterNode()
        self._checkTorch()

    def cleanup(self) -> None:
        self._cancelJob()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self._cancelJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputNode:
            node = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            if node:
                self._parameterNode.inputNode = node

    def setParameterNode(self, inputParameterNode: Optional[SemanticSynthesisParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            index = self.ui.modelSelector.findData(self._parameterNode.modelId)
            if index >= 0:
                self.ui.modelSelector.setCurrentIndex(index)

    # --- models -------------------------------------------------------------------------------------
    def populateModels(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not read the model registry."), waitCursor=False):
            self.ui.modelSelector.clear()
            for entry in self.logic.label_models():
                self.ui.modelSelector.addItem(f"{entry.id} ({entry.family})", entry.id)
            self.onModelChanged()

    def onModelChanged(self, index=None) -> None:
        modelId = self.ui.modelSelector.currentData
        if not modelId:
            self.ui.modelInfoLabel.text = _("No model registered.")
            return
        entry = next((e for e in self.logic.label_models() if e.id == modelId), None)
        self.ui.modelInfoLabel.text = entry.describe() if entry else ""
        isDiffusion = bool(entry and entry.family == "semantic_diffusion")
        self.ui.stepsSpinBox.enabled = isDiffusion
        self.ui.guidanceSpinBox.enabled = isDiffusion
        if self._parameterNode:
            self._parameterNode.modelId = modelId

    def _checkTorch(self) -> None:
        from medsynth.mrml.semantic_logic import torch_available

        if not torch_available():
            self.ui.statusLabel.text = _(
                "PyTorch is not installed. Install the PyTorch extension (Extensions Manager) and use its "
                "PyTorch Utils module to install torch, then restart Slicer.")
            self.ui.applyButton.enabled = False
            self.ui.previewButton.enabled = False

    # --- actions --------------------------------------------------------------------------------------
    def onPreviewButton(self) -> None:
        """Generate the slice shown in the Red slice view (fast preview)."""
        with slicer.util.tryWithErrorDisplay(_("Could not generate this slice."), waitCursor=True):
            labels = self.logic.read_labels(self._parameterNode.inputNode)
            sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
            center = [sliceNode.GetSliceToRAS().GetElement(row, 3) for row in range(3)]
            index = self.logic.slice_index_at(labels, center)
            self._start(labels, slices=[index], what=_("slice {index}").format(index=index))

    def onApplyButton(self) -> None:
        if self._job is not None:
            self._cancelJob()
            return
        with slicer.util.tryWithErrorDisplay(_("Could not generate the volume."), waitCursor=True):
            labels = self.logic.read_labels(self._parameterNode.inputNode)
            self._start(labels, slices="all", what=_("volume"))

    def onAnotherSampleButton(self) -> None:
        self._parameterNode.seed = (self._parameterNode.seed + 1) % (2**31 - 1)
        self.onApplyButton()

    def _start(self, labels, slices, what: str) -> None:
        from medsynth.generative.class_mapping import parse_mapping
        from medsynth.jobs import CancelToken

        p = self._parameterNode
        body = "auto"
        if p.referenceVolume:
            from medsynth.mrml.volumes import node_to_volume

            ct = node_to_volume(p.referenceVolume)
            ct.require_same_grid(labels, "segmentation")
            body = ct.array > -500
        settings = dict(model_id=self.ui.modelSelector.currentData or p.modelId, slices=slices, seed=p.seed,
                        steps=p.steps, guidance=p.guidance, class_mapping=parse_mapping(p.classMapping),
                        unknown=p.unknownClasses or "error", body=body)
        cancel = CancelToken()
        messages = queue.Queue()

        def work():
            try:
                volumes = self.logic.run(labels, progress=lambda f, m="": messages.put(("progress", f, m)),
                                         cancel=cancel, **settings)
                messages.put(("done", volumes, None))
            except Exception as error:  # reported on the main thread
                messages.put(("error", error, None))

        self._job = {"thread": threading.Thread(target=work, name="MedSynth generate", daemon=True),
                     "cancel": cancel, "messages": messages, "labels": labels, "what": what}
        self.ui.applyButton.text = _("Cancel")
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = _("Generating {what}...").format(what=what)
        self._job["thread"].start()
        self._pollTimer.start()

    def _poll(self) -> None:
        job = self._job
        if job is None:
            self._pollTimer.stop()
            return
        while not job["messages"].empty():
            kind, value, message = job["messages"].get()
            if kind == "progress":
                self.ui.progressBar.value = int(100 * value)
                self.ui.statusLabel.text = message
            elif kind == "done":
                self._finish()
                with slicer.util.tryWithErrorDisplay(_("Could not store the result."), waitCursor=True):
                    node = self.logic.store(value[0], job["labels"], self._parameterNode.outputVolume)
                    self._parameterNode.outputVolume = node
                    slicer.util.setSliceViewerLayers(background=node)
                    unknown = value[0].metadata.extra.get("unknown") or {}
                    note = _(" Unknown classes painted as {cls}: {names}").format(
                        cls=self._parameterNode.unknownClasses, names=", ".join(unknown.values())) if unknown else ""
                    self.ui.statusLabel.text = _("Generated {what}.").format(what=job["what"]) + note
                return
            elif kind == "error":
                self._finish()
                from medsynth.errors import CancelledError

                if isinstance(value, CancelledError):
                    self.ui.statusLabel.text = _("Cancelled; the scene was not changed.")
                else:
                    slicer.util.errorDisplay(_("Generation failed: {error}").format(error=value))
                    self.ui.statusLabel.text = str(value)
                return

    def _finish(self) -> None:
        self._pollTimer.stop()
        self._job = None
        self.ui.applyButton.text = _("Generate volume")
        self.ui.progressBar.value = 100

    def _cancelJob(self) -> None:
        if self._job is not None:
            self._job["cancel"].cancel()


#
# SemanticSynthesisLogic
#

try:
    from medsynth.mrml.semantic_logic import SemanticSynthesisMRMLLogic
except ImportError:  # the library is missing: the hub module explains how to install it
    logging.exception("MedSynth library not found")
    SemanticSynthesisMRMLLogic = object


class SemanticSynthesisLogic(ScriptedLoadableModuleLogic, SemanticSynthesisMRMLLogic):
    """Thin adapter: the Slicer logic base plus the library's MRML logic (medsynth.mrml.semantic_logic)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SemanticSynthesisParameterNode(super().getParameterNode())


#
# SemanticSynthesisTest
#


class SemanticSynthesisTest(ScriptedLoadableModuleTest):
    """Runs in Slicer: the LIDC label map as a segmentation -> the demo GAN -> a CT on its grid."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_generate_from_lidc_segmentation()

    def test_generate_from_lidc_segmentation(self):
        import numpy as np

        from medsynth.data import fetch
        from medsynth.io import read_labelmap
        from medsynth.mrml import labelmap_to_segmentation, node_to_volume

        self.delayDisplay("Generating a CT slab from the LIDC-IDRI-0001 segmentation")
        folder = fetch("lidc")
        labels = read_labelmap(folder / "labels.nii.gz", folder / "structures.csv")
        segmentation = labelmap_to_segmentation(labels)
        node = SemanticSynthesisLogic().generate(segmentation, "spade-ct", slices="60..62")[0]
        volume = node_to_volume(node)
        self.assertTrue(volume.same_grid(labels))
        lung = np.isin(labels.array[60:63], range(10, 15))
        liver = labels.array[60:63] == 5
        self.assertLess(np.median(volume.array[60:63][lung]), np.median(volume.array[60:63][liver]) - 500)
        self.delayDisplay("Test passed")
