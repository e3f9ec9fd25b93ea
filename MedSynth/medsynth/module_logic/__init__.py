"""The Slicer modules' MRML logic: nodes -> library objects -> library call -> nodes.

One class per module (``DRRLogic``, ``TumorLogic``, ``SemanticLogic``), built on the node <->
object bridge ``medsynth.mrml``. The Slicer modules' Logic classes are thin subclasses of these;
the web app, batch scripts and tests use them directly with ``slicer-core``.
"""
