"""``slicer.ScriptedLoadableModule`` stand-in: the base classes' behaviour that logic relies on."""

from __future__ import annotations

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
    def __init__(self, parent=None) -> None:
        self.parent = parent
        self.moduleName = self.__class__.__name__.removesuffix("Widget")


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
