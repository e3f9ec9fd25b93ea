"""MedSynth in the browser: the three modules' MRML logic on trame-slicer's views.

The web app writes no imaging logic of its own: its panels bind widgets to the parameter
dataclasses (``DRRParameters``, ``TumorParameters``, ``SemanticParameters``) and call the same
``medsynth.module_logic`` classes the Slicer modules call, on the MRML scene of a trame-slicer
``SlicerApp`` whose slice and 3D views are rendered on the server and streamed to the page.
Start it with ``medsynth web [CT ...]``. Needs the ``web`` extra (trame-slicer, slicer-core).
"""
