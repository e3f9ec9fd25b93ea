"""Label-map-to-image and image-to-image models: datasets, networks, training, checkpoints.

Nothing here imports torch at module level: ``import medsynth.generative`` stays cheap, and the
networks (built from MONAI's parts) load only when a model is built, trained or loaded.
"""

from medsynth.generative.intensity import IntensityWindow

__all__ = ["IntensityWindow"]
