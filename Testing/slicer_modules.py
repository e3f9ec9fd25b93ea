"""Import the Slicer module files (DRRProjection.py, ...) outside Slicer, on slicer-core's real MRML.

``slicer_gui.install()`` provides the application-side Python (qt, ctk, ScriptedLoadableModule,
parameterNodeWrapper, i18n) as test doubles; the module's own code runs for real.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["MedSynth", "DRRProjection", "TumorSynthesis", "SemanticSynthesis"]


def load_module_file(name: str):
    """The module file ``<name>/<name>.py`` imported as module ``name`` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import slicer_gui

    slicer_gui.install()
    path = ROOT / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
