"""No dead code: vulture finds no unused function, class, method, property, import or argument.

Names only Slicer, Qt, torch or numba use are listed in ``vulture_whitelist.py``. Unused
attributes (pydicom tags, Qt properties: set for their effect) and unused module constants or
dataclass fields (read by name from files) are not reported: vulture cannot tell them apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vulture")

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["MedSynth", "DRRProjection", "TumorSynthesis", "SemanticSynthesis", "benchmarks", "scripts", "Testing"]


def dead_code(paths: list[str], cwd: Path) -> list[str]:
    result = subprocess.run([sys.executable, "-m", "vulture", *paths, "--min-confidence", "60",
                             "--ignore-decorators", "@pytest.fixture"], cwd=cwd, capture_output=True, text=True)
    assert result.returncode in (0, 3), result.stderr  # 3: dead code found
    return [line for line in result.stdout.splitlines()
            if "unused attribute" not in line and not ("unused variable" in line and "(100% confidence)" not in line)]


def test_no_dead_code():
    findings = dead_code(SOURCES, ROOT)
    assert not findings, "remove the dead code (or, for a name Slicer/Qt/torch calls, list it in " \
                         "Testing/vulture_whitelist.py):\n" + "\n".join(findings)


def test_the_check_finds_an_unused_function_and_argument(tmp_path):
    (tmp_path / "module.py").write_text(
        "def used(value, ignored):\n    return value\n\n\ndef forgotten():\n    return 1\n\n\nprint(used(1, 2))\n")
    findings = dead_code(["module.py"], tmp_path)
    assert any("unused function 'forgotten'" in line for line in findings)
    assert any("unused variable 'ignored'" in line for line in findings)
