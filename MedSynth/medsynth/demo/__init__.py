"""``make demo`` / ``medsynth demo``: the main jobs of MedSynth on real, fetched scans.

Each step is a module here with ``run(out_dir, progress) -> list[Path]`` (the files it wrote).
"""

#: Demo steps in the order they run.
DEMO_STEPS = [
    "medsynth.demo.foundation",
    "medsynth.demo.drr",
    "medsynth.demo.tumor",
    "medsynth.demo.semantic",
]
