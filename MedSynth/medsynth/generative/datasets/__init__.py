"""Training data for the generative models, made from real scans (and the DRR engine)."""

from medsynth.generative.datasets.slices import (
    DEFAULT_CT_CLASSES, SliceCase, SliceDatasetSpec, build_slice_dataset, load_split, read_manifest,
)

__all__ = ["DEFAULT_CT_CLASSES", "SliceCase", "SliceDatasetSpec", "build_slice_dataset", "load_split",
           "read_manifest"]
