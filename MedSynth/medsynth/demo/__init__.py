"""``make demo`` / ``medsynth demo``: each area adds a step module here with ``run(out_dir, progress)``."""
