"""Structural checks of the Slicer extension that need no Slicer application.

- every file a module installs is listed in its CMakeLists.txt;
- the library imports slicer/qt/ctk/vtk only in its MRML bridge;
- every .ui parses, every ``self.ui.<name>`` exists in it, every SlicerParameterName is a
  parameter node field;
- module files follow the template's order (module, parameter node, widget, logic, test).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["MedSynth", "DRRProjection", "TumorSynthesis", "SemanticSynthesis"]
INSTALLED_SUFFIXES = (".py", ".ui", ".png", ".json", ".csv", ".npz", ".yaml", ".yml", ".pt", ".txt", ".svg")
GUI_PACKAGES = {"slicer", "qt", "ctk", "vtk", "vtkmodules"}


def test_top_level_cmake_adds_every_module():
    text = (ROOT / "CMakeLists.txt").read_text()
    for name in MODULES:
        assert f"add_subdirectory({name})" in text
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS", "EXTENSION_LICENSE_FILE"):
        assert f"set({key}" in text
    assert text.rstrip().endswith("include(${Slicer_EXTENSION_CPACK})")
    assert "${Slicer_EXTENSION_GENERATE_CONFIG}" in text


def test_catalog_entry_is_complete():
    import json

    entry = json.loads((ROOT / "MedSynth.json").read_text())
    for key in ("$schema", "category", "scm_url", "scm_revision", "build_dependencies", "tier"):
        assert key in entry


def installed_files(module: str) -> list[str]:
    folder = ROOT / module
    files = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if (not path.is_file() or "__pycache__" in path.parts or relative.parts[0] == "Testing"
                or path.name == "CMakeLists.txt" or any(p.endswith(".egg-info") for p in path.parts)
                or not path.name.endswith(INSTALLED_SUFFIXES)):
            continue
        files.append(relative.as_posix())
    return sorted(files)


@pytest.mark.parametrize("module", MODULES)
def test_every_installed_file_is_listed_in_cmake(module):
    folder = ROOT / module
    assert (folder / "CMakeLists.txt").exists(), f"{module}/CMakeLists.txt is missing"
    cmake = (folder / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", module)
    listed = set(re.findall(r"[\w./-]+\.\w+", cmake))
    missing = [name for name in installed_files(module) if name not in listed]
    assert not missing, f"not listed in {module}/CMakeLists.txt (would not be installed): {missing}"


def test_medsynth_package_list_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "update_cmake_lists.py"), "--check"])
    assert result.returncode == 0, "run: python scripts/update_cmake_lists.py"


def module_level_imports(tree: ast.Module) -> set[str]:
    """Top-level package names imported outside any function or class body."""
    names = set()

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    visit(getattr(node, field, []) or [])
            elif isinstance(node, ast.ExceptHandler):
                visit(node.body)

    visit(tree.body)
    return names


#: The only library packages that may import Slicer, Qt or VTK at module level: the node <-> object
#: bridge and the modules' MRML logic built on it.
SLICER_PACKAGES = ("mrml", "module_logic")


def test_library_imports_slicer_only_in_its_mrml_bridge():
    package = ROOT / "MedSynth" / "medsynth"
    offenders = {}
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] in SLICER_PACKAGES:
            continue
        found = module_level_imports(ast.parse(path.read_text())) & GUI_PACKAGES
        if found:
            offenders[str(path.relative_to(ROOT))] = sorted(found)
    assert not offenders, f"GUI/Slicer imports outside medsynth/mrml and medsynth/module_logic: {offenders}"


def test_the_bridge_does_not_import_the_module_logic():
    """Layering: module_logic builds on mrml, never the other way round."""
    offenders = []
    for path in (ROOT / "MedSynth" / "medsynth" / "mrml").rglob("*.py"):
        if "medsynth.module_logic" in path.read_text():
            offenders.append(path.name)
    assert not offenders, f"medsynth/mrml imports medsynth.module_logic: {offenders}"


def test_the_library_does_not_import_its_command_line():
    """Layering: the CLI is a front door over the library, never a part of it."""
    package = ROOT / "MedSynth" / "medsynth"
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if path.relative_to(package).parts[0] not in ("cli", "demo") and "medsynth.cli" in path.read_text()]
    batch = [str(path.relative_to(ROOT)) for path in ROOT.glob("*/Batch/*.py") if "medsynth.cli" in path.read_text()]
    assert not offenders + batch, f"imports of medsynth.cli outside the CLI: {offenders + batch}"


def test_library_imports_without_slicer_or_torch():
    code = (
        "import sys, medsynth, medsynth.io, medsynth.volume, medsynth.jobs, medsynth.data, medsynth.pictures\n"
        "bad = sorted(m for m in ('slicer', 'vtk', 'qt', 'torch') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def module_files() -> list[Path]:
    return [ROOT / name / f"{name}.py" for name in MODULES if (ROOT / name / f"{name}.py").exists()]


def ui_object_names(ui_path: Path) -> set[str]:
    """objectNames of every widget (and layout) QUiLoader creates from a Slicer .ui file."""
    tree = ElementTree.parse(ui_path)
    names = {element.get("name") for element in tree.iter() if element.tag in ("widget", "layout", "action")}
    return {name for name in names if name}


def load_with_qt(ui_path: Path) -> set[str]:
    """Load the .ui for real with PySide6 (unknown Slicer classes fall back to their base)."""
    from PySide6.QtCore import QFile, QObject
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    file = QFile(str(ui_path))
    assert file.open(QFile.ReadOnly)
    widget = QUiLoader().load(file)
    file.close()
    assert widget is not None, f"{ui_path.name} does not load"
    return {child.objectName() for child in widget.findChildren(QObject) if child.objectName()}


@pytest.mark.parametrize("module_file", module_files(), ids=lambda p: p.stem)
def test_every_ui_widget_used_exists(module_file):
    ui_path = module_file.parent / "Resources" / "UI" / f"{module_file.stem}.ui"
    assert ui_path.exists(), f"{ui_path} missing"
    names = load_with_qt(ui_path) | ui_object_names(ui_path)
    used = set(re.findall(r"self\.ui\.(\w+)", module_file.read_text()))
    missing = sorted(used - names)
    assert not missing, f"{module_file.name} uses widgets absent from {ui_path.name}: {missing}"


def parameter_node_fields(tree: ast.Module) -> set[str] | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            getattr(d, "id", getattr(d, "attr", None)) == "parameterNodeWrapper" for d in node.decorator_list
        ):
            return {s.target.id for s in node.body if isinstance(s, ast.AnnAssign)}
    return None


@pytest.mark.parametrize("module_file", module_files(), ids=lambda p: p.stem)
def test_ui_parameter_bindings_name_parameter_node_fields(module_file):
    ui_path = module_file.parent / "Resources" / "UI" / f"{module_file.stem}.ui"
    tree = ElementTree.parse(ui_path)
    bound = {
        prop.find("string").text
        for prop in tree.iter("property")
        if prop.get("name") == "SlicerParameterName" and prop.find("string") is not None
    }
    fields = parameter_node_fields(ast.parse(module_file.read_text()))
    if fields is None:
        assert not bound, f"{ui_path.name} binds {bound} but {module_file.name} has no parameter node"
        return
    unknown = sorted(name.split(".")[0] for name in bound if name.split(".")[0] not in fields)
    assert not unknown, f"{ui_path.name} binds to unknown parameters: {unknown}"


@pytest.mark.parametrize("module_file", module_files(), ids=lambda p: p.stem)
def test_module_file_follows_the_template_order(module_file):
    tree = ast.parse(module_file.read_text())
    name = module_file.stem
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    expected = [name, f"{name}Widget", f"{name}Logic", f"{name}Test"]
    positions = [classes.index(c) for c in expected if c in classes]
    assert len(positions) == 4, f"{module_file.name} lacks one of {expected}"
    assert positions == sorted(positions), f"{module_file.name}: classes out of template order: {classes}"
    parameter_class = f"{name}ParameterNode"
    if parameter_class in classes:
        assert classes.index(name) < classes.index(parameter_class) < classes.index(f"{name}Widget")
