"""SemanticSynthesis: turn a segmentation into a synthetic CT with a label-map-to-image model.

The work happens in the medsynth library: ``medsynth.module_logic.semantic`` (nodes <-> library)
and ``medsynth.generative`` (registry, models, inference). This file binds the GUI to the
parameter node (whose ``semantic`` member is the library's SemanticParameters) and runs
generation through the shared background-task helper: the GUI stays responsive, Apply turns
into Cancel, and results reach the scene on the main thread.
"""

from typing import Optional, Union

import slicer
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
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

from medsynth.generative.parameters import SemanticParameters
from medsynth.jobs.batch_script import batch_command
from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.semantic import SemanticLogic, missing_packages
from medsynth.mrml.parameter_packs import slicer_parameter_pack, to_parameters
from medsynth.mrml.qt_scheduler import qt_scheduler

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
            "sample with a new seed. Needs the PyTorch extension. Batch use: {command} "
            "(or the medsynth command line)."
        ).format(command=batch_command(__file__))
        self.parent.acknowledgementText = _(
            "Networks built from MONAI's parts; demo weights trained by MedSynth on LIDC-IDRI and TotalSegmentator "
            "test scans. Methods after SPADE/OASIS and the Semantic Diffusion Model (no code copied)."
        )


#
# SemanticSynthesisParameterNode
#

SemanticParametersPack = slicer_parameter_pack(SemanticParameters)


@parameterNodeWrapper
class SemanticSynthesisParameterNode:
    """Input segmentation or label map, the job's parameters (``semantic``) and the output volume."""

    inputNode: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode]
    referenceVolume: vtkMRMLScalarVolumeNode
    semantic: SemanticParametersPack
    outputVolume: vtkMRMLScalarVolumeNode


#
# SemanticSynthesisWidget
#


class SemanticSynthesisWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.tasks = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/SemanticSynthesis.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = SemanticSynthesisLogic()
        self.tasks = TaskRunner(qt_scheduler(100))

        self.ui.modelSelector.connect("currentIndexChanged(int)", self.onModelChanged)
        self.ui.previewButton.connect("clicked(bool)", self.onPreviewButton)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.anotherSampleButton.connect("clicked(bool)", self.onAnotherSampleButton)
        self.ui.refreshModelsButton.connect("clicked(bool)", self.populateModels)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.populateModels()
        self.initializeParameterNode()
        self.updateButtons()

    def cleanup(self) -> None:
        self.tasks.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.tasks.cancel()
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
            index = self.ui.modelSelector.findData(self._parameterNode.semantic.model_id)
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
        isMaisi = bool(entry and entry.family == "maisi")
        self.ui.stepsSpinBox.enabled = isDiffusion or isMaisi
        self.ui.guidanceSpinBox.enabled = isDiffusion
        self.ui.maisiBundleLineEdit.enabled = isMaisi
        self.ui.maisiPresetComboBox.enabled = isMaisi
        if self._parameterNode:
            self._parameterNode.semantic.model_id = modelId

    def updateButtons(self) -> None:
        """While a job runs only Cancel is live: a second job would lose its result."""
        busy = self.tasks.busy
        missing = missing_packages()
        self.ui.previewButton.enabled = not busy
        self.ui.anotherSampleButton.enabled = not busy
        self.ui.applyButton.enabled = True
        self.ui.applyButton.text = _("Cancel") if busy else _("Generate volume")
        if missing and not busy:
            self.ui.statusLabel.text = _("Generation needs {names}: press a button to install them "
                                         "(torch through the PyTorch extension).").format(names=", ".join(missing))

    # --- actions --------------------------------------------------------------------------------------
    def onPreviewButton(self) -> None:
        """Generate the slice shown in the Red slice view (fast preview)."""
        with slicer.util.tryWithErrorDisplay(_("Could not generate this slice."), waitCursor=True):
            labels = self.logic.read_labels(self._parameterNode.inputNode)
            sliceNode = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceNode()
            center = [sliceNode.GetSliceToRAS().GetElement(row, 3) for row in range(3)]
            index = self.logic.slice_index_at(labels, center)
            self.start(labels, slices=[index], what=_("slice {index}").format(index=index))

    def onApplyButton(self) -> None:
        if self.tasks.busy:
            self.tasks.cancel()
            return
        with slicer.util.tryWithErrorDisplay(_("Could not generate the volume."), waitCursor=True):
            labels = self.logic.read_labels(self._parameterNode.inputNode)
            self.start(labels, slices="all", what=_("volume"))

    def onAnotherSampleButton(self) -> None:
        if self.tasks.busy:
            return
        self._parameterNode.semantic.seed = (self._parameterNode.semantic.seed + 1) % (2**31 - 1)
        self.onApplyButton()

    def start(self, labels, slices, what: str) -> None:
        from medsynth.mrml.installer import ensure_installed

        if not ensure_installed("semantic", _("Semantic Synthesis")):
            return
        p = self._parameterNode
        parameters = to_parameters(p.semantic)
        if self.ui.modelSelector.currentData:
            parameters.model_id = self.ui.modelSelector.currentData
        body = self.logic.body_from(p.referenceVolume, labels)
        self.tasks.start(
            _("Generation"), lambda progress, cancel: self.logic.run(labels, parameters, slices, 1, body, progress, cancel),
            kind="generate", on_progress=self.onProgress,
            on_done=lambda volumes: self.finish(volumes, labels, what, parameters),
            on_error=self.onFailed, on_cancelled=self.onCancelled)
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = _("Generating {what}...").format(what=what)
        self.updateButtons()

    def onProgress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = int(100 * fraction)
        self.ui.statusLabel.text = message

    def finish(self, volumes, labels, what: str, parameters) -> None:
        self.updateButtons()
        self.ui.progressBar.value = 100
        with slicer.util.tryWithErrorDisplay(_("Could not store the result."), waitCursor=True):
            node = self.logic.store(volumes[0], labels, self._parameterNode.outputVolume)
            self._parameterNode.outputVolume = node
            slicer.util.setSliceViewerLayers(background=node, fit=False)
            unknown = volumes[0].metadata.extra.get("unknown") or {}
            note = _(" Unknown classes painted as {cls}: {names}").format(
                cls=parameters.unknown_classes, names=", ".join(unknown.values())) if unknown else ""
            self.ui.statusLabel.text = _("Generated {what}.").format(what=what) + note

    def onFailed(self, error) -> None:
        self.updateButtons()
        self.ui.statusLabel.text = str(error)
        slicer.util.errorDisplay(_("Generation failed: {error}").format(error=error))

    def onCancelled(self) -> None:
        self.updateButtons()
        self.ui.statusLabel.text = _("Cancelled; the scene was not changed.")


#
# SemanticSynthesisLogic
#


class SemanticSynthesisLogic(ScriptedLoadableModuleLogic, SemanticLogic):
    """Thin adapter: the Slicer logic base plus the library's logic (medsynth.module_logic.semantic)."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def getParameterNode(self):
        return SemanticSynthesisParameterNode(super().getParameterNode())


#
# SemanticSynthesisTest
#


class SemanticSynthesisTest(ScriptedLoadableModuleTest):
    """Runs in Slicer without network: an analytic abdomen's label map -> the demo GAN -> a CT on its grid."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_generate_from_a_phantom_segmentation()

    def test_generate_from_a_phantom_segmentation(self):
        import numpy as np

        from medsynth.mrml import labelmap_to_segmentation, node_to_volume
        from medsynth.phantoms import abdomen_phantom
        from medsynth.volume import LabelMap, LabelTable

        if missing_packages():
            self.skipTest(f"Install {', '.join(missing_packages())} first (the PyTorch extension gives torch)")
        self.delayDisplay("Generating a CT slab from an analytic segmentation")
        ct, liver = abdomen_phantom()
        body = ct.array > -500
        array = np.where(liver.array > 0, 2, np.where(body, 1, 0)).astype(np.uint8)
        labels = LabelMap(array, ct.ijk_to_ras, table=LabelTable({1: "body", 2: "liver"}))
        segmentation = labelmap_to_segmentation(labels)
        parameters = SemanticParameters(class_mapping="body=soft_tissue")
        node = SemanticSynthesisLogic().generate(segmentation, parameters, slices="28..30")[0]
        volume = node_to_volume(node)
        self.assertTrue(volume.same_grid(labels))
        inside = volume.array[28:31][array[28:31] == 2]
        outside = volume.array[28:31][array[28:31] == 0]
        self.assertGreater(float(np.median(inside)), float(np.median(outside)) + 500)
        self.delayDisplay("Test passed")
