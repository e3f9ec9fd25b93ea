"""Names that vulture cannot see used (read by vulture, never imported or run).

Slicer finds a scripted module's classes by name (<Module>, <Module>Widget, <Module>Test) and
calls the widget's enter/exit/cleanup and the test's runTest; torch calls forward(); numba
intrinsics and VTK/Qt callbacks must accept arguments they do not use; Python calls a module's
__getattr__ for a lazily imported name.
"""

# Slicer's scripted-module conventions
MedSynth, MedSynthWidget, MedSynthTest
DRRProjection, DRRProjectionWidget, DRRProjectionTest
TumorSynthesis, TumorSynthesisWidget, TumorSynthesisTest
SemanticSynthesis, SemanticSynthesisWidget, SemanticSynthesisTest
_.enter, _.exit, _.cleanup, _.runTest

# torch.nn.Module.__call__ calls forward; a package's lazy attributes (PEP 562)
_.forward
__getattr__

# callback and protocol signatures: VTK observers (caller, event), numba intrinsics (typingctx),
# context managers (exc_type, exc, traceback)
caller, event, typingctx, exc_type, exc, traceback

# http.server's request handler hooks (the standard library calls them by name)
_.do_GET, _.do_POST, _.log_message, _.handle_error

# the GUI stand-ins' parts that only slicer.util calls (tryWithErrorDisplay: wait cursor, testing mode)
Qt, _.setOverrideCursor, _.restoreOverrideCursor, _.testingEnabled

# shared job helpers other modules build on: per-item random streams, a finished task's state
item_rng
_.finished

# pytest hooks (pytest calls them by name)
pytest_sessionstart
