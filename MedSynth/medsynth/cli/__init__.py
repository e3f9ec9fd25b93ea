"""The ``medsynth`` command line: one small module per command, all calling the library."""
