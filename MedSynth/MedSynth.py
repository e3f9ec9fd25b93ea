"""MedSynth hub module: optional dependencies, compute device and the settings all modules share."""

import qt
import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

#
# MedSynth
#


class MedSynth(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedSynth")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "MedSynth")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSynth developers"]
        self.parent.helpText = _(
            "Hub of the MedSynth extension: shows the optional Python packages and the compute device, "
            "installs a missing package when you ask, and holds the settings shared by DRRProjection, "
            "TumorSynthesis and SemanticSynthesis (cache folder, device, CPU threads)."
        )
        self.parent.acknowledgementText = _(
            "MedSynth is Apache-2.0. Sample scans: LIDC-IDRI (CC BY 3.0) and TotalSegmentator test cases."
        )


#
# MedSynthWidget
#


class MedSynthWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedSynthLogic()

        self.ui.refreshButton.connect("clicked(bool)", self.onRefresh)
        self.ui.installSelectedButton.connect("clicked(bool)", self.onInstallSelected)
        self.ui.saveSettingsButton.connect("clicked(bool)", self.onSaveSettings)
        self.ui.clearCacheButton.connect("clicked(bool)", self.onClearCache)
        self.showSettings()
        self.onRefresh()

    def showSettings(self) -> None:
        settings = self.logic.settings()
        self.ui.deviceComboBox.currentText = settings.device
        self.ui.cpuThreadsSpinBox.value = settings.cpu_threads
        self.ui.cacheFolderPathLineEdit.currentPath = settings.cache_folder or str(self.logic.cacheFolder())
        self.ui.deepdrrPythonPathLineEdit.currentPath = settings.deepdrr_python

    def onRefresh(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to read the installed packages."), waitCursor=True):
            rows = self.logic.dependencyRows()
            table = self.ui.dependenciesTable
            table.setRowCount(len(rows))
            for row, (name, version, purpose) in enumerate(rows):
                for column, text in enumerate((name, version or _("missing"), purpose)):
                    table.setItem(row, column, qt.QTableWidgetItem(text))
            table.resizeColumnsToContents()
            self.ui.deviceLabel.text = self.logic.deviceDescription()

    def onInstallSelected(self) -> None:
        row = self.ui.dependenciesTable.currentRow()
        if row < 0:
            slicer.util.infoDisplay(_("Select a package in the table first."))
            return
        with slicer.util.tryWithErrorDisplay(_("Installation failed."), waitCursor=True):
            self.logic.installDependency(row, confirm=True)
        self.onRefresh()

    def onSaveSettings(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to save the settings.")):
            self.logic.saveSettings(
                device=self.ui.deviceComboBox.currentText,
                cpuThreads=self.ui.cpuThreadsSpinBox.value,
                cacheFolder=self.ui.cacheFolderPathLineEdit.currentPath,
                deepdrrPython=self.ui.deepdrrPythonPathLineEdit.currentPath,
            )

    def onClearCache(self) -> None:
        if not slicer.util.confirmOkCancelDisplay(
            _("Delete the cached sample data and model weights? They are fetched again when needed.")
        ):
            return
        with slicer.util.tryWithErrorDisplay(_("Failed to clear the cache."), waitCursor=True):
            removed = self.logic.clearCache()
            slicer.util.infoDisplay(_("Removed: {folders}").format(folders=", ".join(removed) or _("nothing")))


#
# MedSynthLogic
#


class MedSynthLogic(ScriptedLoadableModuleLogic):
    """Settings and dependencies; usable from the Python console and scripts without the GUI."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)

    def settings(self):
        from medsynth.settings import Settings

        return Settings.load()

    def saveSettings(self, device: str, cpuThreads: int, cacheFolder: str, deepdrrPython: str) -> None:
        from medsynth.settings import Settings, cache_root

        settings = Settings.load()
        settings.device = device
        settings.cpu_threads = int(cpuThreads)
        settings.cache_folder = "" if cacheFolder == str(cache_root()) else cacheFolder
        settings.deepdrr_python = deepdrrPython
        settings.save()

    def cacheFolder(self):
        from medsynth.settings import cache_root

        return cache_root()

    def clearCache(self) -> list:
        from medsynth.settings import clear_cache

        return [str(path) for path in clear_cache("all")]

    def deviceDescription(self) -> str:
        from medsynth.settings import compute_device_description

        return compute_device_description()

    def dependencyRows(self) -> list:
        from medsynth.dependencies import status_table

        return [(d.distribution, version, d.purpose) for d, version in status_table()]

    def installDependency(self, index: int, confirm: bool = True) -> bool:
        """Install one optional dependency, only on request (torch only through the PyTorch extension,
        torch-dependent packages without their dependencies). False when the user declined."""
        from medsynth.dependencies import OPTIONAL_DEPENDENCIES
        from medsynth.mrml.installer import install_message, install_torch, pip_install

        dependency = OPTIONAL_DEPENDENCIES[index]
        if confirm and not slicer.util.confirmOkCancelDisplay(install_message("MedSynth", [dependency]),
                                                              windowTitle="MedSynth"):
            return False
        if dependency.via_pytorch_extension:
            return install_torch()
        pip_install(dependency)
        return True


#
# MedSynthTest
#


class MedSynthTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_dependencies_and_settings()

    def test_dependencies_and_settings(self):
        logic = MedSynthLogic()
        rows = logic.dependencyRows()
        self.assertTrue(any(name == "numba" for name, _version, _purpose in rows))
        self.assertTrue(logic.deviceDescription())
