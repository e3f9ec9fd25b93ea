"""Test doubles of the Python parts of the Slicer *application* that slicer-core lacks.

slicer-core (PyPI) gives Slicer's real MRML classes and ``slicer.util``, but not the GUI side:
``qt``/``ctk`` (PythonQt), ``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``,
``slicer.i18n``. ``install()`` registers small stand-ins for those so the module files can be
imported and their module, parameter node and logic classes exercised on the real MRML scene.

The stand-ins model what Slicer does (read from Slicer's source, Base/Python/slicer/, 2026-12),
in particular what can fail on a real install: the parameter wrapper instantiates every node
type of a node parameter to list its class name (an abstract class raises), validates defaults
against ``WithinRange`` / ``Choice``, and binds a widget only to the parameter types its
connector accepts (``bindable``). No Slicer code is copied.
"""

from __future__ import annotations

import sys
import types


def install() -> None:
    """Make ``import qt``, ``ctk``, ``slicer.ScriptedLoadableModule``, ... work next to slicer-core."""
    import slicer

    from . import ctk_stub, i18n, parameter_node_wrapper, qt_stub, scripted_loadable_module

    sys.modules.setdefault("qt", qt_stub)
    sys.modules.setdefault("ctk", ctk_stub)
    for name, module in (("ScriptedLoadableModule", scripted_loadable_module),
                         ("parameterNodeWrapper", parameter_node_wrapper), ("i18n", i18n)):
        sys.modules.setdefault(f"slicer.{name}", module)
        if not hasattr(slicer, name):
            setattr(slicer, name, module)
    if not hasattr(slicer, "selfTests"):
        slicer.selfTests = {}
    if getattr(slicer, "mrmlScene", None) is None:
        from medsynth.mrml import get_scene

        slicer.mrmlScene = get_scene()


__all__ = ["install", "types"]
