"""``slicer.ScriptedLoadableModule`` stand-in: the base classes' behaviour that logic relies on."""

from __future__ import annotations

import os
import sys
import unittest

import slicer


class _Parent:
    """What Slicer passes to a module's constructor: attributes the module fills in."""

    def __init__(self) -> None:
        self.title = ""
        self.categories: list = []
        self.dependencies: list = []
        self.contributors: list = []
        self.helpText = ""
        self.acknowledgementText = ""


class ScriptedLoadableModule:
    def __init__(self, parent=None) -> None:
        self.parent = parent if parent is not None else _Parent()
        self.moduleName = self.__class__.__name__
        slicer.selfTests[self.moduleName] = getattr(self, "runTest", None)


class ScriptedLoadableModuleWidget:
    """Slicer's base widget: ``parent`` is the module panel, ``layout`` its layout, resources beside the file."""

    def __init__(self, parent=None) -> None:
        self.parent = parent
        self.moduleName = self.__class__.__name__.removesuffix("Widget")
        self.layout = parent.layout() if parent is not None and hasattr(parent, "layout") else None

    def setup(self) -> None:
        """Slicer adds its developer-mode reload/test buttons here; nothing to do outside the application."""

    def resourcePath(self, filename: str) -> str:  # noqa: N802 - Slicer's name
        module_file = sys.modules[self.__class__.__module__].__file__
        return os.path.join(os.path.dirname(module_file), "Resources", filename)


class ScriptedLoadableModuleLogic:
    """Slicer's getParameterNode: the scene's singleton scripted-module node tagged with the module name."""

    def __init__(self, parent=None) -> None:
        self.moduleName = self.__class__.__name__.removesuffix("Logic")
        self.isSingletonParameterNode = True

    def createParameterNode(self):
        node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        node.SetName(slicer.mrmlScene.GenerateUniqueName(self.moduleName))
        return node

    def getParameterNode(self):
        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.mrmlScene.AddNode(self.createParameterNode())
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    def delayDisplay(self, message, _milliseconds=0) -> None:  # noqa: N802 - Slicer's name
        print(message)
