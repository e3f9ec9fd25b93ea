"""The MRML scene MedSynth works in: Slicer's own inside Slicer, a headless one elsewhere.

A bare ``vtkMRMLScene`` is not enough outside Slicer (segments cannot be created, markups
cannot be saved): the headless set-up below registers the module logics the way the Slicer
application does, using only the Qt-free ``slicer-core`` package.
"""

from __future__ import annotations

from pathlib import Path

import slicer

_HEADLESS: dict = {}

#: Module logics the headless scene needs, with the class that implements each.
_MODULE_LOGICS = {
    "Colors": "vtkSlicerColorLogic",
    "Volumes": "vtkSlicerVolumesLogic",
    "Markups": "vtkSlicerMarkupsLogic",
    "Segmentations": "vtkSlicerSegmentationsModuleLogic",
    "SubjectHierarchy": "vtkSlicerSubjectHierarchyModuleLogic",
    "Data": "vtkSlicerDataModuleLogic",
    "Transforms": "vtkSlicerTransformLogic",
    "Models": "vtkSlicerModelsLogic",
    "Sequences": "vtkSlicerSequencesLogic",
}


def inside_slicer_application() -> bool:
    """True when running in the Slicer application (GUI or --no-main-window)."""
    return hasattr(slicer, "app") and hasattr(slicer, "modules")


def get_scene():
    """The scene to work in: ``slicer.mrmlScene`` when it exists, else a headless one made once."""
    scene = getattr(slicer, "mrmlScene", None)
    if scene is not None:
        return scene
    return headless_scene()


def module_logic(name: str):
    """A module's logic ("Volumes", "Segmentations", ...), from Slicer or from the headless set-up."""
    if inside_slicer_application():
        return getattr(slicer.modules, name.lower()).logic()
    headless_scene()
    return _HEADLESS["logics"][name]


def headless_scene():
    """Create (once) an application-like MRML scene outside Slicer and set ``slicer.mrmlScene``."""
    if "scene" in _HEADLESS:
        return _HEADLESS["scene"]
    scene, app_logic, logics = application_scene()
    _HEADLESS.update(scene=scene, app_logic=app_logic, logics=logics)
    slicer.mrmlScene = scene
    return scene


def application_scene():
    """A new scene set up the way the Slicer application sets up its own: (scene, app logic, module logics)."""
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.SetHomeDirectory(str(Path(slicer.__file__).parent))  # no color files there: defaults only
    app_logic.SetShareDirectory("share")
    app_logic.SetMRMLSceneDataIO(scene, slicer.vtkMRMLRemoteIOLogic(), slicer.vtkDataIOManagerLogic())
    logics = {}
    for name, class_name in _MODULE_LOGICS.items():
        logic = getattr(slicer, class_name)()
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    logics["Colors"].AddDefaultColorNodes()
    return scene, app_logic, logics


def adopt_scene(scene, app_logic) -> dict:
    """Work in another application's scene (the web app's trame-slicer ``SlicerApp``).

    The module logics MedSynth needs and the application lacks are registered on its application
    logic, so the bridge (segments, markups, sequences) works there as in Slicer. Returns the
    previous state for ``restore_scene`` (tests that open and close an app in one process).
    """
    previous = {"headless": dict(_HEADLESS), "scene": getattr(slicer, "mrmlScene", None)}
    logics = {}
    for name, class_name in _MODULE_LOGICS.items():
        logic = app_logic.GetModuleLogic(name)
        if logic is None:
            logic = getattr(slicer, class_name)()
            logic.SetMRMLApplicationLogic(app_logic)
            logic.SetMRMLScene(scene)
            app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    _HEADLESS.clear()
    _HEADLESS.update(scene=scene, app_logic=app_logic, logics=logics)
    slicer.mrmlScene = scene
    return previous


def restore_scene(previous: dict) -> None:
    """Undo ``adopt_scene``: MedSynth works in the scene it used before."""
    _HEADLESS.clear()
    _HEADLESS.update(previous["headless"])
    if previous["scene"] is None:
        if hasattr(slicer, "mrmlScene"):
            del slicer.mrmlScene
    else:
        slicer.mrmlScene = previous["scene"]
