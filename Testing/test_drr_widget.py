"""DRRProjection's widget on a fresh application-like scene (issue 14, items 3, 7 and 8).

The widget's own code runs: its real .ui file (as stand-in widgets), its parameter node, the
shared TaskRunner with renders in a worker thread, its preview timers (fired by the test) and
Slicer's slice-view composite nodes. What a user would hit is checked: the DRR replaces the CT
in the red view only; choosing the output after Apply does not overwrite the DRR with a preview;
a label map, an MR or an empty scene never raises out of setup; Cancel stops inside a render;
Cancel during a preview does not wait on the GUI thread; leaving the module stops the timers;
missing packages give one dialog, not one per preview.
"""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
pytest.importorskip("numba")

from slicer_modules import load_module_file  # noqa: E402

load_module_file("DRRProjection")  # installs the qt, ctk, ScriptedLoadableModule, ... stand-ins

import qt  # noqa: E402

from medsynth.phantoms import cylinder_phantom  # noqa: E402
from slicer_gui import widgets  # noqa: E402


def idle(widget) -> bool:
    return not widget.tasks.busy


@pytest.fixture
def scene_and_app(monkeypatch):
    """A new scene of its own (the module sees it as slicer.mrmlScene), with Red/Yellow/Green views."""
    yield widgets.fresh_scene(monkeypatch)
    qt.QTimer.pending.clear()


@pytest.fixture
def scene(scene_and_app):
    return scene_and_app[0]


@pytest.fixture
def app(scene_and_app):
    return scene_and_app[1]


@pytest.fixture
def ct_node(scene, app):
    from medsynth.mrml import volume_to_node

    node = volume_to_node(cylinder_phantom(), name="Phantom CT")
    for name in widgets.VIEW_NAMES:  # the user looks at the CT in every slice view
        app.layoutManager().sliceWidget(name).mrmlSliceCompositeNode().SetBackgroundVolumeID(node.GetID())
    return node


def make_widget():
    module = load_module_file("DRRProjection")
    widget = module.DRRProjectionWidget(widgets.FakePanel())
    widget.setup()
    return widget


@pytest.fixture
def widget(ct_node):
    widget = make_widget()
    parameters = widget._parameterNode
    assert parameters.ctVolume is ct_node  # pre-selected: the only CT
    parameters.drr.detector_rows, parameters.drr.detector_columns, parameters.drr.pixel_spacing = 48, 48, 6.0
    yield widget
    widget.tasks.cancel()
    widgets.pump(lambda: idle(widget))
    widget.cleanup()


def apply_and_wait(widget) -> None:
    widget.ui.applyButton.click()
    assert widget.ui.applyButton.text == "Cancel"  # Apply turns into Cancel while it renders
    widgets.pump(lambda: idle(widget))


def test_the_drr_replaces_the_ct_in_the_red_view_only(widget, app, ct_node):
    apply_and_wait(widget)
    output = widget._parameterNode.outputVolume
    assert output is not None and output.GetAttribute("MedSynth.DRR.Image") == "intensity"
    layout = app.layoutManager()
    assert layout.background("Red") == output.GetID()
    assert layout.background("Yellow") == ct_node.GetID() and layout.background("Green") == ct_node.GetID()
    assert app.errors == []


def test_the_output_chosen_by_apply_starts_no_preview_over_it(widget, app):
    apply_and_wait(widget)
    output = widget._parameterNode.outputVolume
    drr = slicer.util.arrayFromVolume(output).copy()
    assert not widget._previewTimer.isActive() and not widget._settleTimer.isActive()
    widget._parameterNode.livePreview = True  # any later GUI refresh: still nothing to re-render
    assert not widget._previewTimer.isActive() and not widget._settleTimer.isActive()
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(output), drr)


def test_a_pose_change_previews_into_its_own_node_not_the_users_drr(widget, app):
    apply_and_wait(widget)
    output = widget._parameterNode.outputVolume
    drr = slicer.util.arrayFromVolume(output).copy()
    widget._parameterNode.drr.pose.primary_angle = 40.0
    assert widget._previewTimer.isActive() and widget._settleTimer.isActive()
    widget._previewTimer.timeout()
    widgets.pump(lambda: idle(widget))
    preview = widget._previewNode
    assert preview is not None and preview is not output
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(output), drr)
    assert app.errors == []


@pytest.mark.parametrize("content", ["empty", "label map", "MR", "DRR"])
def test_setup_and_enter_never_raise_without_a_ct(scene, app, content):
    from medsynth.mrml import volume_to_node
    from medsynth.volume import Volume, VolumeMetadata

    phantom = cylinder_phantom()
    if content == "label map":
        volume_to_node(Volume((phantom.array > 0).astype(np.uint8), phantom.ijk_to_ras), name="labels", label=True)
    elif content == "MR":
        volume_to_node(Volume(phantom.array + 1000, phantom.ijk_to_ras, VolumeMetadata(modality="MR")), name="T1")
    elif content == "DRR":
        node = volume_to_node(phantom, name="old DRR")
        node.SetAttribute("MedSynth.DRR.CArm", "{}")
    widget = make_widget()
    widget.enter()
    assert widget._parameterNode.ctVolume is None
    assert widget.ui.applyButton.enabled is False and app.errors == []
    widget.cleanup()


def test_cancel_stops_inside_a_single_render(widget, app):
    """One pose at full resolution: a cancel that acted only between poses would let it finish."""
    parameters = widget._parameterNode.drr
    parameters.detector_rows, parameters.detector_columns, parameters.pixel_spacing = 1024, 1024, 0.3
    widget.ui.applyButton.click()
    widget.ui.applyButton.click()  # Cancel, right away
    widgets.pump(lambda: idle(widget))
    assert widget.tasks.last.state.name == "CANCELLED"
    assert widget._parameterNode.outputVolume is None
    assert widget.ui.statusLabel.text == "Cancelled; the scene is unchanged."
    assert app.errors == []


def test_apply_during_a_preview_cancels_it_without_waiting_and_then_renders(widget, app):
    parameters = widget._parameterNode.drr
    parameters.detector_rows, parameters.detector_columns, parameters.pixel_spacing = 1024, 1024, 0.3
    parameters.preview_factor = 1  # a slow preview, so it is still running when Apply comes
    widget._previewTimer.timeout()
    assert widget.tasks.busy_with("preview")
    widget.ui.applyButton.click()
    # the GUI thread did not join the worker: the preview is still winding down, the render queued
    assert widget.tasks.busy_with("preview") and widget._pending == "full"
    assert not widget._previewTimer.isActive() and not widget._settleTimer.isActive()
    parameters.detector_rows, parameters.detector_columns, parameters.pixel_spacing = 48, 48, 6.0
    widgets.pump(lambda: idle(widget) and widget._pending is None and widget._parameterNode.outputVolume is not None)
    assert app.errors == []


def test_leaving_the_module_stops_the_preview_timers(widget):
    widget._parameterNode.drr.pose.primary_angle = 25.0
    assert widget._previewTimer.isActive() and widget._settleTimer.isActive()
    widget.exit()
    assert not widget._previewTimer.isActive() and not widget._settleTimer.isActive()
    widget._parameterNode.drr.pose.primary_angle = 35.0  # changed elsewhere after leaving: no preview
    assert not widget._previewTimer.isActive() and not widget._settleTimer.isActive()


def test_missing_packages_ask_once_not_once_per_preview(widget, app, monkeypatch):
    from medsynth import dependencies

    real = dependencies.installed_version
    monkeypatch.setattr(dependencies, "installed_version", lambda d: None if d.distribution == "numba" else real(d))
    app.answer = False  # the user declines the install
    for angle in (10.0, 20.0, 30.0):
        widget._parameterNode.drr.pose.primary_angle = angle
        if widget._previewTimer.isActive():
            widget._previewTimer.timeout()
        if widget._settleTimer.isActive():
            widget._settleTimer.timeout()
    assert len(app.questions) == 1 and "numba" in app.questions[0]
    assert widget._parameterNode.livePreview is False and app.errors == []
    assert not widget.tasks.busy


def test_an_unexpected_preview_error_is_reported_once_and_turns_the_preview_off(widget, app, monkeypatch):
    def broken(job, progress=None, cancel=None):
        raise RuntimeError("kernel failure")

    monkeypatch.setattr(widget.logic, "render", broken)
    for angle in (10.0, 20.0, 30.0):
        widget._parameterNode.drr.pose.primary_angle = angle
        if widget._previewTimer.isActive():
            widget._previewTimer.timeout()
        try:
            widgets.pump(lambda: idle(widget))
        except RuntimeError:  # tryWithErrorDisplay re-raises into Qt's slot caller after its dialog
            pass
    assert len(app.errors) == 1 and "kernel failure" in app.errors[0]
    assert widget._parameterNode.livePreview is False
    assert "Live preview turned off" in widget.ui.statusLabel.text
