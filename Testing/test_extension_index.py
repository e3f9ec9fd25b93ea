"""The extension passes the Slicer Extensions Index's checks and its ctest lines run under the launcher.

The rules are those of Slicer/ExtensionsIndex ``scripts/check_description_files.py`` (main,
commit 07f1d1b, 2026-08) and of Slicer's catalog-entry schema v1.0.1 (Schemas/, 2026-08), restated
here so the test runs offline; ``slicer_add_python_test`` is CMake/SlicerMacroPythonTesting.cmake's.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = "MedSynth"
MODULES_WITH_BATCH = ["DRRProjection", "TumorSynthesis", "SemanticSynthesis"]

#: ACCEPTED_EXTENSION_CATEGORIES of the Extensions Index (main; "Image Synthesis" exists since
#: 2025-09, so on the 5.10 branch and later, not on 5.8's).
ACCEPTED_CATEGORIES = {
    "Active Learning", "Analysis", "Auto3dgm", "BigImage", "Cardiac", "Chest Imaging Platform", "Conda",
    "Converters", "DICOM", "DSCI", "Developer Tools", "Diffusion", "Examples", "Exporter", "FTV Segmentation",
    "Filtering", "Filtering.Morphology", "Filtering.Vesselness", "Holographic Display", "Image Synthesis", "IGT",
    "Informatics", "Netstim", "Neuroimaging", "Nuclear Medicine", "Orthodontics", "Osteotomy Planning",
    "Otolaryngology", "Photogrammetry", "Pipelines", "Planning", "Printing", "Quantification", "Radiotherapy",
    "Registration", "Remote", "Rendering", "SPHARM", "Segmentation", "Sequences", "Shape Analysis",
    "Shape Regression", "Shape Visualization", "Simulation", "SlicerCMF", "SlicerMorph", "Spectral Imaging",
    "Supervisely", "Surface Models", "SurfaceLearner", "Tomographic Reconstruction", "Tracking", "Tractography",
    "Training", "Ultrasound", "Utilities", "Vascular Modeling Toolkit", "Virtual Reality", "VisSimTools",
    "Web System Tools", "Wizards",
}

#: What Slicer's catalog-entry schema v1.0.1 allows.
CATALOG_SCHEMA = {
    "type": "object",
    "required": ["$schema", "category", "scm_url"],
    "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "category": {"type": "string"},
        "scm_url": {"type": "string"},
        "scm_revision": {"type": "string"},
        "scm_type": {"enum": ["git", "local"]},
        "build_dependencies": {"type": "array", "items": {"type": "string"}},
        "build_subdirectory": {"type": "string"},
        "enabled": {"type": "boolean"},
        "tier": {"type": "integer", "minimum": 1, "maximum": 5},
    },
}
LICENSE_NAMES = ["LICENSE", "LICENCE", "License.txt", "license.txt", "LICENSE.txt", "COPYING", "COPYING.txt"]


def catalog() -> dict:
    return json.loads((ROOT / f"{EXTENSION}.json").read_text())


def cmake() -> str:
    return (ROOT / "CMakeLists.txt").read_text()


def cmake_setting(name: str) -> str:
    match = re.search(rf'set\(\s*{name}\s+"([^"]*)"\s*\)', cmake())
    assert match, f"CMakeLists.txt does not set {name}"
    return match.group(1)


def test_catalog_entry_follows_the_schema_and_a_known_category():
    entry = catalog()
    jsonschema.validate(entry, CATALOG_SCHEMA)
    assert "slicer-extension-catalog-entry-schema-v1.0.1.json" in entry["$schema"]
    assert entry["category"] in ACCEPTED_CATEGORIES
    assert cmake_setting("EXTENSION_CATEGORY") == entry["category"]


def test_names_urls_and_license_pass_the_index_checks():
    entry = catalog()
    assert not EXTENSION.lower().startswith("slicer")
    assert re.search(r"project\s*\(\s*([^\s\)\n\r]+)", cmake()).group(1) == EXTENSION
    url = urllib.parse.urlsplit(entry["scm_url"])
    assert url.scheme in ("git", "https")
    assert Path(url.path).stem.startswith("Slicer")  # the repository is SlicerX, the extension X
    assert re.search(r'set\s*\(EXTENSION_ICONURL\s*"([^"]+\.png)"[ ]*\)', cmake())
    screenshots = re.search(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', cmake())
    assert screenshots and all(u.startswith("https://") for u in screenshots.group(1).split())
    assert any((ROOT / name).is_file() for name in LICENSE_NAMES)
    assert cmake().rstrip().endswith("include(${Slicer_EXTENSION_CPACK})")


def test_pytorch_is_a_declared_dependency_because_torch_comes_from_it():
    """SemanticSynthesis installs torch through PyTorchUtils, so the PyTorch extension must come along."""
    users = [p for p in (ROOT / "MedSynth" / "medsynth").rglob("*.py") if "import PyTorchUtils" in p.read_text()]
    assert users, "nothing uses the PyTorch extension any more: drop the dependency"
    assert "PyTorch" in cmake_setting("EXTENSION_DEPENDS").split()
    assert "PyTorch" in catalog()["build_dependencies"]


def ctest_files() -> list[Path]:
    return sorted(ROOT.glob("*/Testing/**/CMakeLists.txt")) + [ROOT / "MedSynth" / "CMakeLists.txt"]


@pytest.mark.parametrize("path", ctest_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_ctest_lines_use_slicers_macros(path):
    """A bare add_test(... ${Slicer_LAUNCHER_EXECUTABLE} ...) misses the launcher settings and the
    extension's module paths that slicer_add_python_test adds, so the module would not be found."""
    text = re.sub(r"#.*", "", path.read_text())
    assert not re.search(r"\badd_test\s*\(", text), f"{path.relative_to(ROOT)}: use slicer_add_python_test"


@pytest.mark.parametrize("name", MODULES_WITH_BATCH)
def test_each_batch_script_is_a_no_main_window_ctest(name):
    text = (ROOT / name / "Testing" / "Python" / "CMakeLists.txt").read_text()
    call = re.search(r"slicer_add_python_test\((.*?)\)", text, re.DOTALL)
    assert call, f"{name}: no slicer_add_python_test for its batch script"
    arguments = call.group(1).split()
    assert arguments[arguments.index("SCRIPT") + 1].endswith(f"Batch/${{MODULE_NAME}}Batch.py")
    assert arguments[arguments.index("SLICER_ARGS") + 1] == "--no-main-window"
    assert arguments[arguments.index("SCRIPT_ARGS") + 1] == "--self-test"
    assert f"Batch/${{MODULE_NAME}}Batch.py" in (ROOT / name / "CMakeLists.txt").read_text()
