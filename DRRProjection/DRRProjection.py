"""DRRProjection: position a virtual C-arm around a CT and see the radiograph live.

The heavy lifting lives in the medsynth library: ``medsynth.mrml.drr_logic`` (nodes <-> DRRs,
C-arm models, aiming, markups, sweeps) and ``medsynth.drr`` (the projector). This file only binds
the GUI to the parameter node and calls that logic.
"""

import logging
import queue
import threading
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper, parameterPack
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from medsynth.errors import CancelledError, MedSynthError
from medsynth.jobs import CancelToken
from medsynth.mrml.carm_models import models_of
from medsynth.mrml.drr_logic import (
    BACKENDS,
    DRRProjectionMRMLLogic,
    DRRRequest,
    OUTPUT_KINDS,
    SPECTRA,
    SWEEP_AXES,
    read_parameter_node,
)

#: Preset names as data (kept in step with medsynth/geometry/presets.json by a test).
PRESETS = ["mobile", "angio", "preview"]

#
# DRRProjection
#


class DRRProjection(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("DRR Projection")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedSynth")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSynth developers"]
        self.parent.helpText = _(
            "Position a virtual C-arm around a CT (LAO/RAO, CRAN/CAUD, SID, SOD, isocenter, detector) and see a "
            "physically based radiograph (DeepDRR physics: materials, X-ray spectrum, Beer-Lambert, noise) live. "
            "Aim the central ray at a point, project points onto the image, and render sweeps of poses. "
            "Batch use: DRRProjection/Batch/DRRProjectionBatch.py."
        )
        self.parent.acknowledgementText = _(
            "Physics after DeepDRR (Unberath et al., MICCAI 2018), reimplemented; no DeepDRR code is included. "
            "An optional backend runs DeepDRR itself from its own Python environment."
        )


#
# DRRProjectionParameterNode
#


@parameterPack
class DRRProjectionCArmPose:
    """The C-arm pose: angles in degrees, distances in mm, isocenter in RAS mm."""

    primaryAngle: Annotated[float, WithinRange(-190.0, 190.0)] = 0.0
    secondaryAngle: Annotated[float, WithinRange(-95.0, 95.0)] = 0.0
    sid: Annotated[float, WithinRange(500.0, 1500.0)] = 1020.0
    sod: Annotated[float, WithinRange(200.0, 1400.0)] = 530.0
    isocenterR: float = 0.0
    isocenterA: float = 0.0
    isocenterS: float = 0.0


@parameterNodeWrapper
class DRRProjectionParameterNode:
    """Everything the module shows; medsynth.mrml.drr_logic.PARAMETERS reads the same names."""

    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    outputVolume: vtkMRMLScalarVolumeNode
    aimPoint: vtkMRMLMarkupsFiducialNode
    pointsToProject: vtkMRMLMarkupsFiducialNode
    pose: DRRProjectionCArmPose
    preset: Annotated[str, Choice(PRESETS)] = "mobile"
    detectorRows: Annotated[int, WithinRange(8, 4096)] = 384
    detectorColumns: Annotated[int, WithinRange(8, 4096)] = 384
    pixelSpacing: Annotated[float, WithinRange(0.01, 10.0)] = 0.776
    spectrum: Annotated[str, Choice(list(SPECTRA))] = "90kV"
    filtration: Annotated[float, WithinRange(0.0, 10.0)] = 0.0
    photons: Annotated[int, WithinRange(100, 10000000)] = 10000
    addNoise: bool = False
    outputKind: Annotated[str, Choice(list(OUTPUT_KINDS))] = "radiograph"
    previewFactor: Annotated[int, WithinRange(1, 16)] = 4
    backend: Annotated[str, Choice(list(BACKENDS))] = "medsynth"
    followAimPoint: bool = False
    showCArm: bool = True
    livePreview: bool = True
    sweepAxis: Annotated[str, Choice(list(SWEEP_AXES))] = "primary"
    sweepStart: Annotated[float, WithinRange(-190.0, 190.0)] = -90.0
    sweepStop: Annotated[float, WithinRange(-190.0, 190.0)] = 90.0
    sweepStep: Annotated[float, WithinRange(0.1, 180.0)] = 30.0
    sweepAsSequence: bool = True


#
# DRRProjectionWidget
#


class DRRProjectionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    #: Preview re-render interval while a slider moves (ms): at most this often.
    PREVIEW_INTERVAL_MS = 80
    #: Full-resolution render this long after the last change (ms).
    SETTLE_MS = 450
    #: How often a background render is polled (ms).
    POLL_MS = 50

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._carmTransformNode = None
        self._updatingTransform = False
        self._observedAimPoint = None
        self._job = None  # the background render in progress: dict(thread, cancel, messages, kind, ...)
        self._previewTimer = None
        self._settleTimer = None
        self._pollTimer = None
        self._previewNode = None
        self._appliedPreset = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DRRProjection.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DRRProjectionLogic()

        # Throttled preview while sliders move, full resolution when they stop, polling of background renders.
        self._previewTimer = qt.QTimer()
        self._previewTimer.setSingleShot(True)
        self._previewTimer.setInterval(self.PREVIEW_INTERVAL_MS)
        self._previewTimer.connect("timeout()", self.onPreviewTimer)
        self._settleTimer = qt.QTimer()
        self._settleTimer.setSingleShot(True)
        self._settleTimer.setInterval(self.SETTLE_MS)
        self._settleTimer.connect("timeout()", self.onSettleTimer)
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(self.POLL_MS)
        self._pollTimer.connect("timeout()", self.onPollTimer)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.sweepButton.connect("clicked(bool)", self.onSweepButton)
        self.ui.aimHereButton.connect("clicked(bool)", self.onAimHereButton)
        self.ui.centerIsocenterButton.connect("clicked(bool)", self.onCenterIsocenterButton)
        self.ui.projectPointsButton.connect("clicked(bool)", self.onProjectPointsButton)

        self.initializeParameterNode()
        self.logic.warm_up_in_background()  # the kernels load (or compile, once) while the user sets up

    def cleanup(self) -> None:
        self.cancelJob()
        for timer in (self._previewTimer, self._settleTimer, self._pollTimer):
            if timer is not None:
                timer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelJob()
        self.setParameterNode(None)
        self._carmTransformNode = None
        self._previewNode = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.ctVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode and not firstVolumeNode.GetAttribute("MedSynth.DRR.CArm"):
                self._parameterNode.ctVolume = firstVolumeNode
                self.centerIsocenter()

    def setParameterNode(self, inputParameterNode: Optional[DRRProjectionParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        self._appliedPreset = inputParameterNode.preset if inputParameterNode else None
        if self._parameterNode:
            # Bindings come from the SlicerParameterName properties in the .ui file.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    # --- reacting to the parameter node -------------------------------------------------------------
    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """Any change: refresh buttons, move the C-arm model, follow the aim point, schedule a preview."""
        with slicer.util.tryWithErrorDisplay(_("Could not update the C-arm."), waitCursor=False):
            self.updateButtons()
            if not self._parameterNode:
                return
            self.applyPresetIfChanged()
            self.observeAimPoint()
            self.updateCArmModels()
            busy = self._job is not None and self._job["kind"] not in ("preview", "settled")
            if self._parameterNode.ctVolume and self._parameterNode.livePreview and not busy:
                if not self._previewTimer.isActive():
                    self._previewTimer.start()  # throttle: at most one preview per interval
                self._settleTimer.start()  # debounce: full resolution once the user stops

    def updateButtons(self) -> None:
        """Apply turns into Cancel while a full-resolution render or a sweep runs."""
        hasInput = bool(self._parameterNode and self._parameterNode.ctVolume)
        busy = self._job is not None and self._job["kind"] not in ("preview", "settled")
        self.ui.applyButton.enabled = hasInput or busy
        self.ui.sweepButton.enabled = hasInput and not busy
        self.ui.applyButton.text = _("Cancel") if busy else _("Apply")
        self.ui.applyButton.toolTip = (_("Stop the rendering") if busy else
                                       _("Render the DRR at full resolution") if hasInput else
                                       _("Select a CT volume first"))

    def request(self) -> DRRRequest:
        request, _nodes = read_parameter_node(self._parameterNode.parameterNode)
        return request

    def updateCArmModels(self) -> None:
        """Show or hide the C-arm models and move their transform to the pose."""
        if not self._parameterNode.showCArm:
            if self._carmTransformNode is not None:
                for model in models_of(self._carmTransformNode).values():
                    model.GetDisplayNode().SetVisibility(False)
            return
        self._updatingTransform = True
        try:
            nodes = self.logic.show_carm(self.request().carm(), self._carmTransformNode)
        except MedSynthError as error:
            # a pose being edited can be momentarily impossible (SOD >= SID): keep the last one, say why
            self.ui.statusLabel.text = str(error)
            return
        finally:
            self._updatingTransform = False
        if nodes.transform is not self._carmTransformNode:
            self._carmTransformNode = nodes.transform
            self._carmTransformNode.GetDisplayNode().SetEditorVisibility(True)
            self.addObserver(self._carmTransformNode, slicer.vtkMRMLTransformableNode.TransformModifiedEvent,
                             self.onCArmTransformModified)
        for model in nodes.models.values():
            model.GetDisplayNode().SetVisibility(True)

    def onCArmTransformModified(self, caller=None, event=None) -> None:
        """The user dragged the C-arm's handles: the sliders follow (a roll is snapped away)."""
        if self._updatingTransform or not self._parameterNode:
            return
        with slicer.util.tryWithErrorDisplay(_("This C-arm position cannot be reached."), waitCursor=False):
            carm = self.logic.carm_from_transform(self._carmTransformNode, self.request().carm())
            with slicer.util.NodeModify(self._parameterNode.parameterNode):
                self._parameterNode.pose.primaryAngle = max(-190.0, min(190.0, carm.primary_angle))
                self._parameterNode.pose.secondaryAngle = max(-95.0, min(95.0, carm.secondary_angle))
                self.setIsocenter(carm.isocenter)

    def observeAimPoint(self) -> None:
        aimPoint = self._parameterNode.aimPoint if self._parameterNode.followAimPoint else None
        if aimPoint is self._observedAimPoint:
            return
        if self._observedAimPoint is not None:
            self.removeObserver(self._observedAimPoint, slicer.vtkMRMLMarkupsNode.PointModifiedEvent, self.onAimPointMoved)
        self._observedAimPoint = aimPoint
        if aimPoint is not None:
            self.addObserver(aimPoint, slicer.vtkMRMLMarkupsNode.PointModifiedEvent, self.onAimPointMoved)

    def onAimPointMoved(self, caller=None, event=None) -> None:
        if self._parameterNode and self._parameterNode.followAimPoint and self._parameterNode.aimPoint:
            self.onAimHereButton()

    def setIsocenter(self, point) -> None:
        self._parameterNode.pose.isocenterR = float(point[0])
        self._parameterNode.pose.isocenterA = float(point[1])
        self._parameterNode.pose.isocenterS = float(point[2])

    def centerIsocenter(self) -> None:
        volume = self.logic.ct_volume(self._parameterNode.ctVolume)
        self.setIsocenter(volume.center_ras)

    def applyPresetIfChanged(self) -> None:
        """A newly chosen preset sets SID, SOD and its detector's field of view (binned to the current rows)."""
        preset = self._parameterNode.preset
        if preset == self._appliedPreset:
            return
        self._appliedPreset = preset
        request = DRRRequest.from_preset(preset, detector_pixels=self._parameterNode.detectorRows)
        with slicer.util.NodeModify(self._parameterNode.parameterNode):
            self._parameterNode.pose.sid = request.sid
            self._parameterNode.pose.sod = request.sod
            self._parameterNode.detectorColumns = request.detector_columns
            self._parameterNode.pixelSpacing = request.pixel_spacing

    # --- buttons ----------------------------------------------------------------------------------
    def onCenterIsocenterButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Select a CT volume first."), waitCursor=False):
            self.centerIsocenter()

    def onAimHereButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not aim at the point."), waitCursor=False):
            request = self.logic.aim_at_point(self.request(), self._parameterNode.aimPoint)
            self.setIsocenter(request.isocenter)

    def onProjectPointsButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not project the points."), waitCursor=True):
            node = self.logic.project_markups(self._parameterNode.pointsToProject, self._parameterNode.outputVolume)
            self.ui.statusLabel.text = _("Projected {count} points onto {name}.").format(
                count=node.GetNumberOfControlPoints(), name=self._parameterNode.outputVolume.GetName())

    def onApplyButton(self) -> None:
        if self._job is not None and self._job["kind"] not in ("preview", "settled"):
            self.cancelJob()
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to compute the DRR."), waitCursor=True):
            self.stopLiveRender()
            self._settleTimer.stop()
            self.startRender("full")

    def onSweepButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to run the sweep."), waitCursor=True):
            self.stopLiveRender()
            self.startRender("sweep")

    def onPreviewTimer(self) -> None:
        if self._job is None:
            self.startLiveRender("preview")

    def onSettleTimer(self) -> None:
        if self._job is not None:
            self._settleTimer.start()  # try again when the running render has finished
            return
        self.startLiveRender("settled")

    def startLiveRender(self, kind: str) -> None:
        """Live view: a pose the user is still adjusting may be impossible; say why without a dialog."""
        with slicer.util.tryWithErrorDisplay(_("Preview failed."), waitCursor=False):
            try:
                self.startRender(kind)
            except MedSynthError as error:
                self.ui.statusLabel.text = str(error)

    # --- background rendering: MRML on the main thread, the projector in a worker thread ---------
    def startRender(self, kind: str) -> None:
        parameters = self._parameterNode
        request = self.request()
        if kind == "sweep":
            angles = self.logic.sweep_angles(parameters.sweepStart, parameters.sweepStop, parameters.sweepStep)
            job = self.logic.prepare_sweep(parameters.ctVolume, request, angles, parameters.sweepAxis,
                                           parameters.segmentation)
        else:
            live = kind in ("preview", "settled")  # the live view: reduced while moving, full when settled
            if self._previewNode is not None and self._previewNode.GetScene() is None:
                self._previewNode = None  # the user deleted the live view: make a new one
            output = self._previewNode if live else parameters.outputVolume
            job = self.logic.prepare(parameters.ctVolume, request, parameters.segmentation, output,
                                     preview=kind == "preview")
            if live:
                job.base_name = "DRR live"
        cancel = CancelToken()
        messages = queue.Queue()

        def work():
            try:
                views = self.logic.render(job, progress=lambda f, m="": messages.put(("progress", f, m)), cancel=cancel)
                messages.put(("done", views, None))
            except Exception as error:  # reported on the main thread
                messages.put(("error", error, None))

        thread = threading.Thread(target=work, name="MedSynth DRR", daemon=True)
        self._job = dict(kind=kind, job=job, thread=thread, cancel=cancel, messages=messages)
        if kind in ("full", "sweep"):
            self.ui.progressBar.value = 0
            self.ui.progressBar.visible = True
            self.ui.statusLabel.text = _("Rendering...")
        self.updateButtons()  # Apply becomes Cancel
        thread.start()
        self._pollTimer.start()

    def onPollTimer(self) -> None:
        job = self._job
        if job is None:
            self._pollTimer.stop()
            return
        finished = None
        while not job["messages"].empty():
            kind, value, message = job["messages"].get()
            if kind == "progress":
                self.ui.progressBar.value = int(100 * value)
                if message and job["kind"] in ("full", "sweep"):
                    self.ui.statusLabel.text = message
            else:
                finished = (kind, value)
        if finished is None:
            return
        self._pollTimer.stop()
        self._job = None
        self.ui.progressBar.visible = False
        self.updateButtons()
        kind, value = finished
        with slicer.util.tryWithErrorDisplay(_("Failed to compute the DRR."), waitCursor=False):
            if kind == "error":
                if isinstance(value, CancelledError):
                    self.ui.statusLabel.text = _("Cancelled; the scene is unchanged.")
                    return
                if job["kind"] in ("preview", "settled") and isinstance(value, MedSynthError):
                    self.ui.statusLabel.text = str(value)
                    return
                raise value
            self.finishRender(job, value)

    def finishRender(self, job: dict, views) -> None:
        parameters = self._parameterNode
        if job["kind"] == "sweep":
            result = self.logic.write_sweep(job["job"], views, parameters.sweepAsSequence)
            if result["browser"] is not None:
                shown = result["browser"].GetProxyNode(result["sequence"])
            else:
                shown = result["nodes"][0]
            self.ui.statusLabel.text = _("Sweep of {count} views ready.").format(count=len(views))
        else:
            nodes = self.logic.write(job["job"], views)
            shown = nodes[0]
            if job["kind"] in ("preview", "settled"):
                self._previewNode = nodes[0]
            else:
                if parameters.outputVolume is None:
                    parameters.outputVolume = nodes[0]
                self.ui.statusLabel.text = _("DRR ready: {name}").format(name=nodes[0].GetName())
        if shown is not None:
            self.showDRR(shown)

    def showDRR(self, node) -> None:
        """Show the radiograph in the red slice view, looking at its detector plane."""
        slicer.util.setSliceViewerLayers(background=node, fit=False)
        sliceWidget = slicer.app.layoutManager().sliceWidget("Red")
        if sliceWidget is None:
            return
        sliceNode = sliceWidget.mrmlSliceNode()
        sliceNode.RotateToVolumePlane(node)
        sliceWidget.sliceLogic().FitSliceToAll()

    def stopLiveRender(self) -> None:
        """Stop pending and running live previews: a full render or a sweep replaces them."""
        self._previewTimer.stop()
        self._settleTimer.stop()
        if self._job is not None and self._job["kind"] in ("preview", "settled"):
            self.cancelJob()
            self._job["thread"].join()
            self.onPollTimer()  # collects the cancelled job; the scene is unchanged

    def cancelJob(self) -> None:
        if self._job is not None:
            self._job["cancel"].cancel()


#
# DRRProjectionLogic
#


class DRRProjectionLogic(ScriptedLoadableModuleLogic, DRRProjectionMRMLLogic):
    """Thin adapter: the logic lives in medsynth.mrml.drr_logic.DRRProjectionMRMLLogic.

    Usable without the GUI, e.g.::

        logic = DRRProjectionLogic()
        nodes = logic.process(ctNode, DRRRequest(primary_angle=30, isocenter=(0, 0, -180)))
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        DRRProjectionMRMLLogic.__init__(self)

    def getParameterNode(self):
        return DRRProjectionParameterNode(super().getParameterNode())


#
# DRRProjectionTest
#


class DRRProjectionTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DRRProjection_logic_on_sample_ct()

    def test_DRRProjection_logic_on_sample_ct(self):
        import numpy as np
        import SampleData

        self.delayDisplay("Loading a sample CT")
        ctNode = SampleData.downloadSample("CTChest")
        logic = DRRProjectionLogic()
        volume = logic.ct_volume(ctNode)
        request = DRRRequest(detector_rows=96, detector_columns=96, pixel_spacing=3.0,
                             isocenter=tuple(float(v) for v in volume.center_ras))
        self.delayDisplay("Rendering a small DRR")
        nodes = logic.process(ctNode, request)
        image = slicer.util.arrayFromVolume(nodes[0])
        self.assertEqual(image.shape, (1, 96, 96))
        self.assertGreater(float(np.std(image)), 0.0)
        # the C-arm model follows the pose, and its transform gives the pose back
        carmNodes = logic.show_carm(request.replace(primary_angle=30.0).carm())
        back = logic.carm_from_transform(carmNodes.transform)
        self.assertAlmostEqual(back.primary_angle, 30.0, places=6)
        self.delayDisplay("Test passed")
