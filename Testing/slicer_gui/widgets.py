"""Stand-ins of the Slicer application's GUI side, so a module's *widget* code can run in a test.

- ``load_ui(path)`` reads the module's real .ui file and gives one ``FakeWidget`` per object name
  (what ``slicer.util.loadUI`` + ``childWidgetVariables`` give in Slicer); properties are plain
  attributes and ``click()`` / ``emit()`` call the connected slots;
- ``FakeApp`` is ``slicer.app``: a layout manager whose Red, Yellow and Green slice views are real
  vtkMRMLSliceNode / vtkMRMLSliceCompositeNode pairs in the scene, no wait cursor, and dialogs
  recorded instead of shown (``errors``, ``questions``);
- ``fresh_scene(monkeypatch)`` gives a new scene with them in place for one test; ``pump(until)``
  runs the queued single-shot timers (the TaskRunner's polls) until a condition holds.
"""

from __future__ import annotations

import inspect
import time
import types
import xml.etree.ElementTree as ElementTree

import slicer

VIEW_NAMES = ("Red", "Yellow", "Green")


class FakeWidget:
    """A widget of the .ui file: any property can be set; signals call their connected slots."""

    def __init__(self, name: str, class_name: str) -> None:
        self.objectName, self.className = name, class_name
        self.enabled, self.visible, self._checked = True, True, False
        self.text, self.toolTip, self.value, self.format = "", "", 0, ""
        self._slots: dict[str, list] = {}

    @property
    def checked(self) -> bool:
        return self._checked

    @checked.setter
    def checked(self, value: bool) -> None:
        """As in Qt: changing a checkable button's state emits toggled(bool)."""
        if bool(value) != self._checked:
            self._checked = bool(value)
            self.emit("toggled(bool)", self._checked)

    def setFormat(self, text: str) -> None:  # noqa: N802 - QProgressBar's name
        self.format = text

    def connect(self, signal: str, slot) -> None:
        self._slots.setdefault(signal, []).append(slot)

    def emit(self, signal: str, *arguments) -> None:
        """Call the slots like PythonQt: with as many of the signal's arguments as each accepts."""
        for slot in list(self._slots.get(signal, [])):
            try:
                accepted = len(inspect.signature(slot).parameters)
            except (TypeError, ValueError):
                accepted = len(arguments)
            slot(*arguments[:accepted])

    def click(self) -> None:
        self.emit("clicked(bool)", False)

    def setMRMLScene(self, scene) -> None:  # noqa: N802 - Slicer's name
        self.scene = scene


class FakeComboBox(FakeWidget):
    """A QComboBox / ctkComboBox: items with user data, the current one, currentIndexChanged(int)."""

    def __init__(self, name: str, class_name: str) -> None:
        super().__init__(name, class_name)
        self.items: list[tuple[str, object]] = []
        self.currentIndex = -1

    @property
    def currentData(self):  # noqa: N802 - Qt's name
        return self.items[self.currentIndex][1] if 0 <= self.currentIndex < len(self.items) else None

    def clear(self) -> None:
        self.items, self.currentIndex = [], -1

    def addItem(self, text: str, data=None) -> None:  # noqa: N802 - Qt's name
        self.items.append((text, data))
        if self.currentIndex < 0:
            self.setCurrentIndex(0)

    def findData(self, data) -> int:  # noqa: N802 - Qt's name
        return next((index for index, item in enumerate(self.items) if item[1] == data), -1)

    def setCurrentIndex(self, index: int) -> None:  # noqa: N802 - Qt's name
        if index != self.currentIndex:
            self.currentIndex = index
            self.emit("currentIndexChanged(int)", index)


class FakeSegmentSelector(FakeWidget):
    """qMRMLSegmentSelectorWidget: a segmentation node and one of its segment IDs."""

    def __init__(self, name: str, class_name: str) -> None:
        super().__init__(name, class_name)
        self._node, self._segment_id = None, ""

    def currentNode(self):  # noqa: N802 - Slicer's name
        return self._node

    def setCurrentNode(self, node) -> None:  # noqa: N802 - Slicer's name
        self._node = node

    def currentSegmentID(self) -> str:  # noqa: N802 - Slicer's name
        return self._segment_id

    def setCurrentSegmentID(self, segment_id: str) -> None:  # noqa: N802 - Slicer's name
        if segment_id != self._segment_id:
            self._segment_id = segment_id
            self.emit("currentSegmentChanged(QString)", segment_id)


COMBO_BOXES = {"QComboBox", "ctkComboBox"}
KINDS = {**{name: FakeComboBox for name in COMBO_BOXES}, "qMRMLSegmentSelectorWidget": FakeSegmentSelector}


class FakeLayout:
    def __init__(self) -> None:
        self.widgets: list = []

    def addWidget(self, widget) -> None:  # noqa: N802 - Qt's name
        self.widgets.append(widget)


class FakePanel:
    """The module panel Slicer passes to a widget (its ``parent``)."""

    def __init__(self) -> None:
        self.isEntered = True
        self._layout = FakeLayout()

    def layout(self) -> FakeLayout:
        return self._layout


def load_ui(path: str) -> FakeWidget:
    """The .ui file's top widget; ``children`` holds a FakeWidget per named widget, layout and action."""
    tree = ElementTree.parse(path)
    top = tree.getroot().find("widget")
    root = FakeWidget(top.get("name"), top.get("class"))
    root.children = {}
    for element in tree.iter():
        if element.tag in ("widget", "layout", "action") and element.get("name"):
            kind = KINDS.get(element.get("class"), FakeWidget)
            root.children[element.get("name")] = kind(element.get("name"), element.get("class", element.tag))
    return root


def child_widget_variables(widget: FakeWidget) -> types.SimpleNamespace:
    return types.SimpleNamespace(**widget.children)


class FakeSliceLogic:
    def __init__(self) -> None:
        self.fits = 0

    def FitSliceToAll(self) -> None:  # noqa: N802 - Slicer's name
        self.fits += 1


class FakeSliceWidget:
    def __init__(self, slice_node, composite_node) -> None:
        self._slice, self._composite, self._logic = slice_node, composite_node, FakeSliceLogic()

    def mrmlSliceNode(self):  # noqa: N802 - Slicer's name
        return self._slice

    def mrmlSliceCompositeNode(self):  # noqa: N802 - Slicer's name
        return self._composite

    def sliceLogic(self) -> FakeSliceLogic:  # noqa: N802 - Slicer's name
        return self._logic


class FakeLayoutManager:
    """Red, Yellow and Green views on real slice and slice-composite nodes of the scene."""

    def __init__(self, scene) -> None:
        self.views = {}
        for name in VIEW_NAMES:
            slice_node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
            slice_node.SetLayoutName(name)
            composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
            composite.SetLayoutName(name)
            self.views[name] = FakeSliceWidget(slice_node, composite)

    def sliceWidget(self, name: str):  # noqa: N802 - Slicer's name
        return self.views.get(name)

    def sliceViewNames(self) -> list[str]:  # noqa: N802 - Slicer's name
        return list(self.views)

    def background(self, name: str) -> str | None:
        return self.views[name].mrmlSliceCompositeNode().GetBackgroundVolumeID()


class FakeApp:
    """``slicer.app``: the layout manager; error dialogs and questions recorded, never shown."""

    def __init__(self, scene, application_logic=None) -> None:
        self._layout_manager = FakeLayoutManager(scene)
        self._application_logic = application_logic
        self.errors: list[str] = []
        self.questions: list[str] = []
        self.answer = False  # what the user answers to an OK/Cancel question

    def layoutManager(self) -> FakeLayoutManager:  # noqa: N802 - Slicer's name
        return self._layout_manager

    def applicationLogic(self):  # noqa: N802 - Slicer's name
        """The real vtkSlicerApplicationLogic of the scene (interaction and selection nodes)."""
        return self._application_logic

    def testingEnabled(self) -> bool:  # noqa: N802 - Slicer's name
        return False  # so tryWithErrorDisplay shows (here: records) its dialog

    def setOverrideCursor(self, _cursor) -> None:  # noqa: N802 - Qt's name
        pass

    def restoreOverrideCursor(self) -> None:  # noqa: N802 - Qt's name
        pass

    def error_display(self, text, *_arguments, **_options) -> None:
        self.errors.append(text)

    def confirm(self, text, *_arguments, **_options) -> bool:
        self.questions.append(text)
        return self.answer


def fresh_scene(monkeypatch):
    """A new application-like scene that the module code sees as ``slicer.mrmlScene``, with the app
    stand-ins installed; returns (scene, app). The scene keeps its logics alive."""
    from medsynth.mrml.app import application_scene

    from medsynth.mrml import app as mrml_app

    scene, app_logic, logics = application_scene()
    monkeypatch.setattr(slicer, "mrmlScene", scene)
    for key, value in (("scene", scene), ("app_logic", app_logic), ("logics", logics)):
        monkeypatch.setitem(mrml_app._HEADLESS, key, value)  # module logics act on this scene too
    return scene, install(monkeypatch, scene, app_logic)


def install(monkeypatch, scene, application_logic=None) -> FakeApp:
    """Put the stand-ins in place for one test (pytest's monkeypatch undoes it afterwards)."""
    app = FakeApp(scene, application_logic)
    monkeypatch.setattr(slicer, "app", app, raising=False)
    monkeypatch.setattr(slicer.util, "loadUI", load_ui)
    monkeypatch.setattr(slicer.util, "childWidgetVariables", child_widget_variables)
    monkeypatch.setattr(slicer.util, "errorDisplay", app.error_display)
    monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", app.confirm)
    return app


def pump(until, timeout: float = 300.0) -> None:
    """Run the 'event loop' (queued single-shot timers: the TaskRunner's polls) until ``until()`` holds."""
    import qt

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError("the widget did not get there in time")
        if not qt.QTimer.run_single_shots():
            time.sleep(0.005)
