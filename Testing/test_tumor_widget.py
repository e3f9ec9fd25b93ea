"""TumorSynthesis's widget on a fresh application-like scene (issue 14, item 9).

Click-to-paint puts Slicer in persistent place mode with a hidden point list that is never saved;
ending paint mode (the button, or leaving the module) restores view mode and removes that list;
a click is painted by the background task helper, not inside the interactor's callback.
Real LIDC-IDRI-0001 CT and its TotalSegmentator liver; the deepest liver point is clicked.
"""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
pytest.importorskip("numba")

from slicer_modules import load_module_file  # noqa: E402

load_module_file("TumorSynthesis")  # installs the qt, ctk, ScriptedLoadableModule, ... stand-ins

import qt  # noqa: E402

from slicer_gui import widgets  # noqa: E402

LIVER = 5


@pytest.fixture(scope="module")
def deep_point(lidc_ct, lidc_labels):
    from medsynth.tumor import LiverContext

    depth, starts, strides = LiverContext(lidc_ct, lidc_labels, LIVER).depth_map()
    cell = np.array(np.unravel_index(np.argmax(depth), depth.shape))
    return lidc_ct.ijk_to_ras_points((starts + cell * strides)[::-1].astype(float))


@pytest.fixture
def widget(monkeypatch, lidc_ct, lidc_labels):
    from medsynth.mrml import labelmap_to_segmentation, volume_to_node
    from medsynth.volume import LabelMap, LabelTable

    scene, app = widgets.fresh_scene(monkeypatch)
    ct_node = volume_to_node(lidc_ct, name="LIDC-IDRI-0001")
    liver = LabelMap(lidc_labels.mask(LIVER).astype(np.uint8), lidc_labels.ijk_to_ras, table=LabelTable({1: "liver"}))
    labelmap_to_segmentation(liver, name="TotalSegmentator")
    widget = load_module_file("TumorSynthesis").TumorSynthesisWidget(widgets.FakePanel())
    widget.setup()
    assert widget._parameterNode.ctVolume is ct_node and widget._parameterNode.organSegmentID
    assert widget.ui.paintModeButton.enabled
    widget.app, widget.interaction = app, app.applicationLogic().GetInteractionNode()
    yield widget
    widget.tasks.cancel()
    widgets.pump(lambda: not widget.tasks.busy)
    widget.cleanup()
    qt.QTimer.pending.clear()


def clicks_node(widget):
    return slicer.mrmlScene.GetFirstNodeByName(widget.CLICKS_NODE_NAME)


def test_paint_mode_places_into_a_hidden_unsaved_point_list(widget):
    widget.ui.paintModeButton.checked = True
    node = clicks_node(widget)
    assert node is not None and not node.GetSaveWithScene() and node.GetHideFromEditors()
    assert widget.interaction.GetCurrentInteractionMode() == widget.interaction.Place
    assert widget.interaction.GetPlaceModePersistence() == 1
    selection = widget.app.applicationLogic().GetSelectionNode()
    assert selection.GetActivePlaceNodeID() == node.GetID()


@pytest.mark.parametrize("how", ["button", "leaving the module"])
def test_ending_paint_mode_restores_view_mode_and_removes_the_point_list(widget, how):
    widget.ui.paintModeButton.checked = True
    if how == "button":
        widget.ui.paintModeButton.checked = False
    else:
        widget.exit()
    assert clicks_node(widget) is None
    assert widget.interaction.GetPlaceModePersistence() == 0
    assert widget.interaction.GetCurrentInteractionMode() == widget.interaction.ViewTransform


def test_a_click_is_painted_in_the_background_then_committed(widget, deep_point):
    ct = widget._parameterNode.ctVolume
    before = slicer.util.arrayFromVolume(ct).copy()
    segmentation = widget._parameterNode.segmentation
    segments = segmentation.GetSegmentation().GetNumberOfSegments()
    widget.ui.paintModeButton.checked = True
    clicks_node(widget).AddControlPoint(*[float(v) for v in deep_point])  # what a click in a slice view does
    assert clicks_node(widget).GetNumberOfControlPoints() == 0  # the point is consumed
    assert widget.tasks.busy_with("click")  # not painted inside the interactor's callback
    widgets.pump(lambda: not widget.tasks.busy)
    assert widget.tasks.last.state.name == "DONE", widget.tasks.last.error
    assert segmentation.GetSegmentation().GetNumberOfSegments() == segments + 1
    assert not np.array_equal(slicer.util.arrayFromVolume(ct), before)
    assert widget.app.errors == [] and widget.ui.undoButton.enabled
