"""SemanticSynthesis's widget on a fresh application-like scene (issue 14, item 6).

While a generation runs only Cancel is live: "Generate this slice" and "Another sample" are
disabled (a second job's result would be lost, and "Another sample" used to cancel the first);
every package generation needs is checked (monai as well as torch), with one install question.
"""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer")
pytest.importorskip("torch")
pytest.importorskip("monai")

from slicer_modules import load_module_file  # noqa: E402

load_module_file("SemanticSynthesis")  # installs the qt, ctk, ScriptedLoadableModule, ... stand-ins

import qt  # noqa: E402

from slicer_gui import widgets  # noqa: E402


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "config" / "settings.json"))


@pytest.fixture
def scene_and_app(monkeypatch):
    yield widgets.fresh_scene(monkeypatch)
    qt.QTimer.pending.clear()


@pytest.fixture
def widget(scene_and_app, lidc_labels):
    """The widget with a 6-slice slab of LIDC-IDRI-0001's label map as input, the red view inside it."""
    from medsynth.mrml import labelmap_to_node
    from medsynth.volume import LabelMap

    scene, app = scene_and_app
    matrix = lidc_labels.ijk_to_ras.copy()
    matrix[:3, 3] = lidc_labels.ijk_to_ras_points(np.array([0, 0, 58]))
    slab = LabelMap(lidc_labels.array[58:64].copy(), matrix, table=lidc_labels.table)
    node = labelmap_to_node(slab, name="LIDC labels")
    red = app.layoutManager().sliceWidget("Red").mrmlSliceNode()
    for row, value in enumerate(slab.center_ras):
        red.GetSliceToRAS().SetElement(row, 3, float(value))
    widget = load_module_file("SemanticSynthesis").SemanticSynthesisWidget(widgets.FakePanel())
    widget.setup()
    widget._parameterNode.inputNode = node
    yield widget
    widget.tasks.cancel()
    widgets.pump(lambda: not widget.tasks.busy)
    widget.cleanup()


def test_only_cancel_is_live_while_a_slice_is_generated(widget, scene_and_app):
    app = scene_and_app[1]
    seed = widget._parameterNode.semantic.seed
    widget.ui.previewButton.click()
    task = widget.tasks.task
    assert task is not None and task.kind == "generate"
    assert widget.ui.previewButton.enabled is False and widget.ui.anotherSampleButton.enabled is False
    assert widget.ui.applyButton.enabled is True and widget.ui.applyButton.text == "Cancel"
    widget.ui.anotherSampleButton.click()  # a stray click (the button is disabled in Slicer)
    assert widget.tasks.task is task and task.state.name == "RUNNING"  # not cancelled, no second job
    assert widget._parameterNode.semantic.seed == seed
    widgets.pump(lambda: not widget.tasks.busy)
    assert task.state.name == "DONE", task.error
    output = widget._parameterNode.outputVolume
    assert output is not None and output.GetAttribute("MedSynth.Synthetic") == "1"
    assert widget.ui.previewButton.enabled and widget.ui.anotherSampleButton.enabled
    assert widget.ui.applyButton.text == "Generate volume"
    assert app.errors == []


def test_every_generation_package_is_checked_with_one_question(widget, scene_and_app, monkeypatch):
    from medsynth import dependencies

    app = scene_and_app[1]
    real = dependencies.installed_version
    monkeypatch.setattr(dependencies, "installed_version", lambda d: None if d.distribution == "monai" else real(d))
    widget.updateButtons()
    assert "monai" in widget.ui.statusLabel.text
    app.answer = False  # decline
    widget.ui.previewButton.click()
    assert len(app.questions) == 1 and "monai" in app.questions[0]
    assert not widget.tasks.busy and widget._parameterNode.outputVolume is None
