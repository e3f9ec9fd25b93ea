"""The Slicer modules load and their parameter nodes work, checked the way Slicer uses them.

- every module file imports with only what a fresh Slicer bundles (a separate virtual
  environment: numpy, scipy, pydicom, SimpleITK, Pillow, requests, slicer-core), and its module,
  parameter node and logic classes can be made;
- every node type a parameter node declares can be instantiated (Slicer's wrapper does that to
  list node classes: an abstract type leaves the whole panel unbound);
- every .ui binding names a parameter and uses a widget Slicer's connectors bind to its type;
- the parameter node stores the library's parameter objects and gives them back unchanged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from slicer_modules import MODULES, ROOT, load_module_file

slicer = pytest.importorskip("slicer")

MODULES_WITH_PARAMETERS = ["DRRProjection", "TumorSynthesis", "SemanticSynthesis"]
#: What a fresh Slicer's Python has (Slicer's SuperBuild, External_python-*.cmake, 2026-12).
BUNDLED_REQUIREMENTS = ROOT / "Testing" / "slicer_bundled_requirements.txt"


def parameter_node_class(name: str):
    return getattr(load_module_file(name), f"{name}ParameterNode")


def ui_bindings(name: str) -> dict[str, str]:
    """SlicerParameterName -> widget class, from the module's .ui file."""
    tree = ElementTree.parse(ROOT / name / "Resources" / "UI" / f"{name}.ui")
    bindings = {}
    for widget in tree.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bindings[prop.find("string").text] = widget.get("class")
    return bindings


def member_type(wrapper_class, dotted: str):
    """The annotated type of a (dotted) parameter of a wrapper or pack class."""
    owner = wrapper_class
    *path, last = dotted.split(".")
    for part in path:
        owner = owner.allParameters[part].base
    return owner.allParameters[last].annotated


@pytest.mark.parametrize("name", MODULES)
def test_module_file_loads_and_its_classes_can_be_made(name, mrml_scene):
    module = load_module_file(name)
    instance = getattr(module, name)(None)
    assert instance.parent.title and instance.parent.categories == ["MedSynth"]
    logic = getattr(module, f"{name}Logic")()
    if name in MODULES_WITH_PARAMETERS:
        wrapped = logic.getParameterNode()
        assert wrapped.parameterNode.GetAttribute("ModuleName") == name
        wrapped.connectGui(object())  # what the widget does first: lists node types, binds widgets


@pytest.mark.parametrize("name", MODULES_WITH_PARAMETERS)
def test_help_names_the_installed_batch_script(name):
    """The help gives the batch script's path beside the installed module file (CMake installs
    Batch/<Module>Batch.py there), not a source-tree path."""
    module = load_module_file(name)
    help_text = getattr(module, name)(None).parent.helpText
    script = Path(module.__file__).resolve().parent / "Batch" / f"{name}Batch.py"
    assert f'--python-script "{script}"' in help_text
    assert script.is_file()
    assert f"Batch/${{MODULE_NAME}}Batch.py" in (ROOT / name / "CMakeLists.txt").read_text()


@pytest.mark.parametrize("name", MODULES_WITH_PARAMETERS)
def test_every_node_type_of_the_parameter_node_can_be_instantiated(name):
    from slicer_gui.parameter_node_wrapper import getNodeTypes, node_classes

    wrapper = parameter_node_class(name)
    node_members = [m for m in wrapper.allParameters.values() if m.kind == "node"]
    assert node_members
    for member in node_members:
        class_names = getNodeTypes(member.annotated)
        assert all(class_name.startswith("vtkMRML") for class_name in class_names)
        assert len(class_names) == len(node_classes(member.annotated))


def test_an_abstract_node_type_is_caught():
    """The check above would have caught SemanticSynthesis's vtkMRMLNode input (issue 14, item 1)."""
    from slicer_gui.parameter_node_wrapper import getNodeTypes

    with pytest.raises(TypeError):
        getNodeTypes(slicer.vtkMRMLNode)
    assert getNodeTypes(typing.Union[slicer.vtkMRMLSegmentationNode, slicer.vtkMRMLLabelMapVolumeNode]) == (
        "vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode")


@pytest.mark.parametrize("name", MODULES_WITH_PARAMETERS)
def test_every_ui_binding_fits_its_parameter(name):
    from slicer_gui.parameter_node_wrapper import bindable

    wrapper = parameter_node_class(name)
    problems = []
    for parameter, widget_class in ui_bindings(name).items():
        try:
            annotated = member_type(wrapper, parameter)
        except KeyError:
            problems.append(f"{parameter}: no such parameter")
            continue
        why = bindable(widget_class, annotated)
        if why:
            problems.append(f"{parameter} ({widget_class}): {why}")
    assert not problems, problems


def test_binding_rules_follow_slicers_connectors():
    from slicer_gui.parameter_node_wrapper import Choice, WithinRange, bindable

    assert bindable("ctkSliderWidget", typing.Annotated[float, WithinRange(0, 1)]) == ""
    assert "WithinRange" in bindable("ctkSliderWidget", float)
    assert "Choice" in bindable("QComboBox", str)
    assert bindable("QComboBox", typing.Annotated[str, Choice(["a"])]) == ""
    assert bindable("QSpinBox", float) != "" and bindable("QSpinBox", int) == ""
    assert bindable("qMRMLNodeComboBox", slicer.vtkMRMLScalarVolumeNode) == ""


@pytest.mark.parametrize("name, member, cls", [
    ("DRRProjection", "drr", "medsynth.drr.parameters:DRRParameters"),
    ("TumorSynthesis", "tumor", "medsynth.tumor.parameters:TumorParameters"),
    ("SemanticSynthesis", "semantic", "medsynth.generative.parameters:SemanticParameters"),
])
def test_the_parameter_node_holds_the_librarys_parameters(name, member, cls, mrml_scene):
    import importlib

    from medsynth import parameters as params
    from medsynth.mrml.parameter_packs import store_parameters, to_parameters

    module_name, class_name = cls.split(":")
    library_class = getattr(importlib.import_module(module_name), class_name)
    for node in list(mrml_scene.GetNodesByClass("vtkMRMLScriptedModuleNode")):  # earlier tests changed theirs
        if node.GetAttribute("ModuleName") == name:
            mrml_scene.RemoveNode(node)
    wrapper = load_module_file(name).__dict__[f"{name}Logic"]().getParameterNode()
    assert to_parameters(getattr(wrapper, member)) == library_class()  # the defaults are the library's
    changed = {}
    for info in params.describe_fields(library_class):
        if info.type is bool:
            changed[info.name] = not info.default
        elif info.choices:
            changed[info.name] = info.choices[-1]
        elif info.range is not None and info.type in (int, float):
            changed[info.name] = info.type(info.range.maximum)
    wanted = params.updated(library_class(), changed)
    store_parameters(getattr(wrapper, member), wanted)
    again = load_module_file(name).__dict__[f"{name}Logic"]().getParameterNode()  # read from the scene's node
    assert to_parameters(getattr(again, member)) == wanted
    with pytest.raises(ValueError):
        setattr(getattr(again, member), next(i.name for i in params.describe_fields(library_class)
                                             if i.range is not None and "." not in i.name), 10**9)


def test_modules_load_with_only_the_packages_slicer_bundles(tmp_path_factory):
    """A virtual environment with only Slicer's bundled packages: every module file imports (no numba,
    torch, monai, xraydb, yaml, ...). The environment is cached under .venv-slicer-bundled."""
    python = bundled_python()
    code = (
        "import sys; sys.path.insert(0, 'Testing'); sys.path.insert(0, 'MedSynth')\n"
        "from slicer_modules import MODULES, load_module_file\n"
        "for name in MODULES:\n"
        "    module = load_module_file(name)\n"
        "    getattr(module, name)(None); getattr(module, name + 'Logic')()\n"
        "heavy = sorted(m for m in ('numba', 'torch', 'monai', 'xraydb', 'yaml', 'dask', 'trame') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('loaded', ', '.join(MODULES))\n"
    )
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([str(python), "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded MedSynth, DRRProjection, TumorSynthesis, SemanticSynthesis" in result.stdout


def bundled_python() -> Path:
    """The bundled-only venv's python (made on first use from pip's cache: about a minute)."""
    folder = ROOT / ".venv-slicer-bundled"
    python = folder / "bin" / "python"
    stamp = folder / ".requirements"
    wanted = BUNDLED_REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(BUNDLED_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return python
