"""DRRProjection: position a virtual C-arm around a CT and see the radiograph live.

The work lives in the medsynth library: ``medsynth.module_logic.drr`` (nodes <-> DRRs, C-arm
models, aiming, markups, sweeps) and ``medsynth.drr`` (the projector). This file binds the GUI
to the parameter node (whose ``drr`` member is the library's DRRParameters) and runs the logic
through the shared background-task helper (``medsynth.jobs.tasks``).
"""

from typing import Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLMarkupsFiducialNode, vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
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

from medsynth.drr.parameters import DRRParameters
from medsynth.drr.poses import SweepParameters
from medsynth.errors import MedSynthError
from medsynth.jobs.batch_script import batch_command
from medsynth.jobs.tasks import TaskRunner
from medsynth.module_logic.drr import DRRLogic, first_ct_node
from medsynth.mrml.parameter_packs import slicer_parameter_pack, store_parameters, to_parameters
from medsynth.mrml.qt_scheduler import qt_scheduler

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
            "Batch use: {command} (or the medsynth command line)."
        ).format(command=batch_command(__file__))
        self.parent.acknowledgementText = _(
            "Physics after DeepDRR (Unberath et al., MICCAI 2018), reimplemented; no DeepDRR code is included. "
            "An optional backend runs DeepDRR itself from its own Python environment."
        )


#
# DRRProjectionParameterNode
#

DRRParametersPack = slicer_parameter_pack(DRRParameters)
SweepParametersPack = slicer_parameter_pack(SweepParameters)


@parameterNodeWrapper
class DRRProjectionParameterNode:
    """Nodes, the DRR job's parameters (``drr``, the library's DRRParameters), the sweep and view options."""

    ctVolume: vtkMRMLScalarVolumeNode
    segmentation: vtkMRMLSegmentationNode
    outputVolume: vtkMRMLScalarVolumeNode
    aimPoint: vtkMRMLMarkupsFiducialNode
    pointsToProject: vtkMRMLMarkupsFiducialNode
    drr: DRRParametersPack
    sweep: SweepParametersPack
    followAimPoint: bool = False
    showCArm: bool = True
    livePreview: bool = True
    sweepAsSequence: bool = True


#
# DRRProjectionWidget
#


class DRRProjectionWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    #: Preview re-render interval while a slider moves (ms): at most this often.
    PREVIEW_INTERVAL_MS = 80
    #: Full-resolution render this long after the last change (ms).
    SETTLE_MS = 450
    #: Renders of the live view (cancelled by anything else).
    LIVE = ("preview", "settled")

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.tasks = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._carmTransformNode = None
        self._updatingTransform = False
        self._observedAimPoint = None
        self._previewTimer = None
        self._settleTimer = None
        self._previewNode = None
        self._appliedPreset = None
        self._renderedKey = None  # what the live view shows; a preview starts only when this changes
        self._pending = None  # a render waiting for the live preview to stop ("full" or "sweep")
        self._dependenciesDeclined = False

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DRRProjection.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DRRProjectionLogic()
        self.tasks = TaskRunner(qt_scheduler())

        # Throttled preview while sliders move, full resolution when they stop.
        self._previewTimer = qt.QTimer()
        self._previewTimer.setSingleShot(True)
        self._previewTimer.setInterval(self.PREVIEW_INTERVAL_MS)
        self._previewTimer.connect("timeout()", lambda: self.startRender("preview"))
        self._settleTimer = qt.QTimer()
        self._settleTimer.setSingleShot(True)
        self._settleTimer.setInterval(self.SETTLE_MS)
        self._settleTimer.connect("timeout()", lambda: self.startRender("settled"))

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.sweepButton.connect("clicked(bool)", self.onSweepButton)
        self.ui.aimHereButton.connect("clicked(bool)", self.onAimHereButton)
        self.ui.centerIsocenterButton.connect("clicked(bool)", self.onCenterIsocenterButton)
        self.ui.projectPointsButton.connect("clicked(bool)", self.onProjectPointsButton)

        self.initializeParameterNode()
        if self.logic.dependencies_ready():
            self.logic.warm_up_in_background()  # the kernels load (or compile, once) while the user sets up

    def cleanup(self) -> None:
        self.stopLiveView()
        if self.tasks is not None:
            self.tasks.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        self.stopLiveView()  # no preview may render after the user left
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        self.stopLiveView()
        self.tasks.cancel()
        self.setParameterNode(None)
        self._carmTransformNode = None
        self._previewNode = None

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.ctVolume:
            ctNode = first_ct_node(slicer.mrmlScene)  # never a label map, an MR or a DRR
            if ctNode is not None:
                self._parameterNode.ctVolume = ctNode
                with slicer.util.tryWithErrorDisplay(_("Could not centre the C-arm on the CT."), waitCursor=False):
                    self.centerIsocenter()

    def setParameterNode(self, inputParameterNode: Optional[DRRProjectionParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        self._appliedPreset = inputParameterNode.drr.preset if inputParameterNode else None
        self._renderedKey = None
        if self._parameterNode:
            # Bindings come from the SlicerParameterName properties in the .ui file.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    # --- reacting to the parameter node -------------------------------------------------------------
    def parameters(self) -> DRRParameters:
        return to_parameters(self._parameterNode.drr)

    def onParameterNodeModified(self, caller=None, event=None) -> None:
        """Any change: refresh buttons, move the C-arm model, follow the aim point, schedule a preview."""
        with slicer.util.tryWithErrorDisplay(_("Could not update the C-arm."), waitCursor=False):
            self.updateButtons()
            if not self._parameterNode:
                return
            self.applyPresetIfChanged()
            self.observeAimPoint()
            self.updateCArmModels()
            key = self.logic.render_key(self._parameterNode.ctVolume, self._parameterNode.segmentation,
                                        self.parameters())
            live = self._parameterNode.ctVolume and self._parameterNode.livePreview and not self._dependenciesDeclined
            if live and key != self._renderedKey and not self.tasks.busy_with("full", "sweep"):
                if not self._previewTimer.isActive():
                    self._previewTimer.start()  # throttle: at most one preview per interval
                self._settleTimer.start()  # debounce: full resolution once the user stops

    def updateButtons(self) -> None:
        """Apply turns into Cancel while a full-resolution render or a sweep runs."""
        hasInput = bool(self._parameterNode and self._parameterNode.ctVolume)
        busy = self.tasks is not None and self.tasks.busy_with("full", "sweep")
        self.ui.applyButton.enabled = hasInput or busy
        self.ui.sweepButton.enabled = hasInput and not busy
        self.ui.applyButton.text = _("Cancel") if busy else _("Apply")
        self.ui.applyButton.toolTip = (_("Stop the rendering") if busy else
                                       _("Render the DRR at full resolution") if hasInput else
                                       _("Select a CT volume first"))

    def updateCArmModels(self) -> None:
        """Show or hide the C-arm models and move their transform to the pose."""
        nodes = None
        if self._parameterNode.showCArm:
            self._updatingTransform = True
            try:
                nodes = self.logic.show_carm(self.parameters().carm(), self._carmTransformNode)
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
        self.logic.set_carm_visible(self._carmTransformNode, bool(self._parameterNode.showCArm))

    def onCArmTransformModified(self, caller=None, event=None) -> None:
        """The user dragged the C-arm's handles: the sliders follow (a roll is snapped away)."""
        if self._updatingTransform or not self._parameterNode:
            return
        with slicer.util.tryWithErrorDisplay(_("This C-arm position cannot be reached."), waitCursor=False):
            parameters = self.parameters()
            carm = self.logic.carm_from_transform(self._carmTransformNode, parameters.carm())
            store_parameters(self._parameterNode.drr, self.logic.pose_from_carm(parameters, carm))

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

    def centerIsocenter(self) -> None:
        parameters = self.parameters()
        center = self.logic.ct_volume(self._parameterNode.ctVolume).center_ras
        store_parameters(self._parameterNode.drr, parameters.replace(pose=parameters.pose.moved_to(center)))

    def applyPresetIfChanged(self) -> None:
        """A newly chosen preset sets SID, SOD and its detector's field of view (binned to the current rows)."""
        preset = self._parameterNode.drr.preset
        if preset == self._appliedPreset:
            return
        self._appliedPreset = preset
        store_parameters(self._parameterNode.drr, self.parameters().with_preset(preset))

    # --- buttons ----------------------------------------------------------------------------------
    def onCenterIsocenterButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Select a CT volume first."), waitCursor=False):
            self.centerIsocenter()

    def onAimHereButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not aim at the point."), waitCursor=False):
            parameters = self.parameters()
            pose = self.logic.aim_at_point(parameters.pose, self._parameterNode.aimPoint)
            store_parameters(self._parameterNode.drr, parameters.replace(pose=pose))

    def onProjectPointsButton(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Could not project the points."), waitCursor=True):
            node = self.logic.project_markups(self._parameterNode.pointsToProject, self._parameterNode.outputVolume)
            self.ui.statusLabel.text = _("Projected {count} points onto {name}.").format(
                count=node.GetNumberOfControlPoints(), name=self._parameterNode.outputVolume.GetName())

    def onApplyButton(self) -> None:
        if self.tasks.busy_with("full", "sweep"):
            self.tasks.cancel()  # the render notices within one band of rows
            return
        self.startExclusive("full")

    def onSweepButton(self) -> None:
        self.startExclusive("sweep")

    def startExclusive(self, kind: str) -> None:
        """Start a full render or sweep; a running live preview is cancelled first (without waiting here)."""
        self.stopLiveView()
        if self.tasks.busy_with(*self.LIVE):
            self._pending = kind  # started by the preview's end (finishTask)
            self.tasks.cancel()
            return
        self.startRender(kind)

    def turnOffLivePreview(self) -> None:
        """An unexpected error in a preview: stop previewing, so it is reported once; Apply still renders."""
        self.stopLiveView()
        self._parameterNode.livePreview = False
        self.ui.statusLabel.text = _("Live preview turned off after an error; press Apply to try again.")

    def stopLiveView(self) -> None:
        """Stop the timers that would start previews."""
        for timer in (self._previewTimer, self._settleTimer):
            if timer is not None:
                timer.stop()

    # --- rendering through the shared task helper: MRML on the main thread, the projector off it ----
    def startRender(self, kind: str) -> None:
        live = kind in self.LIVE
        if self.tasks.busy:
            if live:
                self._settleTimer.start()  # try again when the running render has finished
            return
        if not self.ensureDependencies(quiet=live):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Failed to compute the DRR."), waitCursor=not live):
            try:
                if kind == "sweep":
                    sweep = to_parameters(p.sweep)
                    job = self.logic.prepare_sweep(p.ctVolume, self.parameters(), sweep.angles(), sweep.axis,
                                                   p.segmentation)
                else:
                    if self._previewNode is not None and self._previewNode.GetScene() is None:
                        self._previewNode = None  # the user deleted the live view: make a new one
                    job = self.logic.prepare(p.ctVolume, self.parameters(), p.segmentation,
                                             self._previewNode if live else p.outputVolume, preview=kind == "preview")
                    if live:
                        job.base_name = "DRR live"
            except MedSynthError as error:
                if not live:
                    raise
                self.ui.statusLabel.text = str(error)  # a pose being edited may be impossible: say why, no dialog
                return
            except Exception:
                if live:
                    self.turnOffLivePreview()  # one dialog, not one per slider move
                raise
            self._renderedKey = self.logic.render_key(p.ctVolume, p.segmentation, job.parameters) if live else None
            self.tasks.start(_("DRR"), lambda progress, cancel: self.logic.render(job, progress, cancel), kind=kind,
                             on_progress=self.onTaskProgress if not live else None,
                             on_done=lambda views: self.finishTask(kind, job, views),
                             on_error=lambda error: self.finishTask(kind, job, None, error),
                             on_cancelled=lambda: self.finishTask(kind, job, None))
            if not live:
                self.ui.progressBar.value = 0
                self.ui.progressBar.visible = True
                self.ui.statusLabel.text = _("Rendering...")
            self.updateButtons()  # Apply becomes Cancel

    def onTaskProgress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = int(100 * fraction)
        if message:
            self.ui.statusLabel.text = message

    def finishTask(self, kind: str, job, views, error=None) -> None:
        """A render ended (main thread): show its result, its error, or that it was cancelled."""
        self.ui.progressBar.visible = False
        self.updateButtons()
        pending, self._pending = self._pending, None
        with slicer.util.tryWithErrorDisplay(_("Failed to compute the DRR."), waitCursor=False):
            if error is not None:
                self._renderedKey = None
                if kind in self.LIVE and isinstance(error, MedSynthError):
                    self.ui.statusLabel.text = str(error)
                else:
                    if kind in self.LIVE:
                        self.turnOffLivePreview()  # one dialog, not one per slider move
                    raise error
            elif views is None:
                self._renderedKey = None
                if kind not in self.LIVE:
                    self.ui.statusLabel.text = _("Cancelled; the scene is unchanged.")
            else:
                self.showResult(kind, job, views)
        if pending:
            self.startRender(pending)

    def showResult(self, kind: str, job, views) -> None:
        p = self._parameterNode
        if kind == "sweep":
            result = self.logic.write_sweep(job, views, p.sweepAsSequence)
            shown = result["browser"].GetProxyNode(result["sequence"]) if result["browser"] else result["nodes"][0]
            self.ui.statusLabel.text = _("Sweep of {count} views ready.").format(count=len(views))
        else:
            nodes = self.logic.write(job, views)
            shown = nodes[0]
            if kind in self.LIVE:
                self._previewNode = nodes[0]
            else:
                if p.outputVolume is None:
                    self._renderedKey = self.logic.render_key(p.ctVolume, p.segmentation, job.parameters)
                    p.outputVolume = nodes[0]  # a changed reference only: no new preview (same render key)
                self.ui.statusLabel.text = _("DRR ready: {name}").format(name=nodes[0].GetName())
        if shown is not None:
            self.showDRR(shown)

    def showDRR(self, node) -> None:
        """Show the radiograph in the red slice view only, looking at its detector plane."""
        sliceWidget = slicer.app.layoutManager().sliceWidget("Red")
        if sliceWidget is None:
            return
        sliceWidget.mrmlSliceCompositeNode().SetBackgroundVolumeID(node.GetID())
        sliceWidget.mrmlSliceNode().RotateToVolumePlane(node)
        sliceWidget.sliceLogic().FitSliceToAll()

    def ensureDependencies(self, quiet: bool) -> bool:
        """numba (and the NIST tables) on first use: one dialog; declining turns the live preview off."""
        if self.logic.dependencies_ready():
            return True
        if self._dependenciesDeclined and quiet:
            return False
        with slicer.util.tryWithErrorDisplay(_("Could not install what DRRs need."), waitCursor=True):
            from medsynth.mrml.installer import ensure_installed

            if ensure_installed("drr", _("DRR Projection")):
                self._dependenciesDeclined = False
                self.logic.warm_up_in_background()
                return True
        self._dependenciesDeclined = True
        self._parameterNode.livePreview = False
        self.ui.statusLabel.text = _("DRRs need numba: install it from the MedSynth module, or press Apply.")
        return False


#
# DRRProjectionLogic
#


class DRRProjectionLogic(ScriptedLoadableModuleLogic, DRRLogic):
    """Thin adapter: the logic lives in medsynth.module_logic.drr.DRRLogic.

    Usable without the GUI, e.g.::

        logic = DRRProjectionLogic()
        nodes = logic.process(ctNode, DRRParameters(pose=CArmPose(primary_angle=30, isocenter_s=-180)))
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        DRRLogic.__init__(self)

    def getParameterNode(self):
        return DRRProjectionParameterNode(super().getParameterNode())


#
# DRRProjectionTest
#


class DRRProjectionTest(ScriptedLoadableModuleTest):
    """Runs in Slicer without network: a synthetic CT (a water cylinder with a bone rod) and the logic."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DRRProjection_logic_on_a_phantom()

    def test_DRRProjection_logic_on_a_phantom(self):
        import numpy as np

        from medsynth.drr.parameters import CArmPose
        from medsynth.mrml import volume_to_node
        from medsynth.phantoms import cylinder_phantom

        if not DRRLogic.dependencies_ready():
            self.skipTest("numba is not installed: install it from the MedSynth module")
        self.delayDisplay("Rendering a small DRR of a phantom")
        ct = cylinder_phantom()
        ctNode = volume_to_node(ct, name="Phantom CT")
        logic = DRRProjectionLogic()
        center = ct.center_ras
        parameters = DRRParameters(pose=CArmPose(isocenter_r=center[0], isocenter_a=center[1], isocenter_s=center[2]),
                                   detector_rows=96, detector_columns=96, pixel_spacing=3.0)
        nodes = logic.process(ctNode, parameters)
        image = slicer.util.arrayFromVolume(nodes[0])
        self.assertEqual(image.shape, (1, 96, 96))
        self.assertGreater(float(np.std(image)), 0.0)
        # the C-arm model follows the pose, and its transform gives the pose back
        carmNodes = logic.show_carm(parameters.carm(CArmPose(primary_angle=30.0)))
        back = logic.carm_from_transform(carmNodes.transform)
        self.assertAlmostEqual(back.primary_angle, 30.0, places=6)
        self.delayDisplay("Test passed")
